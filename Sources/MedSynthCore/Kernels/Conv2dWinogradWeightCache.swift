// Transformed Winograd weights (U = G g Gᵀ, packed for the forward tiles) kept between calls for
// inference: the same weights are transformed on every batch otherwise, which costs as much as the
// 36 products themselves for small batches (AlexNet's 384×192 layer at batch 32: 0.8 ms of 2 ms).
// An entry is found by the weights' address and shape and trusted only if a 64-bit fingerprint of
// their values still matches (weights change in place: optimiser steps, loaded state dicts), so a
// stale entry is never used; reading the weights for the fingerprint costs about a tenth of
// transforming them. Least recently used entries go first beyond `capacityBytes`. Training does
// not use it (its weights change every step).

import Glibc

package final class WinogradWeightCache {
    package static let shared = WinogradWeightCache(capacityBytes: 96 << 20)

    struct Key: Hashable {
        let address: Int, outChannels: Int, inChannels: Int
    }

    final class Entry {
        let fingerprint: UInt64
        let packed: Storage
        var lastUse: Int
        init(fingerprint: UInt64, packed: Storage, lastUse: Int) {
            (self.fingerprint, self.packed, self.lastUse) = (fingerprint, packed, lastUse)
        }
    }

    package let capacityBytes: Int
    private var entries: [Key: Entry] = [:]
    private var bytes = 0, clock = 0
    private var mutex = pthread_mutex_t()

    package init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
        pthread_mutex_init(&mutex, nil)
    }

    /// The forward weights of `g` packed by `Winograd.packWeights` (transposed: false), from the
    /// cache when these exact values were packed before, else packed now and remembered.
    package func packedWeights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>) throws -> Storage {
        let count = g.outChannels * g.inChannels * 9
        let key = Key(address: Int(bitPattern: weight), outChannels: g.outChannels, inChannels: g.inChannels)
        let fingerprint = Self.fingerprint(weight, count)
        pthread_mutex_lock(&mutex)
        clock += 1
        if let entry = entries[key], entry.fingerprint == fingerprint {
            entry.lastUse = clock
            pthread_mutex_unlock(&mutex)
            return entry.packed
        }
        pthread_mutex_unlock(&mutex)
        let packed = try Storage(count: 36 * g.outChannels * g.inChannels)
        Winograd.packWeights(g, weight, transposed: false, into: packed.pointer)
        let size = packed.count * 4
        guard size <= capacityBytes / 4 else { return packed }   // too large to be worth keeping
        pthread_mutex_lock(&mutex)
        if let old = entries.removeValue(forKey: key) { bytes -= old.packed.count * 4 }
        while bytes + size > capacityBytes, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            entries[oldest.key] = nil
            bytes -= oldest.value.packed.count * 4
        }
        entries[key] = Entry(fingerprint: fingerprint, packed: packed, lastUse: clock)
        bytes += size
        pthread_mutex_unlock(&mutex)
        return packed
    }

    /// Bytes of packed weights held.
    package var heldBytes: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return bytes
    }

    /// Forgets every entry.
    package func removeAll() {
        pthread_mutex_lock(&mutex)
        entries = [:]
        bytes = 0
        pthread_mutex_unlock(&mutex)
    }

    /// A 64-bit fingerprint of the bits of `count` floats: 16 lanes of multiply-xorshift mixing
    /// (every bit of every value reaches its lane's state), folded at the end with the count.
    static func fingerprint(_ p: UnsafePointer<Float>, _ count: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var state = SIMD8<UInt64>(0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F, 0x1656_67B1_9E37_79F9, 0x85EB_CA77_C2B2_AE63,
                                  0x27D4_EB2F_1656_67C5, 0xFF51_AFD7_ED55_8CCD, 0xC4CE_B9FE_1A85_EC53, 0x2545_F491_4F6C_DD1D)
        let multiplier = SIMD8<UInt64>(repeating: 0xFF51_AFD7_ED55_8CCD)
        var i = 0
        while i + 16 <= count {
            let words = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<UInt64>.self)
            state = (state ^ words) &* multiplier
            state ^= state &>> 29
            i += 16
        }
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(count)
        for lane in 0..<8 { h = (h ^ state[lane]) &* 0xC2B2_AE3D_27D4_EB4F; h ^= h >> 31 }
        while i < count {
            h = (h ^ UInt64(p[i].bitPattern)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            i += 1
        }
        return h
    }
}
