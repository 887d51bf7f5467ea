// Differentiable losses (torch.nn.functional.cross_entropy, mse_loss,
// binary_cross_entropy_with_logits semantics).

/// How a loss combines its per-element (or per-sample) values: torch's `reduction=` argument.
public enum LossReduction: Sendable, Equatable {
    /// No reduction: one value per element (per sample for cross entropy).
    case none
    /// The (weighted) mean; see each loss for what it divides by.
    case mean
    /// The sum.
    case sum
}

// MARK: - cross entropy

/// Cross entropy between logits and class-index targets, fused (log-softmax + negative
/// log-likelihood), with exactly torch.nn.functional.cross_entropy's semantics
/// (aten/src/ATen/native/LossNLL.cpp: `nll_loss`, `cross_entropy_loss_label_smoothing`).
///
/// For logits z [N, C], targets t [N], class weights w [C] (all 1 when nil), smoothing ε,
/// log p_nc = z_nc − log Σ_k exp(z_nk), and each row n that is not ignored (t_n ≠ ignoreIndex):
///
///     nll_n    = −w_{t_n} · log p_{n,t_n}
///     smooth_n = −Σ_c w_c · log p_nc
///     ℓ_n      = (1 − ε) · nll_n + (ε / C) · smooth_n
///
/// Ignored rows contribute 0 and are left out of the mean's denominator. Reductions:
/// - `.none`: [N], ℓ_n (0 for ignored rows);
/// - `.sum`: Σ_n ℓ_n;
/// - `.mean` (default): Σ_n ℓ_n / Σ_{n not ignored} w_{t_n}, i.e. divided by the summed weights of
///   the target classes (the number of non-ignored rows when unweighted), not by N. Both the NLL
///   and the smoothing term use this denominator, as torch does. No rows left (N = 0 or all
///   ignored) gives NaN, as in torch.
///
/// With ε > 0 the class weights enter the smoothing term per class (w_c), not through the target's
/// weight, which is what torch computes (Szegedy et al. 2016, "Rethinking the Inception
/// Architecture", for label smoothing itself). `weight` is treated as a constant (torch does not
/// differentiate class weights either); gradients flow to `logits` only.
///
/// Throws when logits are not [N, C], targets.count ≠ N, a target is neither `ignoreIndex` nor in
/// [0, C), weight is not [C], or labelSmoothing is outside [0, 1] (torch silently ignores a
/// negative value; here it is an error).
public func crossEntropy(logits: Tensor, targets: [Int], weight: Tensor? = nil, labelSmoothing: Float = 0,
                         ignoreIndex: Int = -100, reduction: LossReduction = .mean) throws -> Tensor {
    try require(logits.rank == 2, "crossEntropy: logits must be [N, C], got \(logits.shape)")
    let rows = logits.shape[0], classes = logits.shape[1]
    try require(targets.count == rows,
                "crossEntropy: expected \(rows) targets (one per row of logits \(logits.shape)), got \(targets.count)")
    if let weight {
        try require(weight.shape == [classes],
                    "crossEntropy: weight must hold one value per class, shape [\(classes)], got \(weight.shape)")
    }
    try require(labelSmoothing >= 0 && labelSmoothing <= 1,
                "crossEntropy: labelSmoothing must be between 0.0 and 1.0, got \(labelSmoothing)")
    for (i, t) in targets.enumerated() where t != ignoreIndex {
        try require(t >= 0 && t < classes,
                    "crossEntropy: target \(t) at index \(i) is out of bounds for \(classes) classes (valid: 0...\(classes - 1), or ignoreIndex \(ignoreIndex))")
    }

    let smoothing = labelSmoothing
    let lse = try Storage(count: rows)
    let perRow = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 2 * rows))
    defer { perRow.deallocate() }
    let nll = perRow, smooth = perRow + rows
    let weightData = weight.map { UnsafePointer($0.data) }
    targets.withUnsafeBufferPointer { tp in
        guard let tb = tp.baseAddress else { return }
        LossKernel.crossEntropyForward(logits: logits.data, rows: rows, classes: classes, targets: tb,
                                       weight: weightData, ignoreIndex: ignoreIndex, lse: lse.pointer,
                                       nll: nll, smooth: smoothing > 0 ? smooth : nil)
    }
    let keep = 1 - smoothing, spread = smoothing / Float(classes)

    // The mean's denominator: Σ w_t over rows that are not ignored.
    var divisor: Float = 1
    let result: Tensor
    switch reduction {
    case .none:
        result = try Tensor(uninitialized: [rows])
        let y = result.data
        for n in 0..<rows { y[n] = smoothing > 0 ? keep * nll[n] + smooth[n] * spread : nll[n] }
    case .sum, .mean:
        var nllSum = 0.0, smoothSum = 0.0, weightTotal = 0.0
        for n in 0..<rows {
            nllSum += Double(nll[n])
            if smoothing > 0 { smoothSum += Double(smooth[n]) }
            let t = targets[n]
            if t != ignoreIndex { weightTotal += Double(weightData?[t] ?? 1) }
        }
        var a = Float(nllSum), b = Float(smoothSum)
        if reduction == .mean {
            divisor = Float(weightTotal)
            a /= divisor
            b /= divisor
        }
        result = try Tensor(repeating: smoothing > 0 ? keep * a + b * spread : a, shape: [])
    }

    // The closure keeps the weight's storage alive (its pointer alone would dangle).
    let weightStorage = weight?.storage
    return result.recording([logits]) { dy in
        guard logits.needsGrad else { return }
        let weightData = weightStorage.map { UnsafePointer($0.pointer) }
        try targets.withUnsafeBufferPointer { tp in
            guard let tb = tp.baseAddress else { return }
            LossKernel.crossEntropyBackward(
                logits: logits.data, rows: rows, classes: classes, targets: tb, weight: weightData,
                ignoreIndex: ignoreIndex, smoothing: smoothing, lse: lse.pointer,
                coefficient: dy.data, coefficientStride: reduction == .none ? 1 : 0, divisor: divisor,
                dLogits: try logits.gradPointer())
        }
    }
}

