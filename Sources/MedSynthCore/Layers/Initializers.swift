// Parameter initialisation as PyTorch does it by default, so that models train the way their
// users expect (torch.nn.init).

import Glibc

public enum Initializer {
    /// U(−bound, bound).
    public static func uniform(_ t: Tensor, bound: Float, _ rng: RandomGenerator) {
        rng.fillUniform(t.data, t.count, low: -bound, high: bound)
    }

    /// torch's default for Conv and Linear weights: kaiming_uniform_(a=√5), which reduces to
    /// U(−1/√fan_in, 1/√fan_in); biases use the same bound.
    public static func torchDefault(_ t: Tensor, fanIn: Int, _ rng: RandomGenerator) {
        uniform(t, bound: 1 / Float(max(fanIn, 1)).squareRoot(), rng)
    }

    /// kaiming_normal_(mode: fan_out or fan_in, nonlinearity: relu): N(0, 2/fan).
    public static func kaimingNormal(_ t: Tensor, fan: Int, _ rng: RandomGenerator) {
        normal(t, std: (2 / Float(max(fan, 1))).squareRoot(), rng)
    }

    /// N(mean, std²).
    public static func normal(_ t: Tensor, mean: Float = 0, std: Float, _ rng: RandomGenerator) {
        fillNormal(t, mean: mean, std: std, bounds: nil, rng)
    }

    /// trunc_normal_(mean, std, a, b): N(mean, std²) restricted to [a, b] (absolute bounds, as
    /// torch's), by redrawing values that fall outside.
    public static func truncatedNormal(_ t: Tensor, mean: Float = 0, std: Float, a: Float = -2, b: Float = 2,
                                       _ rng: RandomGenerator) {
        fillNormal(t, mean: mean, std: std, bounds: (a, b), rng)
    }

    /// Values per chunk of a large tensor's normal fill.
    static let normalChunk = 1 << 16

    /// Normal values, optionally redrawn until inside `bounds`. Tensors of up to `normalChunk`
    /// values draw from `rng` itself; larger ones (VGG's 103M-weight linear) in chunks on every
    /// core, chunk i from its own Philox stream keyed by one seed drawn from `rng` and i, so the
    /// values depend on the seed alone, not on the thread count.
    private static func fillNormal(_ t: Tensor, mean: Float, std: Float, bounds: (Float, Float)?, _ rng: RandomGenerator) {
        let (p, n) = (t.data, t.count)
        guard n > normalChunk else {
            for i in 0..<n {
                var v = mean + std * rng.normal()
                while let (a, b) = bounds, !(v >= a && v <= b) { v = mean + std * rng.normal() }
                p[i] = v
            }
            return
        }
        let base = rng.nextUInt64()
        parallelRanges((n + normalChunk - 1) / normalChunk) { lo, hi in
            for chunk in lo..<hi {
                let g = RandomGenerator(seed: base &+ UInt64(chunk) &* 0x9E37_79B9_7F4A_7C15)
                let start = chunk * normalChunk
                fastNormals(p + start, min(normalChunk, n - start), mean: mean, std: std, bounds: bounds, g)
            }
        }
    }

    /// Box-Muller in single precision: z = √(−2 ln u₁)·(cos 2πu₂, sin 2πu₂), u₁ ∈ (0, 1).
    private static func fastNormals(_ p: UnsafeMutablePointer<Float>, _ n: Int, mean: Float, std: Float,
                                    bounds: (Float, Float)?, _ g: RandomGenerator) {
        var i = 0
        while i < n {
            let u1 = Float(g.nextUInt32() >> 8) * 0x1p-24 + 0x1p-25
            let u2 = Float(g.nextUInt32() >> 8) * 0x1p-24
            let r = std * (-2 * logf(u1)).squareRoot(), theta = 2 * Float.pi * u2
            let first = mean + r * cosf(theta), second = mean + r * sinf(theta)
            if let (a, b) = bounds {
                if first >= a && first <= b { p[i] = first; i += 1 }
                if i < n && second >= a && second <= b { p[i] = second; i += 1 }
            } else {
                p[i] = first
                i += 1
                if i < n { p[i] = second; i += 1 }
            }
        }
    }

    /// torch's fan_in and fan_out of a weight [out, in, k...]: in·∏k and out·∏k (a depthwise
    /// conv [C, 1, k, k] has fan_in k·k and fan_out C·k·k).
    public static func fans(_ t: Tensor) -> (fanIn: Int, fanOut: Int) {
        guard t.rank >= 2 else { return (t.count, t.count) }
        let receptive = t.shape.dropFirst(2).reduce(1, *)
        return (t.shape[1] * receptive, t.shape[0] * receptive)
    }

    /// xavier_uniform_: U(±gain·√(6/(fan_in+fan_out))).
    public static func xavierUniform(_ t: Tensor, fanIn: Int, fanOut: Int, gain: Float = 1, _ rng: RandomGenerator) {
        uniform(t, bound: gain * (6 / Float(max(fanIn + fanOut, 1))).squareRoot(), rng)
    }
}
