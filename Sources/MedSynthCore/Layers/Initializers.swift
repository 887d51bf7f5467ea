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
        rng.fillNormal(t.data, t.count, std: (2 / Float(max(fan, 1))).squareRoot())
    }

    /// N(mean, std²).
    public static func normal(_ t: Tensor, mean: Float = 0, std: Float, _ rng: RandomGenerator) {
        rng.fillNormal(t.data, t.count, mean: mean, std: std)
    }

    /// xavier_uniform_: U(±gain·√(6/(fan_in+fan_out))).
    public static func xavierUniform(_ t: Tensor, fanIn: Int, fanOut: Int, gain: Float = 1, _ rng: RandomGenerator) {
        uniform(t, bound: gain * (6 / Float(max(fanIn + fanOut, 1))).squareRoot(), rng)
    }
}
