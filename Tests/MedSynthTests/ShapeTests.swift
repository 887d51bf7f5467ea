import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Permutation by explicit multi-indices: out[i] = x[j] with j[perm[k]] = i[k].
func referencePermute(_ x: Tensor, _ perm: [Int]) -> [Float] {
    let shape = x.shape, rank = shape.count
    let outShape = perm.map { shape[$0] }
    var strides = [Int](repeating: 1, count: rank)
    for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
    var out = [Float](repeating: 0, count: x.count)
    for linear in 0..<x.count {
        var rest = linear, source = 0
        for k in stride(from: rank - 1, through: 0, by: -1) {
            source += (rest % outShape[k]) * strides[perm[k]]
            rest /= outShape[k]
        }
        out[linear] = x.data[source]
    }
    return out
}

@Suite struct ShapeTests {
    // MARK: reshape and flatten

    @Test func reshapeSharesStorageAndInfersOneDimension() throws {
        let x = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let y = try reshape(x, [3, -1])
        #expect(y.shape == [3, 2] && y.scalars == [1, 2, 3, 4, 5, 6])
        #expect(y.data == x.data)                             // a view: same storage
        #expect(try reshape(x, [-1]).shape == [6])
        #expect(try reshape(Tensor([7], shape: [1, 1]), []).shape == [])
        #expect(try reshape(Tensor(zeros: [0, 3]), [3, 0, 2]).shape == [3, 0, 2])
    }

    @Test func badReshapesThrow() throws {
        let x = try Tensor(zeros: [2, 3])
        #expect(throws: MedSynthError.self) { try reshape(x, [4, 2]) }          // 8 ≠ 6
        #expect(throws: MedSynthError.self) { try reshape(x, [-1, -1]) }        // two unknowns
        #expect(throws: MedSynthError.self) { try reshape(x, [-1, 4]) }         // 6 not divisible by 4
        #expect(throws: MedSynthError.self) { try reshape(x, [-2, -3]) }        // negative extents
        #expect(throws: MedSynthError.self) { try reshape(Tensor(zeros: [0, 3]), [-1, 0]) }   // ambiguous
        #expect(throws: MedSynthError.self) { try reshape(x, [Int.max, 4]) }    // overflow
    }

    @Test func flattenFollowsTorch() throws {
        let x = try randomTensor([2, 3, 4, 5], seed: 1, requiresGrad: false)
        #expect(try flatten(x).shape == [120])
        #expect(try flatten(x, startDim: 1).shape == [2, 60])
        #expect(try flatten(x, startDim: 1, endDim: 2).shape == [2, 12, 5])
        #expect(try flatten(x, startDim: -2).shape == [2, 3, 20])
        #expect(try flatten(x, startDim: 2, endDim: 2).shape == [2, 3, 4, 5])
        #expect(try flatten(Tensor([3], shape: [])).shape == [1])
        #expect(throws: MedSynthError.self) { try flatten(x, startDim: 2, endDim: 1) }
        #expect(throws: MedSynthError.self) { try flatten(x, startDim: 4) }
    }

    @Test func reshapeAndFlattenGradients() throws {
        let x = try randomTensor([2, 3, 4], seed: 2)
        // the product with a fixed tensor makes the gradient position-dependent
        let w = try randomTensor([4, 6], seed: 3, requiresGrad: false)
        try expectGradientsMatch([x]) { t in try reshape(t[0], [4, 6]) * w }
        try expectGradientsMatch([x]) { t in try flatten(t[0], startDim: 1) * reshape(w, [2, 12]) }
    }

    // MARK: concat

