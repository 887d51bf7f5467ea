// NumPy's default generator, reproduced for one purpose: scikit-image's quickshift breaks density
// ties with `np.random.default_rng(42).normal(scale=1e-5, size=(h, w))`, and in flat image regions
// (a black background, a uniform organ) those 1e-5 draws alone decide which pixel becomes whose
// parent. Drawing the same numbers makes the engine's quickshift give scikit-image's segments.
//
// Three parts, as numpy 2.x composes them (numpy/random: bit_generator.pyx, src/pcg64,
// src/distributions/distributions.c):
//  * SeedSequence (M. O'Neill's seed_seq hashing): the integer seed → a pool of four 32-bit words
//    → four 64-bit words of state;
//  * PCG64: 128-bit LCG, multiplier 2549297995355413924·2^64 + 4865540595714422341, increment
//    2·seq + 1, output XSL-RR (high ^ low rotated right by the top six bits), state advanced
//    before each output;
//  * the 256-level ziggurat of `random_standard_normal` (Marsaglia & Tsang 2000, with numpy's bit
//    layout: 8 bits of layer, 1 sign bit, 52 bits of magnitude).
// The ziggurat's tables are computed here from their definition (right edge r = 3.65415288536100…,
// layer area v); numpy ships them precomputed, and the two differ in the last bits, so draws agree
// with numpy's to ~1e-14 relative (equal draw for draw; half of them bit for bit), far below the
// density differences the noise has to order.

import Glibc

public struct NumpyGenerator {
    private var state: UInt128
    private let increment: UInt128
    private static let multiplier: UInt128 = (2_549_297_995_355_413_924 << 64) + 4_865_540_595_714_422_341

    /// `np.random.default_rng(seed)` for a non-negative integer seed.
    public init(seed: UInt64) {
        let words = Self.seedSequenceState(entropy: seed, words64: 4)
        let initState = UInt128(words[0]) << 64 | UInt128(words[1])
        let initSequence = UInt128(words[2]) << 64 | UInt128(words[3])
        increment = initSequence << 1 | 1
        state = 0
        step()
        state &+= initState
        step()
    }

    // MARK: - SeedSequence

    /// `SeedSequence(entropy).generate_state(words64, np.uint64)`.
    static func seedSequenceState(entropy: UInt64, words64: Int) -> [UInt64] {
        let (initA, multA, initB, multB): (UInt32, UInt32, UInt32, UInt32) = (0x43b0_d7e5, 0x931e_8875, 0x8b51_f9dd, 0x58f3_8ded)
        let (mixL, mixR): (UInt32, UInt32) = (0xca01_f9dd, 0x4973_f715)
        // the entropy as little-endian 32-bit words (0 is one zero word)
        var entropyWords: [UInt32] = []
        var rest = entropy
        repeat { entropyWords.append(UInt32(truncatingIfNeeded: rest)); rest >>= 32 } while rest > 0
        var hashConst = initA
        func hashmix(_ value: UInt32) -> UInt32 {
            var v = value ^ hashConst
            hashConst = hashConst &* multA
            v = v &* hashConst
            return v ^ (v >> 16)
        }
        func mix(_ x: UInt32, _ y: UInt32) -> UInt32 {
            let r = mixL &* x &- mixR &* y
            return r ^ (r >> 16)
        }
        var pool = [UInt32](repeating: 0, count: 4)
        for i in 0..<4 { pool[i] = hashmix(i < entropyWords.count ? entropyWords[i] : 0) }
        for source in 0..<4 {
            for target in 0..<4 where source != target { pool[target] = mix(pool[target], hashmix(pool[source])) }
        }
        for source in 4..<max(4, entropyWords.count) {
            for target in 0..<4 { pool[target] = mix(pool[target], hashmix(entropyWords[source])) }
        }
        var out32: [UInt32] = []
        var outConst = initB
        for i in 0..<(2 * words64) {
            var v = pool[i % 4] ^ outConst
            outConst = outConst &* multB
            v = v &* outConst
            out32.append(v ^ (v >> 16))
        }
        return (0..<words64).map { UInt64(out32[2 * $0]) | UInt64(out32[2 * $0 + 1]) << 32 }
    }

