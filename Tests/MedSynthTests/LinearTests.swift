import Testing
@testable import MedSynth
@testable import MedSynthCore

/// C = A·B for row-major [m, k]·[k, n] read at the given offsets, accumulated in double.
func referenceMatmul(_ a: Tensor, _ aOffset: Int, _ b: Tensor, _ bOffset: Int, m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(a.data[aOffset + i * k + p]) * Double(b.data[bOffset + p * n + j]) }
            c[i * n + j] = Float(s)
        }
    }
    return c
}

@Suite struct LinearTests {
    // MARK: linear

    @Test func handComputedLinear() throws {
        // x = [1, 2]; W rows [1, 0], [0, 1], [1, 1]; b = [0.5, −1, 0]
        // y = [1·1 + 2·0 + 0.5, 1·0 + 2·1 − 1, 1 + 2 + 0] = [1.5, 1, 3]
        let x = try Tensor([1, 2], shape: [1, 2])
        let w = try Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        let y = try linear(x, w, Tensor([0.5, -1, 0], shape: [3]))
        #expect(y.shape == [1, 3] && y.scalars == [1.5, 1, 3])
        // 1-D input → 1-D output; no bias
        let v = try linear(Tensor([1, 2], shape: [2]), w)
        #expect(v.shape == [3] && v.scalars == [1, 2, 3])
    }

    @Test func linearMatchesReferenceOnBatches() throws {
        // x [2, 3, 5] → rows [6, 5]; W [4, 5]: y = x·Wᵀ + b
        let x = try randomTensor([2, 3, 5], seed: 1, requiresGrad: false)
        let w = try randomTensor([4, 5], seed: 2, requiresGrad: false), b = try randomTensor([4], seed: 3, requiresGrad: false)
        let y = try linear(x, w, b)
        #expect(y.shape == [2, 3, 4])
        let wt = try transpose(w, 0, 1)
        let expected = referenceMatmul(x, 0, wt, 0, m: 6, k: 5, n: 4).enumerated().map { $0.element + b.data[$0.offset % 4] }
        expectClose(y.scalars, expected)
        // large enough for the threaded gemm (2·256·128·96 flops > 4M)
        let bx = try randomTensor([256, 128], seed: 4, requiresGrad: false), bw = try randomTensor([96, 128], seed: 5, requiresGrad: false)
        let by = try linear(bx, bw)
        expectClose(by.scalars, referenceMatmul(bx, 0, try transpose(bw, 0, 1), 0, m: 256, k: 128, n: 96), atol: 1e-3)
    }

    /// A few rows through a large weight take the transposed product (yᵀ = W·xᵀ); sizes that are
    /// not multiples of the vector width, with and without bias, leading dimensions kept.
    @Test(arguments: [1, 3, 17, 32, 64])
    func linearFewRowsMatchesReference(rows: Int) throws {
        let (inFeatures, outFeatures) = (1031, 1027)
        #expect(LinearShape.fewRows(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures))
        #expect(!LinearShape.fewRows(rows: 65, inFeatures: inFeatures, outFeatures: outFeatures))
        let x = try randomTensor([rows, 1, inFeatures], seed: 11, requiresGrad: false)
        let w = try randomTensor([outFeatures, inFeatures], seed: 12, requiresGrad: false)
        let b = try randomTensor([outFeatures], seed: 13, requiresGrad: false)
        let product = referenceMatmul(x, 0, try transpose(w, 0, 1), 0, m: rows, k: inFeatures, n: outFeatures)
        let y = try linear(x, w, b)
        #expect(y.shape == [rows, 1, outFeatures])
        expectClose(y.scalars, product.enumerated().map { $0.element + b.data[$0.offset % outFeatures] }, atol: 1e-3)
        expectClose(try linear(x, w).scalars, product, atol: 1e-3)
    }

    @Test func linearGradients() throws {
        let x = try randomTensor([2, 3, 5], seed: 6), w = try randomTensor([4, 5], seed: 7), b = try randomTensor([4], seed: 8)
        try expectGradientsMatch([x, w, b]) { t in try linear(t[0], t[1], t[2]) }
        try expectGradientsMatch([x, w]) { t in try linear(t[0], t[1]) }
        try expectGradientsMatch([randomTensor([5], seed: 9), w, b]) { t in try linear(t[0], t[1], t[2]) }
        // bias gradient = Σ over rows of dy: 6 rows of ones
        let xb = try randomTensor([6, 5], seed: 10, requiresGrad: false)
        let bb = try Tensor(zeros: [4], requiresGrad: true)
        try linear(xb, w, bb).backward()
        #expect(bb.grad?.scalars == [6, 6, 6, 6])
    }

    @Test func linearErrorsThrow() throws {
        let w = try Tensor(zeros: [4, 5])
        #expect(throws: MedSynthError.self) { try linear(Tensor(zeros: [2, 4]), w) }                        // 4 ≠ 5 features
        #expect(throws: MedSynthError.self) { try linear(Tensor(zeros: [2, 5]), Tensor(zeros: [4, 5, 1])) } // weight rank
        #expect(throws: MedSynthError.self) { try linear(Tensor(zeros: [2, 5]), w, Tensor(zeros: [5])) }    // bias size
        #expect(throws: MedSynthError.self) { try linear(Tensor([1], shape: []), w) }
    }