    @Test func handComputedConcat() throws {
        let a = try Tensor([1, 2, 3, 4], shape: [2, 2]), b = try Tensor([5, 6], shape: [1, 2]), c = try Tensor([7, 8, 9, 10, 11, 12], shape: [2, 3])
        // rows stacked: [[1,2],[3,4],[5,6]]
        let rows = try concat([a, b], dim: 0)
        #expect(rows.shape == [3, 2] && rows.scalars == [1, 2, 3, 4, 5, 6])
        // columns joined: [[1,2,7,8,9],[3,4,10,11,12]]
        let columns = try concat([a, c], dim: -1)
        #expect(columns.shape == [2, 5] && columns.scalars == [1, 2, 7, 8, 9, 3, 4, 10, 11, 12])
        // torch skips 1-D empty tensors whatever their rank
        let skipped = try concat([Tensor(zeros: [0]), a, Tensor(zeros: [0])], dim: 1)
        #expect(skipped.scalars == a.scalars)
        // zero-extent pieces along the dim are fine
        let withEmpty = try concat([a, Tensor(zeros: [2, 0])], dim: 1)
        #expect(withEmpty.shape == [2, 2] && withEmpty.scalars == a.scalars)
    }

    @Test(arguments: [0, 1, 2, -1])
    func concatGradients(_ dim: Int) throws {
        var shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
        let d = dim < 0 ? dim + 3 : dim
        shapes[1][d] = 1
        shapes[2][d] = 2
        let xs = try shapes.enumerated().map { try randomTensor($0.element, seed: UInt64(10 + $0.offset)) }
        let y = try concat(xs, dim: dim)
        var expected = shapes[0]; expected[d] = shapes.reduce(0) { $0 + $1[d] }
        #expect(y.shape == expected)
        try expectGradientsMatch(xs) { t in try concat(t, dim: dim) }
        // only some inputs need a gradient
        xs[1].requiresGrad = false
        try expectGradientsMatch(xs) { t in try concat(t, dim: dim) }
    }

    @Test func largeConcatAlongFirstDimension() throws {
        // one long row per piece: the copy is split between threads by element ranges
        let a = try randomTensor([300_000], seed: 20, requiresGrad: false), b = try randomTensor([100_000], seed: 21, requiresGrad: false)
        let y = try concat([a, b], dim: 0)
        #expect(y.scalars == a.scalars + b.scalars)
    }

    @Test func concatMismatchesThrow() throws {
        let a = try Tensor(zeros: [2, 3])
        #expect(throws: MedSynthError.self) { try concat([], dim: 0) }
        #expect(throws: MedSynthError.self) { try concat([a, Tensor(zeros: [2, 4])], dim: 0) }    // 3 ≠ 4 off the dim
        #expect(throws: MedSynthError.self) { try concat([a, Tensor(zeros: [2, 3, 1])], dim: 0) } // rank
        #expect(throws: MedSynthError.self) { try concat([a, a], dim: 2) }
        #expect(throws: MedSynthError.self) { try concat([a, a], dim: -3) }
        #expect(throws: MedSynthError.self) { try concat([Tensor([1], shape: [])], dim: 0) }
    }

    // MARK: split and chunk

    @Test func chunkAndSplitFollowTorch() throws {
        let x = try Tensor([0, 1, 2, 3, 4], shape: [5])
        // ⌈5/3⌉ = 2: [0,1], [2,3], [4]
        let c = try chunk(x, chunks: 3)
        #expect(c.map(\.scalars) == [[0, 1], [2, 3], [4]])
        // size 6 in 4 chunks: ⌈6/4⌉ = 2 → only 3 pieces
        #expect(try chunk(Tensor(zeros: [2, 6]), chunks: 4, dim: 1).map(\.shape) == [[2, 2], [2, 2], [2, 2]])
        // more chunks than elements: one element each
        #expect(try chunk(x, chunks: 8).count == 5)
        // an empty dimension gives `chunks` empty pieces
        #expect(try chunk(Tensor(zeros: [0, 2]), chunks: 3).map(\.shape) == [[0, 2], [0, 2], [0, 2]])
        #expect(try split(x, splitSize: 2).map(\.scalars) == [[0, 1], [2, 3], [4]])
        #expect(try split(x, splitSize: 9).map(\.scalars) == [[0, 1, 2, 3, 4]])
        #expect(try split(x, sizes: [1, 0, 4]).map(\.scalars) == [[0], [], [1, 2, 3, 4]])
        let m = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(try split(m, sizes: [2, 1], dim: -1).map(\.scalars) == [[1, 2, 4, 5], [3, 6]])
        #expect(try split(Tensor(zeros: [0]), splitSize: 0).map(\.shape) == [[0]])
    }

