// Differentiable normalisation layers (torch.nn.functional.batch_norm / group_norm semantics).

// MARK: - batch norm

/// Batch normalisation (Ioffe & Szegedy 2015), `torch.nn.functional.batch_norm`.
///
/// For x [N, C, *] (rank ≥ 2: [N, C], [N, C, L], [N, C, H, W], …), per channel c:
///   y = (x − μ_c) / √(σ²_c + eps) · weight_c + bias_c
/// - `training == true`: μ, σ² are the batch mean and the BIASED batch variance over the N·S values
///   of the channel (S = product of the trailing sizes). When running statistics are given they are
///   updated in place with the UNBIASED variance:
///     runningMean ← (1 − momentum)·runningMean + momentum·μ
///     runningVar  ← (1 − momentum)·runningVar  + momentum·σ²·M/(M − 1),   M = N·S.
///   Throws when M == 1 ("expected more than 1 value per channel when training").
/// - `training == false`: μ, σ² are `runningMean`, `runningVar` (both required).
/// `weight`, `bias`, `runningMean`, `runningVar` are [C]; weight = 1 and bias = 0 when nil.
/// Defaults as torch: momentum 0.1, eps 1e-5. Gradients flow to x, weight and bias (in eval mode
/// the x-gradient is dy·weight/√(runningVar + eps)); the running statistics get none.
/// `activation` is applied in the same pass; a `residual` of x's shape is added before it:
/// activation(bn(x) + residual), the end of a ResNet block, with no tensor for the sum (the
/// separate add and relu would keep two more block-sized tensors until the backward pass).
public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                      training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
                      activation: NormActivation = .identity, residual: Tensor? = nil) throws -> Tensor {
    try require(x.rank >= 2, "batchNorm: input must be [N, C, *] (rank 2 or more), got \(x.shape)")
    if let residual {
        try require(residual.shape == x.shape, "batchNorm: the residual must have the input's shape \(x.shape), got \(residual.shape)")
    }
    let n = x.shape[0], c = x.shape[1], s = x.shape[2...].reduce(1, *)
    for (name, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
        if let t { try require(t.shape == [c], "batchNorm: \(name) must be [\(c)] (one value per channel), got \(t.shape)") }
    }
    try require((runningMean == nil) == (runningVar == nil),
                "batchNorm: pass both runningMean and runningVar, or neither")
    try require(training || runningMean != nil,
                "batchNorm: runningMean and runningVar must be given in evaluation mode (training: false)")
    let m = n * s
    if training {
        try require(m != 1, "batchNorm: expected more than 1 value per channel when training, got input of shape \(x.shape)")
    }

    // saved[0..<c] = mean, saved[c..<2c] = invstd (what backward needs)
    let saved = try Storage(count: 2 * c)
    let mean = saved.pointer, invstd = saved.pointer + c
    if training {
        if m == 0 {
            // an empty batch: nothing to normalise; torch leaves the running stats alone
            mean.initialize(repeating: 0, count: c)
            invstd.initialize(repeating: 0, count: c)
        } else {
            var batchMean = [Double](repeating: 0, count: c), batchVar = [Double](repeating: 0, count: c)
            batchMean.withUnsafeMutableBufferPointer { bm in
                batchVar.withUnsafeMutableBufferPointer { bv in
                    BatchNormKernel.statistics(x: x.data, n: n, c: c, s: s, mean: bm.baseAddress!, variance: bv.baseAddress!)
                }
            }
            for ch in 0..<c {
                mean[ch] = Float(batchMean[ch])
                invstd[ch] = Float(1 / (batchVar[ch] + Double(eps)).squareRoot())
            }
            if let runningMean, let runningVar {
                let mom = Double(momentum), unbias = Double(m) / Double(m - 1)
                let rm = runningMean.data, rv = runningVar.data
                for ch in 0..<c {
                    rm[ch] = Float((1 - mom) * Double(rm[ch]) + mom * batchMean[ch])
                    rv[ch] = Float((1 - mom) * Double(rv[ch]) + mom * batchVar[ch] * unbias)
                }
            }
        }
    } else if let runningMean, let runningVar {
        for ch in 0..<c {
            mean[ch] = runningMean.data[ch]
            invstd[ch] = Float(1 / (Double(runningVar.data[ch]) + Double(eps)).squareRoot())
        }
    }

    let y = try Tensor(uninitialized: x.shape)
    let (low, high) = activation.bounds
    BatchNormKernel.forward(x: x.data, n: n, c: c, s: s, mean: mean, invstd: invstd,
                            weight: weight?.data, bias: bias?.data, y: y.data, low: low, high: high,
                            residual: residual?.data)
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    if let residual { inputs.append(residual) }
    // the output only for the activation's gradient
    let output = activation == .identity ? nil : y.storage
    return y.recording(inputs) { dy in
        // through the activation first: its gradient from the output, as relu's and relu6's own
        var dz = dy.data, masked: Storage? = nil
        if let output {
            let m = try Storage(count: x.count)
            ElementwiseKernel.zip(ActivationKernel.ClampGradient(high: activation == .relu6 ? 6 : .nan), dy.data, output.pointer, m.pointer, x.count,
                                  accumulate: false, grain: ElementwiseKernel.grain)
            (dz, masked) = (m.pointer, m)
        }
        defer { withExtendedLifetime(masked) {} }
        if let residual, residual.needsGrad { try accumulateBroadcastGradient(dz, shape: x.shape, into: residual) }
        BatchNormKernel.backward(x: x.data, dy: dz, n: n, c: c, s: s,
                                 mean: saved.pointer, invstd: saved.pointer + c, weight: weight?.data,
                                 training: training,
                                 dx: try x.needsGrad ? x.gradPointer() : nil,
                                 dWeight: try (weight?.needsGrad ?? false) ? weight?.gradPointer() : nil,
                                 dBias: try (bias?.needsGrad ?? false) ? bias?.gradPointer() : nil)
    }
}

