// Multi-head self-attention over the pixels of a feature map, in the channels-first layout the
// U-Net's 1×1 convolutions produce: qkv [B, 3C, L] (L = H·W) → out [B, C, L], with no transposes.
// For each (image, head) with q, k, v the [D, L] slices (D = C / heads):
//   S = s · qᵀk  [L, L]     P = softmax_rows(S)     O = v · Pᵀ  [D, L]
// Backward (dO → dq, dk, dv; P is kept from the forward pass):
//   dv = dO · P     dP = dOᵀ · v     dS = P ⊙ (dP − rowsum(dP ⊙ P))
//   dq = s · k · dSᵀ     dk = s · q · dS
// (Vaswani et al. 2017; the DDPM U-Net's AttnBlock is the one-head case, s = 1/√C.)

public struct SpatialAttentionGeometry {
    public var batch, channels, length, heads: Int
    package var headChannels: Int { channels / heads }
    package var qkvImage: Int { 3 * channels * length }
    package var outImage: Int { channels * length }
    package var scoreCount: Int { length * length }
}

package enum SpatialAttentionKernel {
    /// Runs `body(b, h, scratch)` for every (image, head), spread over the thread pool; each
    /// participant gets its own `scratchCount` floats.
    package static func forEachHead(_ g: SpatialAttentionGeometry, scratchCount: Int,
                            _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) throws {
        let items = g.batch * g.heads
        let scratch = try Storage(count: max(1, scratchCount * min(items, ThreadPool.shared.threadCount)))
        ThreadPool.shared.run(count: items) { participant, lo, hi in
            let s = scratch.pointer + participant * scratchCount
            for item in lo..<hi { body(item / g.heads, item % g.heads, s) }
        }
        withExtendedLifetime(scratch) {}
    }

    /// out [B, C, L] from qkv [B, 3C, L]; the probabilities go to `probabilities` [B, heads, L, L]
    /// when given (for backward).
    package static func forward(_ g: SpatialAttentionGeometry, qkv: UnsafePointer<Float>, scale: Float,
                        out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>?) throws {
        let (d, l) = (g.headChannels, g.length)
        try forEachHead(g, scratchCount: probabilities == nil ? g.scoreCount : 0) { b, h, scratch in
            let base = qkv + b * g.qkvImage
            let q = base + h * d * l, k = base + (g.channels + h * d) * l, v = base + (2 * g.channels + h * d) * l
            let p = probabilities.map { $0 + (b * g.heads + h) * g.scoreCount } ?? scratch
            BLAS.gemm(transA: true, m: l, n: l, k: d, alpha: scale, a: q, lda: l, b: k, ldb: l, beta: 0, c: p, ldc: l)
            for row in 0..<l { SoftmaxKernel.softmaxRow(p + row * l, p + row * l, l) }
            BLAS.gemm(transB: true, m: d, n: l, k: l, a: v, lda: l, b: p, ldb: l, beta: 0,
                      c: out + b * g.outImage + h * d * l, ldc: l)
        }
    }

    /// dqkv += gradient of out with respect to qkv.
    package static func backward(_ g: SpatialAttentionGeometry, qkv: UnsafePointer<Float>, scale: Float,
                         probabilities: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                         dqkv: UnsafeMutablePointer<Float>) throws {
        let (d, l) = (g.headChannels, g.length)
        try forEachHead(g, scratchCount: g.scoreCount) { b, h, dp in
            let base = qkv + b * g.qkvImage, dbase = dqkv + b * g.qkvImage
            let q = base + h * d * l, k = base + (g.channels + h * d) * l, v = base + (2 * g.channels + h * d) * l
            let dq = dbase + h * d * l, dk = dbase + (g.channels + h * d) * l, dv = dbase + (2 * g.channels + h * d) * l
            let p = probabilities + (b * g.heads + h) * g.scoreCount
            let dO = dOut + b * g.outImage + h * d * l
            // dv += dO · P
            BLAS.gemm(m: d, n: l, k: l, a: dO, lda: l, b: p, ldb: l, beta: 1, c: dv, ldc: l)
            // dP = dOᵀ · v, then dS in place
            BLAS.gemm(transA: true, m: l, n: l, k: d, a: dO, lda: l, b: v, ldb: l, beta: 0, c: dp, ldc: l)
            for row in 0..<l {
                let pr = p + row * l, dr = dp + row * l
                let dotted = Reduce.dot(pr, UnsafePointer(dr), l)
                for j in 0..<l { dr[j] = pr[j] * (dr[j] - dotted) }
            }
            // dq += s · k · dSᵀ ; dk += s · q · dS
            BLAS.gemm(transB: true, m: d, n: l, k: l, alpha: scale, a: k, lda: l, b: dp, ldb: l, beta: 1, c: dq, ldc: l)
            BLAS.gemm(m: d, n: l, k: l, alpha: scale, a: q, lda: l, b: dp, ldb: l, beta: 1, c: dk, ldc: l)
        }
    }
}
