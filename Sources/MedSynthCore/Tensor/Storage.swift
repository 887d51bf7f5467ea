// Aligned float32 buffers, and the count of live bytes the engine holds (for memory checks and the
// peak-memory benchmark).

import Glibc
import Synchronization

public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Bytes of the buffer behind `pointer`: at least `count` floats, more when the cache handed
    /// out a larger idle buffer.
    let bufferBytes: Int

    /// Bytes held by all live storages, and the highest value since the last `resetPeak()`.
    package static let liveBytes = Atomic<Int>(0)
    package static let peakBytes = Atomic<Int>(0)

    /// Uninitialised storage for `count` floats, 64-byte aligned for AVX-512 loads. Throws
    /// `.outOfMemory` naming the request when the system refuses it, so that Python gets a
    /// MemoryError and the process lives on.
    public init(count: Int) throws {
        guard count >= 0, count <= (Int.max >> 3) else {
            throw MedSynthError.outOfMemory("cannot allocate a tensor of \(count) floats")
        }
        self.count = count
        let (raw, bytes) = try BufferCache.shared.take(bytes: BufferCache.roundedSize(max(count, 1) * MemoryLayout<Float>.stride))
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        bufferBytes = bytes
        let live = Storage.liveBytes.wrappingAdd(bytes, ordering: .relaxed).newValue
        var peak = Storage.peakBytes.load(ordering: .relaxed)
        while live > peak {
            let (exchanged, original) = Storage.peakBytes.compareExchange(expected: peak, desired: live, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
    }

    public convenience init(zeros count: Int) throws {
        try self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit {
        Storage.liveBytes.wrappingSubtract(bufferBytes, ordering: .relaxed)
        BufferCache.shared.give(UnsafeMutableRawPointer(pointer), bytes: bufferBytes)
    }

    public static var currentBytes: Int { liveBytes.load(ordering: .relaxed) }
    public static var peakBytesSinceReset: Int { peakBytes.load(ordering: .relaxed) }
    public static func resetPeak() { peakBytes.store(liveBytes.load(ordering: .relaxed), ordering: .relaxed) }
}

/// Checks a planned allocation against the memory the machine has, so that an impossible request
/// becomes a MemoryError in Python instead of a failed allocation inside a kernel.
public enum MemoryBudget {
    /// MemAvailable from /proc/meminfo plus what the engine already holds, in bytes.
    public static func availableBytes() -> Int {
        guard let f = fopen("/proc/meminfo", "r") else { return Int.max }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, f) != nil {
            let text = String(cString: line)
            if text.hasPrefix("MemAvailable:") {
                let digits = text.filter { $0.isNumber }
                if let kb = Int(digits) { return kb * 1024 }
            }
        }
        return Int.max
    }

    /// The most engine memory `body` holds at once beyond what was live before it (approximate when
    /// other threads allocate at the same time).
    public static func peakBytes(during body: () throws -> Void) rethrows -> Int {
        let before = Storage.currentBytes
        Storage.resetPeak()
        try body()
        return max(0, Storage.peakBytesSinceReset - before)
    }

    /// Throws `.outOfMemory` when `bytes` exceeds what is available now.
    public static func check(bytes: Int, what: String) throws {
        let available = availableBytes()
        if bytes > available {
            throw MedSynthError.outOfMemory(
                "\(what) needs about \(bytes >> 20) MiB but only \(available >> 20) MiB are available; use a smaller batch or image size")
        }
    }
}

/// Keeps freed large buffers for reuse. A training step allocates the same sizes every time;
/// handing a fresh mmap'd buffer to each of them costs a page fault per 4 KiB (about 8 ms for
/// 16 MB here), more than the kernels that fill them. Buffers of 256 KiB and more are cached, up
/// to a cap; smaller ones go straight back to malloc, which reuses them well. A request takes the
/// smallest idle buffer that holds it and is at most twice its size: exact sizes alone kept one
/// idle buffer per size, so the backward pass's buffers sat idle through the forward pass and the
/// other way round (ResNet-18's training step: 380 MiB resident for a 263 MiB live peak).
package final class BufferCache {
    package static let shared = BufferCache()
    package static let minimumCachedBytes = 256 << 10

    /// Total bytes kept idle at most: a quarter of physical memory, at most 8 GiB.
    package let capacity: Int
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    /// The sizes with idle buffers, ascending.
    private var sizes: [Int] = []
    private var cachedBytes = 0
    private var mutex = pthread_mutex_t()

    package init() {
        pthread_mutex_init(&mutex, nil)
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        capacity = min(8 << 30, max(256 << 20, physical / 4))
    }

    /// Sizes of 256 KiB and more round up to 64 KiB, so that nearby sizes share buffers.
    @inline(__always)
    package static func roundedSize(_ bytes: Int) -> Int {
        bytes < minimumCachedBytes ? bytes : (bytes + 0xFFFF) & ~0xFFFF
    }

    /// A buffer of at least `bytes`, and its size: an idle one of at most twice that, or a new one.
    package func take(bytes: Int) throws -> (UnsafeMutableRawPointer, Int) {
        if bytes >= Self.minimumCachedBytes {
            pthread_mutex_lock(&mutex)
            // first size ≥ bytes
            var (lo, hi) = (0, sizes.count)
            while lo < hi {
                let mid = (lo + hi) / 2
                if sizes[mid] < bytes { lo = mid + 1 } else { hi = mid }
            }
            if lo < sizes.count, sizes[lo] <= 2 * bytes, let p = free[sizes[lo]]?.popLast() {
                let size = sizes[lo]
                if free[size]?.isEmpty ?? true {
                    free[size] = nil
                    sizes.remove(at: lo)
                }
                cachedBytes -= size
                pthread_mutex_unlock(&mutex)
                return (p, size)
            }
            pthread_mutex_unlock(&mutex)
        }
        var raw: UnsafeMutableRawPointer? = nil
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            release()      // give the cache back and try once more
            _ = posix_memalign(&raw, 64, bytes)
        }
        guard let raw else { throw MedSynthError.outOfMemory(Self.refusal(bytes, "the system refused it")) }
        return (raw, bytes)
    }

    package static func refusal(_ bytes: Int, _ why: String) -> String {
        "out of memory: cannot allocate \(bytes) bytes (\(bytes >> 20) MiB) for a tensor; \(why)"
    }

    package func give(_ p: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= Self.minimumCachedBytes {
            pthread_mutex_lock(&mutex)
            if cachedBytes + bytes <= capacity {
                if free[bytes] == nil {
                    sizes.insert(bytes, at: sizes.firstIndex { $0 > bytes } ?? sizes.count)
                }
                free[bytes, default: []].append(p)
                cachedBytes += bytes
                pthread_mutex_unlock(&mutex)
                return
            }
            pthread_mutex_unlock(&mutex)
        }
        Glibc.free(p)
    }

    /// Returns every idle buffer to the system.
    package func release() {
        pthread_mutex_lock(&mutex)
        let all = free.values.flatMap { $0 }
        free = [:]
        sizes = []
        cachedBytes = 0
        pthread_mutex_unlock(&mutex)
        for p in all { Glibc.free(p) }
    }

    package var idleBytes: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return cachedBytes
    }
}