    @Test func chunkAndSplitErrorsThrow() throws {
        let x = try Tensor(zeros: [4, 2])
        #expect(throws: MedSynthError.self) { try chunk(x, chunks: 0) }
        #expect(throws: MedSynthError.self) { try chunk(x, chunks: 2, dim: 2) }
        #expect(throws: MedSynthError.self) { try split(x, splitSize: 0) }
        #expect(throws: MedSynthError.self) { try split(x, splitSize: -1) }
        #expect(throws: MedSynthError.self) { try split(x, sizes: [1, 2]) }        // 3 ≠ 4
        #expect(throws: MedSynthError.self) { try split(x, sizes: [5, -1]) }
    }

    @Test func chunkGradients() throws {
        let x = try randomTensor([3, 7, 2], seed: 30)
        // pieces reassembled in reverse order: every piece's gradient path is used
        try expectGradientsMatch([x]) { t in try concat(chunk(t[0], chunks: 3, dim: 1).reversed(), dim: 1) }
        try expectGradientsMatch([x]) { t in try split(t[0], sizes: [2, 1], dim: 0)[1] }
    }

    // MARK: slice and narrow

    @Test func handComputedSlices() throws {
        // [[0,1,2,3,4],[5,6,7,8,9]]
        let x = try Tensor((0..<10).map(Float.init), shape: [2, 5])
        #expect(try slice(x, dim: 1, start: 1, end: 3).scalars == [1, 2, 6, 7])
        #expect(try slice(x, dim: 1, start: -2).scalars == [3, 4, 8, 9])               // last two columns
        #expect(try slice(x, dim: 1, start: 0, end: 5, step: 2).scalars == [0, 2, 4, 5, 7, 9])
        #expect(try slice(x, dim: 1, start: 1, end: 100, step: 3).scalars == [1, 4, 6, 9])  // end clamped
        #expect(try slice(x, dim: 0, start: 1).scalars == [5, 6, 7, 8, 9])
        #expect(try slice(x, dim: 1, start: 4, end: 2).shape == [2, 0])                // empty range
        #expect(try slice(x, dim: 1, start: -100, end: 1).scalars == [0, 5])           // start clamped
        #expect(try narrow(x, dim: 1, start: 2, length: 2).scalars == [2, 3, 7, 8])
        #expect(try narrow(x, dim: -1, start: -1, length: 1).scalars == [4, 9])
    }

    @Test func sliceErrorsThrow() throws {
        let x = try Tensor(zeros: [2, 5])
        #expect(throws: MedSynthError.self) { try slice(x, dim: 2, start: 0) }
        #expect(throws: MedSynthError.self) { try slice(x, dim: 1, start: 0, end: 2, step: 0) }
        #expect(throws: MedSynthError.self) { try slice(Tensor([1], shape: []), dim: 0) }
        #expect(throws: MedSynthError.self) { try narrow(x, dim: 1, start: 4, length: 2) }   // past the end
        #expect(throws: MedSynthError.self) { try narrow(x, dim: 1, start: 6, length: 0) }
        #expect(throws: MedSynthError.self) { try narrow(x, dim: 1, start: -6, length: 1) }
        #expect(throws: MedSynthError.self) { try narrow(x, dim: 1, start: 0, length: -1) }
    }

