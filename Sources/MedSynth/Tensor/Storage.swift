// Aligned float32 buffers, and the count of live bytes the engine holds (for memory checks and the
// peak-memory benchmark).

import Glibc
import Synchronization

public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Bytes held by all live storages, and the highest value since the last `resetPeak()`.
    static let liveBytes = Atomic<Int>(0)
    static let peakBytes = Atomic<Int>(0)

    /// Uninitialised storage for `count` floats, 64-byte aligned for AVX-512 loads.
    /// Callers check sizes before asking (see `MemoryBudget`); a failed allocation of a size that
    /// passed those checks is an unrecoverable condition of the machine.
    public init(count: Int) {
        self.count = count
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil {
            fatalError("medsynth: out of memory allocating \(bytes) bytes")
        }
        pointer = raw!.bindMemory(to: Float.self, capacity: max(count, 1))
        let live = Storage.liveBytes.wrappingAdd(bytes, ordering: .relaxed).newValue
        var peak = Storage.peakBytes.load(ordering: .relaxed)
        while live > peak {
            let (exchanged, original) = Storage.peakBytes.compareExchange(expected: peak, desired: live, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
    }

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit {
        Storage.liveBytes.wrappingSubtract(max(count, 1) * MemoryLayout<Float>.stride, ordering: .relaxed)
        free(pointer)
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

    /// Throws `.outOfMemory` when `bytes` exceeds what is available now.
    public static func check(bytes: Int, what: String) throws {
        let available = availableBytes()
        if bytes > available {
            throw MedSynthError.outOfMemory(
                "\(what) needs about \(bytes >> 20) MiB but only \(available >> 20) MiB are available; use a smaller batch or image size")
        }
    }
}