    // MARK: matmul

    @Test func handComputedMatmul() throws {
        // [[1,2],[3,4]]·[[5,6],[7,8]] = [[1·5+2·7, 1·6+2·8], [3·5+4·7, 3·6+4·8]] = [[19,22],[43,50]]
        let a = try Tensor([1, 2, 3, 4], shape: [2, 2]), b = try Tensor([5, 6, 7, 8], shape: [2, 2])
        #expect(try matmul(a, b).scalars == [19, 22, 43, 50])
        // vectors: [1,2]·[3,4] = 11 (shape []); [1,2]·B = [19, 22]; A·[1,1] = [3, 7]
        let v = try Tensor([1, 2], shape: [2])
        let dot = try matmul(v, Tensor([3, 4], shape: [2]))
        #expect(dot.shape == [] && dot.item == 11)
        let row = try matmul(v, b)
        #expect(row.shape == [2] && row.scalars == [19, 22])
        let column = try matmul(a, Tensor([1, 1], shape: [2]))
        #expect(column.shape == [2] && column.scalars == [3, 7])
    }

    static let batchedCases: [([Int], [Int])] = [
        ([3, 4, 5], [3, 5, 2]),     // batched · batched
        ([3, 4, 5], [5, 2]),        // right operand shared: one big gemm
        ([4, 5], [3, 5, 2]),        // left operand shared
        ([1, 4, 5], [3, 5, 2]),     // batch of one broadcast
        ([3, 4, 5], [1, 5, 2]),
        ([2, 3, 4, 5], [2, 3, 5, 2]),   // two batch dims
        ([2, 3, 4, 5], [5, 6]),
        ([5], [3, 5, 2]),           // vector · batch of matrices
        ([3, 4, 5], [5]),           // batch of matrices · vector
    ]

    @Test(arguments: 0..<batchedCases.count)
    func batchedMatmulMatchesReference(_ index: Int) throws {
        let (sa, sb) = Self.batchedCases[index]
        let a = try randomTensor(sa, seed: 20, requiresGrad: false), b = try randomTensor(sb, seed: 21, requiresGrad: false)
        let y = try matmul(a, b)
        // reference: promote vectors, loop over the broadcast batch
        let a2 = sa.count == 1 ? [1] + sa : sa, b2 = sb.count == 1 ? sb + [1] : sb
        let (m, k, n) = (a2[a2.count - 2], a2[a2.count - 1], b2[b2.count - 1])
        let aBatch = a2.dropLast(2).reduce(1, *), bBatch = b2.dropLast(2).reduce(1, *)
        let batch = max(aBatch, bBatch)
        var expected: [Float] = []
        for i in 0..<batch {
            expected += referenceMatmul(a, aBatch == 1 ? 0 : i * m * k, b, bBatch == 1 ? 0 : i * k * n, m: m, k: k, n: n)
        }
        var shape = try #require(broadcastShape(Array(a2.dropLast(2)), Array(b2.dropLast(2)))) + [m, n]
        if sb.count == 1 { shape.removeLast() }
        if sa.count == 1 { shape.remove(at: shape.count - (sb.count == 1 ? 1 : 2)) }
        #expect(y.shape == shape)
        expectClose(y.scalars, expected)
        try expectGradientsMatch([randomTensor(sa, seed: 22), randomTensor(sb, seed: 23)]) { t in try matmul(t[0], t[1]) }
    }

    @Test func largeBatchedMatmul() throws {
        // products big enough that each one is split over the threads (batch 3 on 2 threads)
        let a = try randomTensor([3, 128, 96], seed: 24), b = try randomTensor([3, 96, 160], seed: 25)
        let y = try matmul(a, b)
        for i in 0..<3 {
            let expected = referenceMatmul(a, i * 128 * 96, b, i * 96 * 160, m: 128, k: 96, n: 160)
            expectClose(Array(y.scalars[(i * 128 * 160)..<((i + 1) * 128 * 160)]), expected, atol: 1e-3)
        }
        // dB_i = A_iᵀ·dC_i with dC = 1: column sums of A_i repeated along each row of dB_i
        try y.backward()
        for i in 0..<3 {
            for p in stride(from: 0, to: 96, by: 13) {
                var s: Float = 0
                for r in 0..<128 { s += a.data[i * 128 * 96 + r * 96 + p] }
                #expect(abs(b.grad!.data[i * 96 * 160 + p * 160 + 7] - s) < 1e-3)
            }
        }
    }

    @Test func matmulErrorsThrow() {
        #expect(throws: MedSynthError.self) { try matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 2])) }      // 3 ≠ 4
        #expect(throws: MedSynthError.self) { try matmul(Tensor(zeros: [2, 3, 4]), Tensor(zeros: [3, 4, 2])) } // batch 2 vs 3
        #expect(throws: MedSynthError.self) { try matmul(Tensor(zeros: [2, 1, 3, 4]), Tensor(zeros: [1, 3, 4, 2])) } // unsupported broadcast
        #expect(throws: MedSynthError.self) { try matmul(Tensor([1], shape: []), Tensor(zeros: [2])) }
        #expect(throws: MedSynthError.self) { try matmul(Tensor(zeros: [3]), Tensor(zeros: [4])) }
    }
}