    @Test func sliceGradients() throws {
        let x = try randomTensor([3, 8, 4], seed: 40)
        try expectGradientsMatch([x]) { t in try slice(t[0], dim: 1, start: 2, end: 7) }
        try expectGradientsMatch([x]) { t in try slice(t[0], dim: 1, start: 1, step: 3) }
        try expectGradientsMatch([x]) { t in try slice(t[0], dim: -1, start: -3, end: -1) }
        try expectGradientsMatch([x]) { t in try narrow(t[0], dim: 0, start: 1, length: 2) }
    }

    // MARK: transpose and permute

    @Test func handComputedTranspose() throws {
        // [[1,2,3],[4,5,6]]ᵀ = [[1,4],[2,5],[3,6]]
        let x = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let t = try transpose(x, 0, 1)
        #expect(t.shape == [3, 2] && t.scalars == [1, 4, 2, 5, 3, 6])
        #expect(try transpose(x, -1, -2).scalars == t.scalars)
        #expect(try transpose(x, 1, 1).scalars == x.scalars)
        // [2,2,2] → permute(2,0,1): out[k,i,j] = x[i,j,k]
        let c = try Tensor([0, 1, 2, 3, 4, 5, 6, 7], shape: [2, 2, 2])
        let p = try permute(c, [2, 0, 1])
        #expect(p.shape == [2, 2, 2] && p.scalars == [0, 2, 4, 6, 1, 3, 5, 7])
    }

    static let permutations: [([Int], [Int])] = [
        ([3, 70, 100], [0, 2, 1]),        // last-two transpose, partial 32×32 tiles
        ([64, 96], [1, 0]),               // 2-D transpose, whole tiles
        ([2, 3, 4, 5], [0, 2, 3, 1]),     // NCHW → NHWC
        ([2, 3, 4, 5], [0, 3, 1, 2]),     // NHWC → NCHW
        ([2, 3, 4, 5], [3, 2, 1, 0]),     // full reversal
        ([2, 1, 4, 5], [1, 0, 2, 3]),     // moves only an extent-1 dim: a plain copy
        ([4, 6, 5], [1, 0, 2]),           // contiguous rows of 5
        ([5, 300, 200], [2, 1, 0]),       // large, parallel tiles
    ]

    @Test(arguments: 0..<permutations.count)
    func permuteMatchesReference(_ index: Int) throws {
        let (shape, perm) = Self.permutations[index]
        let x = try randomTensor(shape, seed: 50, requiresGrad: false)
        let y = try permute(x, perm)
        #expect(y.shape == perm.map { shape[$0] })
        #expect(y.scalars == referencePermute(x, perm))
    }

    @Test func permuteGradients() throws {
        let x = try randomTensor([2, 3, 4, 5], seed: 51)
        try expectGradientsMatch([x]) { t in try permute(t[0], [0, 2, 3, 1]) }
        try expectGradientsMatch([x]) { t in try permute(t[0], [3, 1, 0, 2]) }
        try expectGradientsMatch([x]) { t in try transpose(t[0], -1, -2) }
        try expectGradientsMatch([x]) { t in try transpose(t[0], 0, 2) }
        // large transpose backward: dx = dyᵀ exactly
        let big = try randomTensor([3, 70, 100], seed: 52)
        let dy = try randomTensor([3, 100, 70], seed: 53, requiresGrad: false)
        try transpose(big, 1, 2).backward(seed: dy)
        #expect(big.grad?.scalars == referencePermute(dy, [0, 2, 1]))
    }

    @Test func permuteErrorsThrow() throws {
        let x = try Tensor(zeros: [2, 3, 4])
        #expect(throws: MedSynthError.self) { try permute(x, [0, 1]) }          // too few
        #expect(throws: MedSynthError.self) { try permute(x, [0, 1, 1]) }       // repeated
        #expect(throws: MedSynthError.self) { try permute(x, [0, 1, 3]) }       // out of range
        #expect(throws: MedSynthError.self) { try permute(x, [0, -1, 2]) }      // −1 is 2: repeated
        #expect(throws: MedSynthError.self) { try transpose(x, 0, 3) }
        #expect(throws: MedSynthError.self) { try transpose(x, -4, 0) }
    }
}