    // MARK: - PCG64

    @inline(__always)
    private mutating func step() { state = state &* Self.multiplier &+ increment }

    /// PCG64's `next_uint64`.
    public mutating func nextUInt64() -> UInt64 {
        step()
        let rotation = UInt64(truncatingIfNeeded: state >> 122)
        let folded = UInt64(truncatingIfNeeded: state >> 64) ^ UInt64(truncatingIfNeeded: state)
        return folded >> rotation | folded << ((64 &- rotation) & 63)
    }

    /// `next_double`: 53 random bits in [0, 1).
    public mutating func nextDouble() -> Double { Double(nextUInt64() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    // MARK: - ziggurat normal

    /// `random_standard_normal`.
    public mutating func standardNormal() -> Double {
        let t = Ziggurat.tables
        while true {
            var r = nextUInt64()
            let layer = Int(r & 0xff)
            r >>= 8
            let negative = r & 1 == 1
            let magnitude = (r >> 1) & 0x000f_ffff_ffff_ffff
            var x = Double(magnitude) * t.w[layer]
            if negative { x = -x }
            if magnitude < t.k[layer] { return x }   // inside the layer's rectangle: 99.3% of draws
            if layer == 0 {
                // the tail beyond r, by Marsaglia's exponential method
                while true {
                    let xx = -Ziggurat.inverseR * log1p(-nextDouble())
                    let yy = -log1p(-nextDouble())
                    if yy + yy > xx * xx { return (magnitude >> 8) & 1 == 1 ? -(Ziggurat.r + xx) : Ziggurat.r + xx }
                }
            } else if (t.f[layer - 1] - t.f[layer]) * nextDouble() + t.f[layer] < exp(-0.5 * x * x) {
                return x
            }
        }
    }

    /// `Generator.normal(loc, scale, size=count)`: loc + scale · z, drawn in order.
    public mutating func normal(loc: Double = 0, scale: Double, count: Int) -> [Double] {
        (0..<count).map { _ in loc + scale * standardNormal() }
    }
}

/// numpy's 256-level normal ziggurat: layer i (1…255) spans [0, x_i] with x_255 = r; layer 0 is the
/// base strip plus the tail, of width v / f(r). w = x / 2^52 turns 52 random bits into x,
/// k = 2^52 · x_{i−1} / x_i is the share of layer i certainly under the density, f = e^{−x²/2}.
enum Ziggurat {
    static let r = 3.6541528853610087963519472518
    static let inverseR = 0.27366123732975827203338247596
    /// Area of every layer: r·f(r) + ∫_r^∞ f = r·f(r) + √(π/2)·erfc(r/√2).
    static let area = 0.004928673233974654931590913

    struct Tables { var k: [UInt64], w: [Double], f: [Double] }

    static let tables: Tables = {
        let f = { (x: Double) in exp(-0.5 * x * x) }
        var x = [Double](repeating: 0, count: 256)
        x[255] = r
        for i in stride(from: 255, to: 1, by: -1) { x[i - 1] = (-2 * log(area / x[i] + f(x[i]))).squareRoot() }
        let base = area / f(r)
        let scale = 4_503_599_627_370_496.0   // 2^52
        var t = Tables(k: [UInt64](repeating: 0, count: 256), w: [Double](repeating: 0, count: 256),
                       f: [Double](repeating: 1, count: 256))
        t.w[0] = base / scale
        t.k[0] = UInt64(scale * r / base)
        for i in 1..<256 {
            t.w[i] = x[i] / scale
            t.k[i] = i == 1 ? 0 : UInt64(scale * x[i - 1] / x[i])
            t.f[i] = f(x[i])
        }
        return t
    }()
}
