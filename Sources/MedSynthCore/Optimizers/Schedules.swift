// Learning-rate schedules, gradient clipping and the exponential moving average of weights.

import Glibc

public enum LRSchedule: Equatable {
    case constant
    /// lr · γ^⌊step / stepSize⌋ (torch.optim.lr_scheduler.StepLR).
    case step(stepSize: Int, gamma: Float)
    /// Linear warmup from 0 over `warmupSteps`, then cosine decay to `minLR` at `totalSteps`
    /// (transformers/diffusers get_cosine_schedule_with_warmup, with a floor).
    case cosine(warmupSteps: Int, totalSteps: Int, minLR: Float)

    /// The learning rate for 0-based `step`.
    public func learningRate(base: Float, step: Int) -> Float {
        switch self {
        case .constant:
            return base
        case .step(let size, let gamma):
            return base * Float.pow(gamma, Float(step / max(size, 1)))
        case .cosine(let warmup, let total, let minLR):
            if step < warmup { return base * Float(step + 1) / Float(warmup) }
            let progress = min(1, Float(step - warmup) / Float(max(1, total - warmup)))
            return minLR + (base - minLR) * 0.5 * (1 + cos(Float.pi * progress))
        }
    }
}

public enum GradientClipping {
    /// Scales all gradients so their global L2 norm is at most `maxNorm`
    /// (torch.nn.utils.clip_grad_norm_: coefficient maxNorm / (norm + 1e-6), clamped at 1).
    /// Returns the norm before clipping (non-finite when a gradient is).
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
        var total: Double = 0
        for p in parameters { if let g = p.grad { total += Double(Reduce.sumOfSquares(g.data, g.count)) } }
        let norm = Float(total.squareRoot())
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for p in parameters {
                guard let g = p.grad else { continue }
                let gp = g.data
                for j in 0..<g.count { gp[j] *= coefficient }
            }
        }
        return norm
    }
}

/// Exponential moving average of parameters (Polyak averaging), as diffusers' EMAModel:
/// shadow ← d·shadow + (1−d)·θ with d = min(decay, (1 + t)/(10 + t)) so that early averages are not
/// dominated by the random initialisation ("EMA samples are pure noise" when decay 0.9999 meets a
/// few thousand steps; see ../shared/notes/diffusion.md).
public final class ExponentialMovingAverage {
    public let decay: Float
    public package(set) var updates = 0
    public let shadow: [Tensor]
    package let parameters: [Tensor]

    public init(_ parameters: [Tensor], decay: Float = 0.999) throws {
        self.parameters = parameters
        self.decay = decay
        shadow = try parameters.map { try $0.copy() }
    }

    public var currentDecay: Float { min(decay, Float(1 + updates) / Float(10 + updates)) }

    public func update() {
        let d = currentDecay
        updates += 1
        for (s, p) in zip(shadow, parameters) {
            let (sp, pp) = (s.data, p.data)
            parallelRanges(s.count, grain: 1 << 16) { lo, hi in
                for j in lo..<hi { sp[j] = d * sp[j] + (1 - d) * pp[j] }
            }
        }
    }

    /// Swaps the averaged and the live weights (call again to swap back).
    public func swap() {
        for (s, p) in zip(shadow, parameters) {
            let (sp, pp) = (s.data, p.data)
            for j in 0..<s.count { let t = sp[j]; sp[j] = pp[j]; pp[j] = t }
        }
    }

    public func stateEntries(prefix: String = "ema") -> [SafetensorsEntry] {
        shadow.enumerated().map { SafetensorsEntry(name: "\(prefix).\($0.offset)", tensor: $0.element) }
            + [SafetensorsEntry(name: "\(prefix).updates", int64: Int64(updates))]
    }

    public func loadState(prefix: String = "ema", _ lookup: (String) -> SafetensorsEntry?) throws {
        for (i, s) in shadow.enumerated() {
            guard let e = lookup("\(prefix).\(i)") else { throw ModuleError.missing("\(prefix).\(i)") }
            s.data.update(fromArray: try e.finiteFloats(shape: s.shape))
        }
        updates = try OptimizerState.step(lookup, "\(prefix).updates")
    }
}
