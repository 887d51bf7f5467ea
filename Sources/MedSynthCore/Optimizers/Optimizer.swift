// Optimisers update parameters in place from their `.grad`, one flat loop per parameter (as
// llm.c), parallel over element blocks for large tensors. State tensors are saved in checkpoints
// under `optimizer.<kind>.<index>` so a resumed run continues exactly.

public protocol Optimizer: AnyObject {
    var parameters: [Tensor] { get }
    /// Learning rate used by the next `step()`; schedules set it before each step.
    var learningRate: Float { get set }
    /// One multiplier of the learning rate per parameter (torch's parameter groups with their own
    /// lr, for fine-tuning a backbone slower than its head); all 1 by default.
    var learningRateScales: [Float] { get set }
    /// Number of steps taken.
    var stepCount: Int { get }
    /// Applies one update from the current gradients (parameters without a gradient are skipped).
    func step() throws
    /// The optimiser's state as named tensors, for checkpoints.
    func stateEntries() -> [SafetensorsEntry]
    func loadState(_ lookup: (String) -> SafetensorsEntry?) throws
}

extension Optimizer {
    public func zeroGrad() { for p in parameters { p.grad = nil } }
}

/// Helpers shared by the optimisers' state (de)serialisation.
package enum OptimizerState {
    package static func entries(_ prefix: String, _ tensors: [Tensor?]) -> [SafetensorsEntry] {
        tensors.enumerated().compactMap { i, t in t.map { SafetensorsEntry(name: "\(prefix).\(i)", tensor: $0) } }
    }

    package static func load(_ prefix: String, into tensors: inout [Tensor?], like parameters: [Tensor],
                     _ lookup: (String) -> SafetensorsEntry?) throws {
        for i in parameters.indices {
            guard let e = lookup("\(prefix).\(i)") else { tensors[i] = nil; continue }
            tensors[i] = try Tensor(try e.finiteFloats(shape: parameters[i].shape), shape: e.shape)
        }
    }

    /// A saved step counter, exactly (0 when absent).
    package static func step(_ lookup: (String) -> SafetensorsEntry?, _ name: String) throws -> Int {
        guard let e = lookup(name) else { return 0 }
        guard let v = e.int64Scalar(), v >= 0 else {
            throw MedSynthError.invalidArgument("checkpoint tensor '\(name)' must hold one non-negative I64 integer, got \(e.dtype.rawValue) of shape \(e.shape)")
        }
        return Int(v)
    }
}

/// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019), exactly as
/// torch.optim.AdamW computes it:
///   θ ← θ·(1 − lr·λ);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
///   θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
/// Defaults are torch's: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2.
public final class AdamW: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var stepCount = 0
    public var learningRateScales: [Float]
    private var m: [Tensor?], v: [Tensor?]

    public init(_ parameters: [Tensor], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                eps: Float = 1e-8, weightDecay: Float = 1e-2) {
        self.parameters = parameters
        self.learningRate = learningRate
        (beta1, beta2) = betas
        self.eps = eps
        self.weightDecay = weightDecay
        m = Array(repeating: nil, count: parameters.count)
        v = Array(repeating: nil, count: parameters.count)
        learningRateScales = Array(repeating: 1, count: parameters.count)
    }

    public func step() throws {
        stepCount += 1
        let t = Float(stepCount)
        let correction1 = 1 - Float.pow(beta1, t), correction2 = 1 - Float.pow(beta2, t)
        let correction2Root = correction2.squareRoot()
        let (b1, b2, eps) = (beta1, beta2, self.eps)
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let lr = learningRate * (i < learningRateScales.count ? learningRateScales[i] : 1)
            let stepSize = lr / correction1, decay = 1 - lr * weightDecay
            let mi = try m[i] ?? Tensor(zeros: p.shape), vi = try v[i] ?? Tensor(zeros: p.shape)
            m[i] = mi; v[i] = vi
            let (w, gp, mp, vp) = (p.data, g.data, mi.data, vi.data)
            parallelRanges(p.count, grain: 1 << 15) { lo, hi in
                for j in lo..<hi {
                    let gj = gp[j]
                    let mj = b1 * mp[j] + (1 - b1) * gj
                    let vj = b2 * vp[j] + (1 - b2) * gj * gj
                    mp[j] = mj; vp[j] = vj
                    w[j] = w[j] * decay - stepSize * mj / (vj.squareRoot() / correction2Root + eps)
                }
            }
        }
    }

    public func stateEntries() -> [SafetensorsEntry] {
        OptimizerState.entries("optimizer.adamw.m", m) + OptimizerState.entries("optimizer.adamw.v", v)
            + [SafetensorsEntry(name: "optimizer.adamw.step", int64: Int64(stepCount))]
    }

    public func loadState(_ lookup: (String) -> SafetensorsEntry?) throws {
        try OptimizerState.load("optimizer.adamw.m", into: &m, like: parameters, lookup)
        try OptimizerState.load("optimizer.adamw.v", into: &v, like: parameters, lookup)
        stepCount = try OptimizerState.step(lookup, "optimizer.adamw.step")
    }
}

/// SGD with momentum and Nesterov momentum, as torch.optim.SGD:
///   g ← g + λθ;  b ← μb + (1−τ)g (b = g at the first step);  g ← g + μb (Nesterov) or b;
///   θ ← θ − lr·g
public final class SGD: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    public private(set) var stepCount = 0
    public var learningRateScales: [Float]
    private var buffers: [Tensor?]

    public init(_ parameters: [Tensor], learningRate: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = Array(repeating: nil, count: parameters.count)
        learningRateScales = Array(repeating: 1, count: parameters.count)
    }

    public func step() throws {
        stepCount += 1
        let (mu, tau, wd, nesterov) = (momentum, dampening, weightDecay, self.nesterov)
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let lr = learningRate * (i < learningRateScales.count ? learningRateScales[i] : 1)
            let (w, gp) = (p.data, g.data)
            if mu == 0 {
                parallelRanges(p.count, grain: 1 << 15) { lo, hi in
                    for j in lo..<hi { w[j] -= lr * (gp[j] + wd * w[j]) }
                }
                continue
            }
            let first = buffers[i] == nil
            let b = try buffers[i] ?? Tensor(zeros: p.shape)
            buffers[i] = b
            let bp = b.data
            parallelRanges(p.count, grain: 1 << 15) { lo, hi in
                for j in lo..<hi {
                    let gj = gp[j] + wd * w[j]
                    let bj = first ? gj : mu * bp[j] + (1 - tau) * gj
                    bp[j] = bj
                    w[j] -= lr * (nesterov ? gj + mu * bj : bj)
                }
            }
        }
    }

    public func stateEntries() -> [SafetensorsEntry] {
        OptimizerState.entries("optimizer.sgd.momentum", buffers)
            + [SafetensorsEntry(name: "optimizer.sgd.step", int64: Int64(stepCount))]
    }

    public func loadState(_ lookup: (String) -> SafetensorsEntry?) throws {
        try OptimizerState.load("optimizer.sgd.momentum", into: &buffers, like: parameters, lookup)
        stepCount = try OptimizerState.step(lookup, "optimizer.sgd.step")
    }
}
