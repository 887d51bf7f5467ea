// Seeded random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011), the counter-based generator behind numpy's Philox and PyTorch's CUDA RNG.
// Each run owns its generator; the same seed gives the same stream on every machine, and the whole
// state is four integers, so checkpoints can save it and a resumed run continues the same stream.

import Glibc

public final class RandomGenerator {
    public let seed: UInt64
    /// Number of 128-bit Philox blocks consumed so far.
    private var blockCounter: UInt64 = 0
    private var block: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var blockIndex = 4          // 4 = block exhausted
    private var spareNormal: Float? = nil

    public init(seed: UInt64) { self.seed = seed }

    /// A generator seeded from this one: for independent sub-streams (e.g. per epoch or per worker).
    public func fork() -> RandomGenerator { RandomGenerator(seed: nextUInt64()) }

    // MARK: state (for checkpoints)

    /// (seed, blocks consumed, index in the current block, spare normal bits or 0xFFFF_FFFF_FFFF_FFFF)
    public var state: [UInt64] {
        [seed, blockCounter, UInt64(blockIndex), spareNormal.map { UInt64($0.bitPattern) } ?? UInt64.max]
    }

    public convenience init(state: [UInt64]) throws {
        try require(state.count == 4 && state[2] <= 4, "random generator state must hold 4 values")
        self.init(seed: state[0])
        blockCounter = state[1]
        blockIndex = Int(state[2])
        if blockIndex < 4 {
            block = Self.philox(counter: blockCounter &- 1, key: seed)
        }
        spareNormal = state[3] == UInt64.max ? nil : Float(bitPattern: UInt32(truncatingIfNeeded: state[3]))
    }

    // MARK: Philox4x32-10

    /// The generator's block function: Philox4x32-10 of the counter (counter, 0) under the key
    /// `key` (low 32-bit words first).
    @inline(__always)
    package static func philox(counter: UInt64, key: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        philox4x32((UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), 0, 0),
                   key: (UInt32(truncatingIfNeeded: key), UInt32(truncatingIfNeeded: key >> 32)))
    }

    /// Philox4x32-10 on a full 4-word counter and 2-word key, word order as Random123's
    /// philox4x32 (so its known-answer vectors apply directly).
    @inline(__always)
    package static func philox4x32(_ counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let (hi0, lo0) = (UInt32(p0 >> 32), UInt32(truncatingIfNeeded: p0))
            let (hi1, lo1) = (UInt32(p1 >> 32), UInt32(truncatingIfNeeded: p1))
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
            if round < 9 { k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85 }
        }
        return (c0, c1, c2, c3)
    }

    @inline(__always)
    public func nextUInt32() -> UInt32 {
        if blockIndex == 4 {
            block = Self.philox(counter: blockCounter, key: seed)
            blockCounter &+= 1
            blockIndex = 0
        }
        defer { blockIndex += 1 }
        switch blockIndex {
        case 0: return block.0
        case 1: return block.1
        case 2: return block.2
        default: return block.3
        }
    }

    public func nextUInt64() -> UInt64 { UInt64(nextUInt32()) << 32 | UInt64(nextUInt32()) }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public func uniform() -> Float { Float(nextUInt32() >> 8) * 0x1p-24 }

    /// Uniform integer in [0, bound), unbiased (Lemire's multiply-and-reject).
    public func int(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        let b = UInt64(bound)
        while true {
            let m = nextUInt64().multipliedFullWidth(by: b)
            if m.low >= (0 &- b) % b { return Int(m.high) }
        }
    }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    public func normal() -> Float {
        if let s = spareNormal { spareNormal = nil; return s }
        let u1 = Double(nextUInt32() >> 8) * 0x1p-24 + 0x1p-25   // (0, 1): log is finite
        let u2 = Double(nextUInt32() >> 8) * 0x1p-24
        let r = (-2 * log(u1)).squareRoot(), theta = 2 * Double.pi * u2
        spareNormal = Float(r * sin(theta))
        return Float(r * cos(theta))
    }

    public func fillNormal(_ p: UnsafeMutablePointer<Float>, _ n: Int, mean: Float = 0, std: Float = 1) {
        for i in 0..<n { p[i] = mean + std * normal() }
    }

    public func fillUniform(_ p: UnsafeMutablePointer<Float>, _ n: Int, low: Float = 0, high: Float = 1) {
        let width = high - low
        for i in 0..<n { p[i] = low + width * uniform() }
    }

    /// Fisher-Yates shuffle.
    public func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1)) }
    }

    public func permutation(_ n: Int) -> [Int] {
        var a = Array(0..<n)
        shuffle(&a)
        return a
    }
}

// MARK: - One seeding scheme

/// The independent random streams the engine draws from. Every generator is seeded by
/// (seed, stream, index) and never carried from one step to the next, so any step of a run can be
/// recomputed on its own: a resumed run continues exactly as the uninterrupted one, and a sample's
/// noise does not depend on the batch it was drawn in.
public enum SeedStream: UInt64 {
    /// Weight initialisation (index 0).
    case initialisation = 0
    /// Everything random inside training step `index`: noise, timesteps, label dropout,
    /// augmentation, dropout masks.
    case trainingStep = 1
    /// The shuffled order of the data in epoch `index`.
    case dataOrder = 2
    /// The noise of generated image `index`.
    case sample = 3
    /// Generated data-set image `index`.
    case dataset = 4
    /// Perturbations of explanation `index`.
    case explanation = 5
}

extension RandomGenerator {
    /// The generator for (seed, stream, index): SplitMix64's finaliser over the three numbers.
    public convenience init(seed: UInt64, stream: SeedStream, index: Int) {
        self.init(seed: derivedSeed(seed, stream, UInt64(truncatingIfNeeded: index)))
    }
}

/// Mixes a seed, a stream and an index into one generator seed (SplitMix64's finaliser, Steele et
/// al. 2014): nearby inputs give unrelated seeds.
@inline(__always)
public func derivedSeed(_ seed: UInt64, _ stream: SeedStream, _ index: UInt64) -> UInt64 {
    var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* (index &+ 1) &+ 0xBF58_476D_1CE4_E5B9 &* (stream.rawValue &+ 1)
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A module part that draws random numbers (dropout masks): the trainer gives it each step's
/// generator through `Module.setGenerator`.
public protocol RandomLayer: AnyObject {
    var generator: RandomGenerator { get set }
}
