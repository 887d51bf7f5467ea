// Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention without mask,
// dropout or causal masking) as two sgemms per head with a row softmax in between.
//
// Legend: BH = heads in the batch (product of the leading dimensions), Lq = queries, Lk = keys,
// D = query/key width, Dv = value width. Per head, row-major:
//   forward   S = scale · Q Kᵀ [Lq, Lk]     P = softmax_rows(S)     O = P V [Lq, Dv]
//   backward  dV += Pᵀ dO                  dP = dO Vᵀ
//             dS = P ⊙ (dP − rowsum(dP ⊙ P))   (softmax backward, row by row)
//             dQ += scale · dS K            dK += scale · dSᵀ Q
// Only P [BH, Lq, Lk] is kept for backward (S is overwritten in place by P). With many heads each
// thread takes whole heads with its own score buffer (one sgemm per head, OpenBLAS single-threaded);
// with fewer heads than threads, heads run one after another and each product is split over the
// threads instead (`BLAS.parallelGemm`), so batch-1 sampling still uses every core.

public struct AttentionGeometry: Equatable {
    public var heads, queries, keys, width, valueWidth: Int
    public var scale: Float

    package var scoreCount: Int { queries * keys }
    package var qCount: Int { queries * width }
    package var kCount: Int { keys * width }
    package var vCount: Int { keys * valueWidth }
    package var oCount: Int { queries * valueWidth }
    /// Multiply-adds ×2 of the forward pass.
    public var forwardFlops: Double {
        2 * Double(heads) * Double(queries) * Double(keys) * Double(width + valueWidth)
    }
    /// Whole heads per thread when there are enough of them to keep every thread busy.
    package var headsInParallel: Bool { heads >= ThreadPool.shared.threadCount }
}

public enum AttentionKernel {
    /// A product over one head: per-thread sgemm when heads run in parallel, else split over threads.
    @inline(__always)
    package static func product(
        _ parallel: Bool, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if parallel {
            BLAS.parallelGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                              b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Runs `body(head, scratch)` for every head: in parallel over heads (each thread its own
    /// `scratchCount` floats), or serially with `splitProducts` true when heads are fewer than threads.
    package static func forEachHead(_ g: AttentionGeometry, scratchCount: Int,
                            _ body: (_ head: Int, _ scratch: UnsafeMutablePointer<Float>, _ splitProducts: Bool) -> Void) {
        let parallelHeads = g.headsInParallel
        let slots = parallelHeads ? ThreadPool.shared.threadCount : 1
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, scratchCount * slots))
        defer { scratch.deallocate() }
        if parallelHeads {
            ThreadPool.shared.run(count: g.heads) { participant, lo, hi in
                let own = scratch + participant * scratchCount
                for h in lo..<hi { body(h, own, false) }
            }
        } else {
            for h in 0..<g.heads { body(h, scratch, true) }
        }
    }

    /// Softmax of each of `rows` rows of `n` in place, split over threads when asked.
    @inline(__always)
    package static func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, n: Int, split: Bool) {
        if split {
            parallelRanges(rows, grain: max(1, 16_384 / max(n, 1))) { lo, hi in
                for i in lo..<hi { SoftmaxKernel.softmaxRow(s + i * n, s + i * n, n) }
            }
        } else {
            for i in 0..<rows { SoftmaxKernel.softmaxRow(s + i * n, s + i * n, n) }
        }
    }

    /// o = softmax(scale · q kᵀ) v for every head. When `probabilities` is non-nil, P is written
    /// there ([BH, Lq, Lk]) for backward; otherwise a per-thread buffer holds one head's scores.
    public static func forward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                               v: UnsafePointer<Float>, o: UnsafeMutablePointer<Float>,
                               probabilities: UnsafeMutablePointer<Float>?) {
        guard g.heads > 0 else { return }
        forEachHead(g, scratchCount: probabilities == nil ? g.scoreCount : 0) { h, scratch, split in
            let s = probabilities.map { $0 + h * g.scoreCount } ?? scratch
            product(split, transB: true, m: g.queries, n: g.keys, k: g.width, alpha: g.scale,
                    a: q + h * g.qCount, lda: g.width, b: k + h * g.kCount, ldb: g.width, beta: 0, c: s, ldc: g.keys)
            softmaxRows(s, rows: g.queries, n: g.keys, split: split)
            product(split, m: g.queries, n: g.valueWidth, k: g.keys, a: s, lda: g.keys,
                    b: v + h * g.vCount, ldb: g.valueWidth, beta: 0, c: o + h * g.oCount, ldc: g.valueWidth)
        }
    }

    /// Accumulates the gradients that are asked for (non-nil) from dO and the saved probabilities.
    public static func backward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                v: UnsafePointer<Float>, probabilities p: UnsafePointer<Float>,
                                dO: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>?,
                                dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?) {
        guard g.heads > 0 else { return }
        let needScores = dq != nil || dk != nil
        forEachHead(g, scratchCount: needScores ? g.scoreCount : 0) { h, dS, split in
            let ph = p + h * g.scoreCount, dOh = dO + h * g.oCount
            if let dv {
                // dV [Lk, Dv] += Pᵀ [Lk, Lq] · dO [Lq, Dv]
                product(split, transA: true, m: g.keys, n: g.valueWidth, k: g.queries, a: ph, lda: g.keys,
                        b: dOh, ldb: g.valueWidth, beta: 1, c: dv + h * g.vCount, ldc: g.valueWidth)
            }
            guard needScores else { return }
            // dP [Lq, Lk] = dO [Lq, Dv] · Vᵀ [Dv, Lk], then dS = P ⊙ (dP − rowsum(dP ⊙ P)) in place
            product(split, transB: true, m: g.queries, n: g.keys, k: g.valueWidth, a: dOh, lda: g.valueWidth,
                    b: v + h * g.vCount, ldb: g.valueWidth, beta: 0, c: dS, ldc: g.keys)
            let n = g.keys
            let rowBackward = { (lo: Int, hi: Int) in
                for i in lo..<hi {
                    let pr = ph + i * n, dr = dS + i * n
                    let s = Reduce.dot(pr, dr, n)
                    for j in 0..<n { dr[j] = pr[j] * (dr[j] - s) }
                }
            }
            if split { parallelRanges(g.queries, grain: max(1, 16_384 / max(n, 1)), rowBackward) } else { rowBackward(0, g.queries) }
            if let dq {
                // dQ [Lq, D] += scale · dS [Lq, Lk] · K [Lk, D]
                product(split, m: g.queries, n: g.width, k: g.keys, alpha: g.scale, a: dS, lda: g.keys,
                        b: k + h * g.kCount, ldb: g.width, beta: 1, c: dq + h * g.qCount, ldc: g.width)
            }
            if let dk {
                // dK [Lk, D] += scale · dSᵀ [Lk, Lq] · Q [Lq, D]
                product(split, transA: true, m: g.keys, n: g.width, k: g.queries, alpha: g.scale, a: dS, lda: g.keys,
                        b: q + h * g.qCount, ldb: g.width, beta: 1, c: dk + h * g.kCount, ldc: g.width)
            }
        }
    }
}
