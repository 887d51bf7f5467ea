// Matrix products through OpenBLAS sgemm (row-major).
//
// OpenBLAS runs single-threaded (ThreadPool sets it): kernels that loop over images call `gemm`
// from each worker, and a lone large product uses `parallelGemm`, which cuts C into column (or row)
// blocks, one per thread. Cutting C, never K, keeps every output element's sum in one thread, so
// results do not depend on scheduling.

import COpenBLAS

public enum BLAS {
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major; op = transpose when asked.
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // sgemm with k = 0 scales C by beta; keep that meaning without calling it.
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { row[j] *= beta } }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// `gemm` spread over the thread pool by blocks of C's columns (or rows, when C is tall and
    /// narrow). Small products run on the calling thread.
    public static func parallelGemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let flops = 2 * m * n * max(k, 1)
        let threads = ThreadPool.shared.threadCount
        if threads == 1 || flops < 4_000_000 {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m {
            // Column blocks of 16 keep sgemm's vector kernels on full tiles.
            let blocks = (n + 15) / 16
            ThreadPool.shared.run(count: blocks) { _, lo, hi in
                let j0 = lo * 16, j1 = min(n, hi * 16)
                let bBlock = transB ? b + j0 * ldb : b + j0
                gemm(transA: transA, transB: transB, m: m, n: j1 - j0, k: k, alpha: alpha, a: a, lda: lda,
                     b: bBlock, ldb: ldb, beta: beta, c: c + j0, ldc: ldc)
            }
        } else {
            let blocks = (m + 15) / 16
            ThreadPool.shared.run(count: blocks) { _, lo, hi in
                let i0 = lo * 16, i1 = min(m, hi * 16)
                let aBlock = transA ? a + i0 : a + i0 * lda
                gemm(transA: transA, transB: transB, m: i1 - i0, n: n, k: k, alpha: alpha, a: aBlock, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c + i0 * ldc, ldc: ldc)
            }
        }
    }
}