// MARK: - mean squared error

/// Squared error (torch.nn.functional.mse_loss): ℓ_i = (input_i − target_i)²; `.mean` (default)
/// divides Σ ℓ by the element count (NaN for an empty tensor), `.sum` sums, `.none` keeps the shape.
/// Shapes must be equal (torch broadcasts with a warning that the result is likely wrong; here it
/// is an error). Gradients flow to both input and target: ∂ℓ_i/∂input_i = 2 (input_i − target_i).
public func mseLoss(_ input: Tensor, _ target: Tensor, reduction: LossReduction = .mean) throws -> Tensor {
    try require(input.shape == target.shape,
                "mseLoss: input \(input.shape) and target \(target.shape) must have the same shape")
    let count = input.count
    let result: Tensor
    switch reduction {
    case .none:
        result = try Tensor(uninitialized: input.shape)
        LossKernel.squaredError(input.data, target.data, result.data, count: count)
    case .sum:
        result = try Tensor(repeating: Float(LossKernel.sumSquaredError(input.data, target.data, count: count)), shape: [])
    case .mean:
        let s = LossKernel.sumSquaredError(input.data, target.data, count: count)
        result = try Tensor(repeating: Float(s / Double(count)), shape: [])
    }
    return result.recording([input, target]) { dy in
        let dx = try input.needsGrad ? input.gradPointer() : nil
        let dt = try target.needsGrad ? target.gradPointer() : nil
        guard dx != nil || dt != nil else { return }
        LossKernel.squaredErrorBackward(
            input.data, target.data, count: count, dy: dy.data, dyStride: reduction == .none ? 1 : 0,
            scale: reduction == .mean ? 1 / Float(count) : 1, dx: dx, dt: dt)
    }
}

