// Differentiable activation functions (torch.nn.functional semantics). The formulas and their
// derivatives are listed in Kernels/Activations.swift. Each is one vectorised pass forward and one
// backward, split over the thread pool for large tensors; each saves either its input or its
// output (never both) for the backward pass.

/// relu(x) = max(x, 0) (F.relu; NaN stays NaN). Gradient: 0 where the output is ≤ 0, dy
/// elsewhere, so relu'(0) = 0 as in torch (threshold_backward on the output).
public func relu(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, ActivationKernel.ReLU(), usesOutput: true, ActivationKernel.ReLUGradient())
}

/// relu6(x) = min(max(x, 0), 6) (F.relu6, i.e. hardtanh(x, 0, 6)). Gradient: 0 for x ≤ 0 or
/// x ≥ 6 (so 0 exactly at 0 and at 6, torch's hardtanh_backward), dy elsewhere.
public func relu6(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, ActivationKernel.ReLU6(), ActivationKernel.ReLU6Gradient())
}

/// leaky_relu(x) = x for x > 0, negativeSlope·x otherwise (F.leaky_relu, default slope 0.01).
/// Gradient: 1 for x > 0, negativeSlope for x ≤ 0 (so at exactly 0 it is the slope, as torch).
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) throws -> Tensor {
    try unaryOp(x, ActivationKernel.LeakyReLU(slope: negativeSlope),
            ActivationKernel.LeakyReLUGradient(slope: negativeSlope))
}

/// σ(x) = 1 / (1 + e^−x) (torch.sigmoid). Gradient dy·(1 − σ)·σ from the saved output.
public func sigmoid(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, ActivationKernel.Sigmoid(), grain: ElementwiseKernel.transcendentalGrain, usesOutput: true,
            ActivationKernel.SigmoidGradient())
}

/// tanh(x) (torch.tanh). Gradient dy·(1 − y²) from the saved output.
public func tanh(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, ActivationKernel.Tanh(), grain: ElementwiseKernel.transcendentalGrain, usesOutput: true,
            ActivationKernel.TanhGradient())
}

/// silu(x) = x·σ(x) (F.silu, "swish"; Elfwing et al. 2017, Ramachandran et al. 2017).
/// Gradient σ(x)·(1 + x·(1 − σ(x))).
public func silu(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, ActivationKernel.SiLU(), grain: ElementwiseKernel.transcendentalGrain,
            ActivationKernel.SiLUGradient())
}

/// The GELU variants of torch's `approximate` argument.
public enum GELUApproximation: Sendable {
    /// x·Φ(x) with the exact normal CDF, Φ(x) = ½(1 + erf(x/√2)) (torch's default, "none").
    case none
    /// ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (approximate="tanh").
    case tanh
}

/// gelu(x) = x·Φ(x) (F.gelu; Hendrycks & Gimpel 2016, "Gaussian Error Linear Units"). The default
/// is the exact erf form (torch approximate="none"); `.tanh` selects the tanh approximation.
/// Gradient Φ(x) + x·φ(x) (exact) or the derivative of the tanh form.
public func gelu(_ x: Tensor, approximate: GELUApproximation = .none) throws -> Tensor {
    switch approximate {
    case .none:
        return try unaryOp(x, ActivationKernel.GELU(), grain: ElementwiseKernel.transcendentalGrain,
                       ActivationKernel.GELUGradient())
    case .tanh:
        return try unaryOp(x, ActivationKernel.GELUTanh(), grain: ElementwiseKernel.transcendentalGrain,
                       ActivationKernel.GELUTanhGradient())
    }
}
