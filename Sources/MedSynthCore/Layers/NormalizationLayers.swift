/// Batch normalisation over [N, C, H, W] or [N, C] (torch.nn.BatchNorm2d / BatchNorm1d):
/// γ = 1, β = 0, running mean 0 and variance 1; momentum 0.1 and eps 1e-5 are torch's defaults
/// (GoogLeNet uses eps 1e-3). The state dict carries `num_batches_tracked` as I64, as torch's does.
public final class BatchNorm: Layer {
    public let weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor
    public let momentum: Float, eps: Float
    public private(set) var batchesTracked: Int64 = 0

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) throws {
        weight = try Tensor(repeating: 1, shape: [channels])
        bias = try Tensor(zeros: [channels])
        runningMean = try Tensor(zeros: [channels])
        runningVar = try Tensor(repeating: 1, shape: [channels])
        self.momentum = momentum
        self.eps = eps
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
        registerBuffer("running_mean", runningMean)
        registerBuffer("running_var", runningVar)
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try forward(x, activation: .identity) }

    /// The activation applied to the output in the same pass, after adding `residual` when one is
    /// given: `forward(x, activation: .relu, residual: r)` equals `relu(add(forward(x), r))`.
    public func forward(_ x: Tensor, activation: NormActivation, residual: Tensor? = nil) throws -> Tensor {
        if isTraining { batchesTracked += 1 }
        return try batchNorm(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                             training: isTraining, momentum: momentum, eps: eps, activation: activation, residual: residual)
    }

    public override func localStateEntries(prefix: String) -> [SafetensorsEntry] {
        super.localStateEntries(prefix: prefix) + [SafetensorsEntry(name: prefix + "num_batches_tracked", int64: batchesTracked)]
    }

    public override func localStateLayout(prefix: String) -> [(name: String, dtype: SafetensorsDType, shape: [Int])] {
        super.localStateLayout(prefix: prefix) + [(prefix + "num_batches_tracked", .I64, [])]
    }

    public override func loadLocalState(prefix: String, from lookup: (String) -> SafetensorsEntry?) throws {
        try super.loadLocalState(prefix: prefix, from: lookup)
        // torch tolerates a missing counter (old checkpoints); so do we
        if let e = lookup(prefix + "num_batches_tracked") {
            guard let v = e.int64Scalar(), v >= 0 else {
                throw MedSynthError.invalidArgument(
                    "checkpoint tensor '\(prefix)num_batches_tracked' must hold one non-negative I64 integer, got \(e.dtype.rawValue) of shape \(e.shape)")
            }
            batchesTracked = v
        }
    }
}

/// Group normalisation (torch.nn.GroupNorm, Wu & He 2018): statistics over each group of
/// channels of each sample; γ = 1, β = 0, eps 1e-5.
public final class GroupNorm: Layer {
    public let groups: Int, eps: Float
    public let weight: Tensor, bias: Tensor

    public init(groups: Int, channels: Int, eps: Float = 1e-5) throws {
        self.groups = groups
        self.eps = eps
        weight = try Tensor(repeating: 1, shape: [channels])
        bias = try Tensor(zeros: [channels])
        super.init()
        registerParameter("weight", weight)
        registerParameter("bias", bias)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

extension GroupNorm {
    /// SiLU(self(x)) as one fused operation.
    public func withSiLU(_ x: Tensor) throws -> Tensor {
        try groupNormSiLU(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}