/// Per-sample weighted mean squared error, the min-SNR-γ diffusion loss (Hang et al. 2023,
/// arXiv 2303.09556; lucidrains' `p_losses`: `mse_loss(reduction='none')`, mean over all but the
/// batch dimension, times `loss_weight`, mean):
///
///     L = (1/N) Σ_n w_n · (1/M) Σ_{i<M} (input_ni − target_ni)²
///
/// for input and target of the same shape [N, ...] (M elements per sample) and sampleWeights [N].
/// A scalar; NaN when N = 0 or M = 0, as the torch expression gives. Gradients flow to input,
/// target and sampleWeights (∂L/∂w_n = mse_n / N).
public func mseLoss(_ input: Tensor, _ target: Tensor, sampleWeights: Tensor) throws -> Tensor {
    try require(input.rank >= 1, "mseLoss: input must have a batch dimension, got shape \(input.shape)")
    try require(input.shape == target.shape,
                "mseLoss: input \(input.shape) and target \(target.shape) must have the same shape")
    let samples = input.shape[0]
    try require(sampleWeights.shape == [samples],
                "mseLoss: sampleWeights must hold one weight per sample, shape [\(samples)], got \(sampleWeights.shape)")
    let elements = samples == 0 ? 0 : input.count / samples
    let perSample = try Storage(count: samples)
    LossKernel.perSampleMeanSquaredError(input.data, target.data, samples: samples, elements: elements,
                                         perSample: perSample.pointer)
    var s = 0.0
    for n in 0..<samples { s += Double(sampleWeights.data[n]) * Double(perSample.pointer[n]) }
    let result = try Tensor(repeating: Float(s / Double(samples)), shape: [])
    return result.recording([input, target, sampleWeights]) { dy in
        let dx = try input.needsGrad ? input.gradPointer() : nil
        let dt = try target.needsGrad ? target.gradPointer() : nil
        let dw = try sampleWeights.needsGrad ? sampleWeights.gradPointer() : nil
        LossKernel.weightedSquaredErrorBackward(
            input.data, target.data, weights: sampleWeights.data, perSample: perSample.pointer,
            samples: samples, elements: elements, upstream: dy.data[0], dx: dx, dt: dt, dWeights: dw)
    }
}

// MARK: - binary cross entropy with logits

/// Binary cross entropy on logits (torch.nn.functional.binary_cross_entropy_with_logits), the
/// numerically stable form of BCE(sigmoid(x), t):
///
///     ℓ_i = w_i · [(1 − t_i) · x_i − (1 + (pw_c − 1) · t_i) · log σ(x_i)],
///     log σ(x) = min(x, 0) − log1p(exp(−|x|))
///
/// for input x and target t of the same shape, c the index along the last dimension. `weight` is
/// either input-shaped or [C] (one per class, broadcast over the rows); `posWeight` (pos_weight) is
/// [C]. `.mean` (default) divides by the element count, `.sum` sums, `.none` keeps the shape.
/// Gradients flow to input and target; weight and posWeight are treated as constants.
public func binaryCrossEntropyWithLogits(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil,
                                         posWeight: Tensor? = nil, reduction: LossReduction = .mean) throws -> Tensor {
    try require(input.shape == target.shape,
                "binaryCrossEntropyWithLogits: input \(input.shape) and target \(target.shape) must have the same shape")
    let classes = input.shape.last ?? 1
    let rows = classes == 0 ? 0 : input.count / classes
    var weightPerClass = false
    if let weight {
        weightPerClass = weight.shape == [classes] && weight.shape != input.shape
        try require(weight.shape == input.shape || weightPerClass,
                    "binaryCrossEntropyWithLogits: weight must have the input's shape \(input.shape) or [\(classes)], got \(weight.shape)")
    }
    if let posWeight {
        try require(posWeight.shape == [classes],
                    "binaryCrossEntropyWithLogits: posWeight must hold one value per class, shape [\(classes)], got \(posWeight.shape)")
    }
    let count = input.count
    let losses = try Tensor(uninitialized: input.shape)
    let weightStorage = weight?.storage, posWeightStorage = posWeight?.storage
    LossKernel.bceWithLogits(input.data, target.data, rows: rows, classes: classes,
                             weight: weightStorage.map { UnsafePointer($0.pointer) }, weightPerClass: weightPerClass,
                             posWeight: posWeightStorage.map { UnsafePointer($0.pointer) }, loss: losses.data)
    let result: Tensor
    switch reduction {
    case .none:
        result = losses
    case .sum, .mean:
        var s = 0.0
        for i in 0..<count { s += Double(losses.data[i]) }
        if reduction == .mean { s /= Double(count) }
        result = try Tensor(repeating: Float(s), shape: [])
    }
    // `.none` returns `losses` itself: the closure must not capture it (it does not; it uses dy).
    return result.recording([input, target]) { dy in
        let dx = try input.needsGrad ? input.gradPointer() : nil
        let dt = try target.needsGrad ? target.gradPointer() : nil
        guard dx != nil || dt != nil else { return }
        LossKernel.bceWithLogitsBackward(
            input.data, target.data, rows: rows, classes: classes,
            weight: weightStorage.map { UnsafePointer($0.pointer) }, weightPerClass: weightPerClass,
            posWeight: posWeightStorage.map { UnsafePointer($0.pointer) }, dy: dy.data, dyStride: reduction == .none ? 1 : 0,
            scale: reduction == .mean ? 1 / Float(count) : 1, dx: dx, dt: dt)
    }
}
