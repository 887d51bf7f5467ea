// Vectorisable float32 exp, erf and tanh.
//
// libm's expf/erff/tanhf are opaque calls, so a loop over them runs one element at a time
// (~5–20 ns each). These versions are straight-line arithmetic and bit operations that LLVM
// vectorises (8–16 lanes), and they are the algorithms PyTorch's own vectorised CPU kernels use,
// so activations match torch's CPU results more closely than libm would:
// - exp: SLEEF's expf_u10 (Shibata & Petrogalli, "SLEEF: A Portable Vectorized Library of C
//   Standard Mathematical Functions", IEEE TPDS 2020), which torch's Vectorized<float>::exp
//   calls: Cody–Waite reduction x = q·ln2 + s, a degree-7 polynomial for eˢ, then 2^q. ≤ 1 ulp.
// - erf: Abramowitz & Stegun 7.1.26, as in torch's Vectorized<float>::erf (used by F.gelu):
//   1 − (a₁t + … + a₅t⁵)·e^(−x²), t = 1/(1 + 0.3275911|x|); absolute error ≤ 1.5e-7.
// - tanh: for |x| < 0.625 the odd minimax polynomial of Cephes' tanhf, else 1 − 2/(e^(2|x|) + 1)
//   with the exp above; a few ulp (torch uses SLEEF's tanhf_u10, ≤ 1 ulp).
// NaN propagates, ±inf give the limits. Multiply-adds are a separate multiply and add (as SLEEF's
// builds for CPUs without FMA): the results are the same on every CPU, and no call to libm's fmaf
// or to swift-numerics' relaxed shims (which LLVM does not always inline) can end up in the loop.

public enum VectorMath {
    /// a·b + c, rounded twice.
    @inline(__always)
    package static func mla(_ a: Float, _ b: Float, _ c: Float) -> Float { a * b + c }

    /// 2^q for an integer q in [−126, 127], by building the exponent bits.
    @inline(__always)
    package static func pow2(_ q: Int32) -> Float {
        Float(bitPattern: UInt32(bitPattern: (q &+ 127) &<< 23))
    }

    /// eˣ (SLEEF expf_u10).
    @inline(__always)
    public static func exp(_ d: Float) -> Float {
        let log2e: Float = 1.442_695_040_888_963_407_36
        let ln2Upper: Float = 0.693_145_751_953_125          // ln 2 split in two for an exact q·ln2
        let ln2Lower: Float = 1.428_606_765_330_187_045e-06
        // q = rint(d·log2e) through the 1.5·2²³ trick: no float→int conversion that could trap on
        // NaN or huge values; the bits of t hold q in their low part.
        let magic: Float = 0x1.8p23
        let t = d * log2e + magic
        let q = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        let qf = t - magic
        var s = mla(qf, -ln2Upper, d)
        s = mla(qf, -ln2Lower, s)
        var u: Float = 0.000_198_527_617_612_853_646_278_381
        u = mla(u, s, 0.001_393_043_552_525_341_510_772_71)
        u = mla(u, s, 0.008_333_360_776_305_198_669_433_59)
        u = mla(u, s, 0.041_666_485_369_205_474_853_515_6)
        u = mla(u, s, 0.166_666_671_633_720_397_949_219)
        u = mla(u, s, 0.5)
        u = 1 + mla(s * s, u, s)
        // u·2^q in two steps, so that q down to −150 and up to 128 stay representable
        let half = q >> 1
        u = u * pow2(half) * pow2(q &- half)
        if d < -104 { u = 0 }
        if d > 100 { u = .infinity }
        return u
    }

    /// erf(x) (Abramowitz & Stegun 7.1.26, torch's vectorised erf).
    @inline(__always)
    public static func erf(_ x: Float) -> Float {
        let sign = x.bitPattern & 0x8000_0000
        let a = Float(bitPattern: x.bitPattern & 0x7FFF_FFFF)
        let t = 1 / mla(0.327_591_1, a, 1)
        var r: Float = 1.061_405_429
        r = mla(r, t, -1.453_152_027)
        r = mla(r, t, 1.421_413_741)
        r = mla(r, t, -0.284_496_736)
        r = mla(r, t, 0.254_829_592)
        let e = exp(-(x * x))
        let y = mla(-e * t, r, 1)
        return Float(bitPattern: y.bitPattern | sign)
    }

    /// tanh(x).
    @inline(__always)
    public static func tanh(_ x: Float) -> Float {
        let sign = x.bitPattern & 0x8000_0000
        let a = Float(bitPattern: x.bitPattern & 0x7FFF_FFFF)
        // |x| < 0.625: x + x³·P(x²) (Cephes tanhf)
        let z = a * a
        var p: Float = -5.704_988_727_45e-3
        p = mla(p, z, 2.063_908_879_54e-2)
        p = mla(p, z, -5.373_971_555_31e-2)
        p = mla(p, z, 1.333_144_220_36e-1)
        p = mla(p, z, -3.333_328_194_22e-1)
        let small = mla(p * z, a, a)
        // otherwise 1 − 2/(e^(2|x|) + 1); beyond |x| = 10 the result rounds to 1 (NaN stays NaN)
        let large = 1 - 2 / (exp(2 * (a > 10 ? 10 : a)) + 1)
        let y = a < 0.625 ? small : large
        return Float(bitPattern: y.bitPattern | sign)
    }
}
