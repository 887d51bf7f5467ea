// Batched matrix products over sgemm.
//
// C_i = alpha · op(A_i) · op(B_i) + beta · C_i for i in 0..<batch, each matrix at base + i·stride
// (stride 0: one matrix shared by the whole batch). The C_i must not overlap. Many products run in
// parallel, one sgemm per product on each thread; a few large ones run one after the other, each
// split over the threads by `BLAS.parallelGemm`. Either way every output element is computed by one
// thread in a fixed order (deterministic).

package enum MatmulKernel {
    package static func batched(
        transA: Bool = false, transB: Bool = false, batch: Int, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, strideA: Int, lda: Int,
        b: UnsafePointer<Float>, strideB: Int, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, strideC: Int, ldc: Int
    ) {
        guard batch > 0, m > 0, n > 0 else { return }
        let threads = ThreadPool.shared.threadCount
        let flops = 2 * m * n * max(k, 1)
        // Across the batch when that balances the threads or the products are too small to split.
        if batch > 1 && (batch % threads == 0 || batch >= 4 * threads || flops < 4_000_000) {
            ThreadPool.shared.run(count: batch) { _, lo, hi in
                for i in lo..<hi {
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k,
                              a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                              beta: beta, c: c + i * strideC, ldc: ldc)
                }
            }
        } else {
            for i in 0..<batch {
                BLAS.parallelGemm(transA: transA, transB: transB, m: m, n: n, k: k,
                                  a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                                  beta: beta, c: c + i * strideC, ldc: ldc)
            }
        }
    }
}
