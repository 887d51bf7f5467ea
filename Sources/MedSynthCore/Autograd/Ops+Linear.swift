// Differentiable matrix products: linear layers (torch.nn.functional.linear) and matmul
// (torch.matmul for 1-D, 2-D and batched operands).

// MARK: - Linear

/// y = x·Wᵀ + b (F.linear) for x [..., in], weight [out, in], bias [out] (optional) → y [..., out].
/// All leading dimensions of x are treated as one batch of rows, computed by one sgemm split over
/// the threads. As torch's addmm, y starts as the broadcast bias and the product is added to it.
/// Gradients: dx = dy·W, dW = dyᵀ·x (summed over rows), db = Σ_rows dy.
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) throws -> Tensor {
    try require(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    try require(x.rank >= 1 && x.shape[x.rank - 1] == inFeatures,
                "linear: input \(x.shape) must end with the weight's \(inFeatures) input features (weight \(weight.shape))")
    if let bias {
        try require(bias.shape == [outFeatures], "linear: bias must be [\(outFeatures)], got \(bias.shape)")
    }
    let rows = x.shape.dropLast().reduce(1, *)
    try checkResultSize(Array(x.shape.dropLast()) + [outFeatures], "linear")
    let y = try Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
    if LinearShape.fewRows(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures) {
        try linearFewRows(x.data, weight.data, bias?.data, y.data, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
    } else {
        if let bias {
            let b = bias.data, out = y.data
            parallelRanges(rows, grain: max(1, CopyKernel.grain / max(1, outFeatures))) { lo, hi in
                for r in lo..<hi { (out + r * outFeatures).update(from: b, count: outFeatures) }
            }
        }
        BLAS.parallelGemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
                          a: x.data, lda: max(1, inFeatures), b: weight.data, ldb: max(1, inFeatures),
                          beta: bias == nil ? 0 : 1, c: y.data, ldc: max(1, outFeatures))
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return y.recording(inputs) { dy in
        if x.needsGrad {
            // dx [rows, in] += dy [rows, out] · W [out, in]
            BLAS.parallelGemm(m: rows, n: inFeatures, k: outFeatures, a: dy.data, lda: max(1, outFeatures),
                              b: weight.data, ldb: max(1, inFeatures), beta: 1, c: try x.gradPointer(), ldc: max(1, inFeatures))
        }
        if weight.needsGrad {
            // dW [out, in] += dyᵀ [out, rows] · x [rows, in]
            BLAS.parallelGemm(transA: true, m: outFeatures, n: inFeatures, k: rows, a: dy.data, lda: max(1, outFeatures),
                              b: x.data, ldb: max(1, inFeatures), beta: 1, c: try weight.gradPointer(), ldc: max(1, inFeatures))
        }
        if let bias, bias.needsGrad {
            ElementwiseKernel.sumToShape(dy.data, [rows, outFeatures], try bias.gradPointer(), [outFeatures])
        }
    }
}

/// When a linear layer takes its fast path for a few rows through a large weight.
package enum LinearShape {
    /// Up to 64 rows (a classifier head at inference or training batch sizes) through a weight of
    /// a million values or more (AlexNet's and VGG's 9216/25088 → 4096 layers).
    package static func fewRows(rows: Int, inFeatures: Int, outFeatures: Int) -> Bool {
        rows >= 1 && rows <= 64 && inFeatures * outFeatures >= 1 << 20
    }
}

/// y = x·Wᵀ + b for a few rows, computed transposed: yᵀ [out, rows] = W [out, in] · xᵀ [in, rows].
/// Why: sgemm packs its operands into panels; as x·Wᵀ the packed operand is the weight, re-read
/// and re-written in full on every call, which for 32 rows costs as much as the multiply-adds
/// (sgemm_incopy was half of AlexNet's inference profile). As W·xᵀ the weight is the left
/// operand, split by rows over the threads, and only the few rows are packed; the two small
/// transposes cost a pass over x and y. Measured on AlexNet's 9216 → 4096 layer, 32 rows:
/// 47 ms against 64 ms (ops.matmul, 2 threads).
private func linearFewRows(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                           _ y: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int) throws {
    let scratch = try Storage(count: (inFeatures + outFeatures) * rows)
    let xt = scratch.pointer, yt = xt + inFeatures * rows
    // xᵀ [in, rows]
    parallelRanges(inFeatures, grain: 1024) { lo, hi in
        for r in 0..<rows {
            let src = x + r * inFeatures
            for k in lo..<hi { xt[k * rows + r] = src[k] }
        }
    }
    // yᵀ starts as the broadcast bias, as torch's addmm
    if let bias {
        parallelRanges(outFeatures, grain: 1024) { lo, hi in
            for o in lo..<hi { (yt + o * rows).update(repeating: bias[o], count: rows) }
        }
    }
    BLAS.parallelGemm(m: outFeatures, n: rows, k: inFeatures, a: weight, lda: inFeatures, b: xt, ldb: rows,
                      beta: bias == nil ? 0 : 1, c: yt, ldc: rows)
    parallelRanges(rows, grain: 1) { lo, hi in
        for r in lo..<hi {
            let dst = y + r * outFeatures
            for o in 0..<outFeatures { dst[o] = yt[o * rows + r] }
        }
    }
    withExtendedLifetime(scratch) {}
}

// MARK: - Matmul

/// Matrix product with torch.matmul's rules:
/// - 1-D · 1-D: dot product, shape [];
/// - 2-D · 2-D: [M, K]·[K, N] → [M, N];
/// - a 1-D operand is treated as a row ([1, K], left) or column ([K, 1], right) and that
///   dimension is removed from the result;
/// - batched: [..., M, K]·[..., K, N] → [batch..., M, N], where the batch dimensions broadcast.
///   Supported: both operands with the same batch (up to extents of 1), or one of them 2-D (or
///   with a batch of one element), shared by every product of the other. Other broadcasts of
///   the batch (e.g. [2, 1, …]·[1, 3, …]) throw; expand the operands first.
/// Batched products run in parallel over the batch; a shared right operand becomes one large
/// product. Gradients: dA = dC·Bᵀ, dB = Aᵀ·dC, summed over the batch for a shared operand.
public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try require(a.rank >= 1 && b.rank >= 1,
                "matmul: both operands need at least one dimension, got \(a.shape) and \(b.shape)")
    if a.rank == 1 || b.rank == 1 {
        // Promote vectors to matrices, multiply, and drop the added dimension (all differentiable).
        let a2 = a.rank == 1 ? try reshape(a, [1, a.shape[0]]) : a
        let b2 = b.rank == 1 ? try reshape(b, [b.shape[0], 1]) : b
        let c = try matmul(a2, b2)
        var shape = c.shape
        if b.rank == 1 { shape.removeLast() }
        if a.rank == 1 { shape.remove(at: shape.count - (b.rank == 1 ? 1 : 2)) }
        return try reshape(c, shape)
    }
    let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (k2, n) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    try require(k == k2, "matmul: inner dimensions differ: \(a.shape) · \(b.shape) (\(k) vs \(k2))")
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    guard let batchShape = broadcastShape(aBatch, bBatch) else {
        throw MedSynthError.invalidArgument("matmul: batch dimensions \(aBatch) and \(bBatch) do not broadcast")
    }
    let batch = batchShape.reduce(1, *)
    let aCount = aBatch.reduce(1, *), bCount = bBatch.reduce(1, *)
    try require((aCount == batch || aCount == 1) && (bCount == batch || bCount == 1),
                "matmul: batch dimensions \(aBatch) and \(bBatch) broadcast to \(batchShape) in a way that is not supported; expand the operands to the same batch shape first")
    // A single matrix (count 1) is shared; a full batch has one matrix per product.
    let aShared = aCount == 1 && batch > 1, bShared = bCount == 1 && batch > 1
    try checkResultSize(batchShape + [m, n], "matmul")
    let (lda, ldb, ldc) = (max(1, k), max(1, n), max(1, n))
    let y = try Tensor(uninitialized: batchShape + [m, n])   // gemm with k = 0 writes zeros

    if !aShared && (bShared || batch == 1) {
        // [batch·M, K] · [K, N]: one product over all rows.
        BLAS.parallelGemm(m: batch * m, n: n, k: k, a: a.data, lda: lda, b: b.data, ldb: ldb, c: y.data, ldc: ldc)
    } else {
        MatmulKernel.batched(batch: batch, m: m, n: n, k: k, a: a.data, strideA: aShared ? 0 : m * k, lda: lda,
                             b: b.data, strideB: bShared ? 0 : k * n, ldb: ldb, c: y.data, strideC: m * n, ldc: ldc)
    }

    return y.recording([a, b]) { dy in
        if a.needsGrad {
            let da = try a.gradPointer()
            if aShared {
                // dA += Σ_i dC_i · B_iᵀ, in batch order
                for i in 0..<batch {
                    BLAS.parallelGemm(transB: true, m: m, n: k, k: n, a: dy.data + i * m * n, lda: ldc,
                                      b: b.data + i * k * n, ldb: ldb, beta: 1, c: da, ldc: lda)
                }
            } else if bShared || batch == 1 {
                BLAS.parallelGemm(transB: true, m: batch * m, n: k, k: n, a: dy.data, lda: ldc,
                                  b: b.data, ldb: ldb, beta: 1, c: da, ldc: lda)
            } else {
                MatmulKernel.batched(transB: true, batch: batch, m: m, n: k, k: n, a: dy.data, strideA: m * n, lda: ldc,
                                     b: b.data, strideB: k * n, ldb: ldb, beta: 1, c: da, strideC: m * k, ldc: lda)
            }
        }
        if b.needsGrad {
            let db = try b.gradPointer()
            if bShared || batch == 1 {
                // dB += Σ_i A_iᵀ · dC_i = A_flatᵀ · dC_flat ([K, batch·M] · [batch·M, N]); A is never
                // shared here (both shared means batch == 1).
                BLAS.parallelGemm(transA: true, m: k, n: n, k: batch * m, a: a.data, lda: lda,
                                  b: dy.data, ldb: ldc, beta: 1, c: db, ldc: ldb)
            } else {
                MatmulKernel.batched(transA: true, batch: batch, m: k, n: n, k: m, a: a.data,
                                     strideA: aShared ? 0 : m * k, lda: lda, b: dy.data, strideB: m * n, ldb: ldc,
                                     beta: 1, c: db, strideC: k * n, ldc: ldb)
            }
        }
    }
}