/// An activation applied to a normalisation's output in the same pass (one sweep over memory
/// instead of two, and no intermediate tensor): `batchNorm(..., activation: .relu)` equals
/// `relu(batchNorm(...))`, values and gradients.
public enum NormActivation: Equatable {
    case identity, relu, relu6

    /// The clamp bounds of the output.
    var bounds: (Float, Float) {
        switch self {
        case .identity: return (-.infinity, .infinity)
        case .relu: return (0, .infinity)
        case .relu6: return (0, 6)
        }
    }
}

// MARK: - group norm

/// Group normalisation (Wu & He 2018), `torch.nn.functional.group_norm`.
///
/// For x [N, C, *] the C channels are split into `groups` consecutive groups of C/groups channels;
/// per sample n and group g, over its (C/groups)·S values (S = product of the trailing sizes):
///   y = (x − μ_ng) / √(σ²_ng + eps) · weight_c + bias_c      (σ² biased)
/// `weight`, `bias` are [C] (per channel, not per group); 1 and 0 when nil. Default eps 1e-5.
/// C must be divisible by `groups`. Gradients flow to x, weight and bias.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
    try require(x.rank >= 2, "groupNorm: input must be [N, C, *] (rank 2 or more), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], s = x.shape[2...].reduce(1, *)
    try require(groups >= 1, "groupNorm: groups must be at least 1, got \(groups)")
    try require(c % groups == 0, "groupNorm: expected the number of channels (\(c)) to be divisible by groups (\(groups))")
    if let weight { try require(weight.shape == [c], "groupNorm: weight must be [\(c)] (one value per channel), got \(weight.shape)") }
    if let bias { try require(bias.shape == [c], "groupNorm: bias must be [\(c)] (one value per channel), got \(bias.shape)") }

    let blocks = n * groups
    let saved = try Storage(zeros: 2 * blocks)   // mean, then invstd, per (n, group)
    let y = try Tensor(uninitialized: x.shape)
    GroupNormKernel.forward(x: x.data, n: n, c: c, s: s, groups: groups, eps: eps,
                            weight: weight?.data, bias: bias?.data, y: y.data,
                            mean: saved.pointer, invstd: saved.pointer + blocks)
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return y.recording(inputs) { dy in
        GroupNormKernel.backward(x: x.data, dy: dy.data, n: n, c: c, s: s, groups: groups,
                                 mean: saved.pointer, invstd: saved.pointer + blocks, weight: weight?.data,
                                 dx: try x.needsGrad ? x.gradPointer() : nil,
                                 dWeight: try (weight?.needsGrad ?? false) ? weight?.gradPointer() : nil,
                                 dBias: try (bias?.needsGrad ?? false) ? bias?.gradPointer() : nil)
    }
}

/// SiLU(groupNorm(x)) in one operation (same values as the two applied in turn, less memory: the
/// normalised tensor is recomputed in backward instead of kept).
public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
    try require(x.rank >= 2, "groupNormSiLU: input must be [N, C, *] (rank 2 or more), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], s = x.shape[2...].reduce(1, *)
    try require(groups >= 1 && c % groups == 0, "groupNormSiLU: \(c) channels are not divisible into \(groups) groups")
    if let weight { try require(weight.shape == [c], "groupNormSiLU: weight must be [\(c)], got \(weight.shape)") }
    if let bias { try require(bias.shape == [c], "groupNormSiLU: bias must be [\(c)], got \(bias.shape)") }
    let blocks = n * groups
    let saved = try Storage(zeros: 2 * blocks)
    let out = try Tensor(uninitialized: x.shape)
    GroupNormSiLUKernel.forward(x: x.data, n: n, c: c, s: s, groups: groups, eps: eps, weight: weight?.data,
                                bias: bias?.data, out: out.data, mean: saved.pointer, invstd: saved.pointer + blocks)
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    return out.recording(inputs) { ds in
        try GroupNormSiLUKernel.backward(x: x.data, ds: ds.data, n: n, c: c, s: s, groups: groups, mean: saved.pointer,
                                     invstd: saved.pointer + blocks, weight: weight?.data, bias: bias?.data,
                                     dx: try x.needsGrad ? x.gradPointer() : nil,
                                     dWeight: try (weight?.needsGrad ?? false) ? weight?.gradPointer() : nil,
                                     dBias: try (bias?.needsGrad ?? false) ? bias?.gradPointer() : nil)
    }
}
