import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Elementwise f(a, b) with NumPy broadcasting, by explicit multi-indices: the definition the
/// simplified kernels must match.
func referenceBroadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> (shape: [Int], values: [Float]) {
    let rank = max(a.rank, b.rank)
    let pa = [Int](repeating: 1, count: rank - a.rank) + a.shape
    let pb = [Int](repeating: 1, count: rank - b.rank) + b.shape
    let out = (0..<rank).map { max(pa[$0], pb[$0]) }
    let count = out.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    var index = [Int](repeating: 0, count: rank)
    for linear in 0..<count {
        var rest = linear
        for d in stride(from: rank - 1, through: 0, by: -1) { index[d] = rest % out[d]; rest /= out[d] }
        var ia = 0, ib = 0
        for d in 0..<rank {
            ia = ia * pa[d] + (pa[d] == 1 ? 0 : index[d])
            ib = ib * pb[d] + (pb[d] == 1 ? 0 : index[d])
        }
        values[linear] = f(a.data[ia], b.data[ib])
    }
    return (out, values)
}

/// Values uniform in [0.5, 2] (safe denominators, logs and square roots).
func positiveTensor(_ shape: [Int], seed: UInt64, requiresGrad: Bool = true) throws -> Tensor {
    let t = try Tensor(uninitialized: shape)
    RandomGenerator(seed: seed).fillUniform(t.data, t.count, low: 0.5, high: 2)
    t.requiresGrad = requiresGrad
    return t
}

@Suite struct ArithmeticTests {
    // MARK: broadcasting binary operations

    @Test func handComputedBroadcasting() throws {
        let m = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        // row vector [3] added to each row: [1+10, 2+20, 3+30; 4+10, 5+20, 6+30]
        let s = try m + Tensor([10, 20, 30], shape: [3])
        #expect(s.shape == [2, 3])
        #expect(s.scalars == [11, 22, 33, 14, 25, 36])
        // column [2, 1] scales each row: row 0 × 2, row 1 × 3
        let p = try m * Tensor([2, 3], shape: [2, 1])
        #expect(p.scalars == [2, 4, 6, 12, 15, 18])
        // outer difference [2, 1] − [1, 3]: [1−1, 1−2, 1−3; 2−1, 2−2, 2−3]
        let d = try Tensor([1, 2], shape: [2, 1]) - Tensor([1, 2, 3], shape: [1, 3])
        #expect(d.shape == [2, 3])
        #expect(d.scalars == [0, -1, -2, 1, 0, -1])
        // 0-d divisor: every element / 4
        let q = try m / Tensor([4], shape: [])
        #expect(q.scalars == [0.25, 0.5, 0.75, 1, 1.25, 1.5])
        // per-channel [1, 2, 1, 1] bias on [1, 2, 2, 2]: channel 0 + 100, channel 1 + 200
        let x = try Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [1, 2, 2, 2])
        let y = try add(x, Tensor([100, 200], shape: [1, 2, 1, 1]))
        #expect(y.scalars == [101, 102, 103, 104, 205, 206, 207, 208])
    }

    static let shapePairs: [([Int], [Int])] = [
        ([2, 3, 4, 5], [2, 3, 4, 5]),   // same shape: flat loop
        ([2, 3, 4, 5], [1, 3, 1, 1]),   // per-channel bias
        ([2, 3, 4, 5], [2, 3, 1, 1]),   // per-sample, per-channel (time embedding)
        ([2, 3, 4, 5], [3, 1, 1]),      // trailing-aligned channel vector
        ([2, 3, 4, 5], [5]),            // last dimension
        ([4, 1], [1, 5]),               // outer product: both broadcast
        ([1, 3, 1, 5], [2, 1, 4, 1]),   // interleaved broadcast dims
        ([], [2, 3]),                   // 0-d with a matrix
        ([3, 1, 5], [3, 4, 5]),         // middle dimension
        ([1, 3, 1, 1], [2, 3, 4, 5]),   // the small operand first
        ([6], [1]),                     // one-element tensor
    ]

    @Test(arguments: 0..<shapePairs.count)
    func matchesReferenceBroadcast(_ index: Int) throws {
        let (sa, sb) = Self.shapePairs[index]
        let a = try randomTensor(sa, seed: 1, requiresGrad: false)
        let b = try positiveTensor(sb, seed: 2, requiresGrad: false)
        let ops: [(String, (Tensor, Tensor) throws -> Tensor, (Float, Float) -> Float)] = [
            ("add", add, { $0 + $1 }), ("sub", sub, { $0 - $1 }), ("mul", mul, { $0 * $1 }), ("div", div, { $0 / $1 }),
        ]
        for (name, op, f) in ops {
            let y = try op(a, b)
            let expected = referenceBroadcast(a, b, f)
            #expect(y.shape == expected.shape, "\(name)")
            #expect(y.scalars == expected.values, "\(name) \(sa) \(sb)")   // same float operations: exact
        }
    }

    @Test(arguments: 0..<shapePairs.count)
    func gradientsMatchFiniteDifferences(_ index: Int) throws {
        let (sa, sb) = Self.shapePairs[index]
        let a = try randomTensor(sa, seed: 3), b = try positiveTensor(sb, seed: 4)
        try expectGradientsMatch([a, b]) { t in try t[0] + t[1] }
        try expectGradientsMatch([a, b]) { t in try t[0] - t[1] }
        try expectGradientsMatch([a, b]) { t in try t[0] * t[1] }
        try expectGradientsMatch([a, b]) { t in try t[0] / t[1] }
        // reversed operands: the broadcast operand on the left
        try expectGradientsMatch([b, a]) { t in try t[0] - t[1] }
        try expectGradientsMatch([positiveTensor(sb, seed: 5), positiveTensor(sa, seed: 6)]) { t in try t[1] / t[0] }
    }

    @Test func gradientOfSharedInputAccumulates() throws {
        // x·x: d/dx = 2x; x + x: 2
        let x = try Tensor([1, -2, 3], shape: [3], requiresGrad: true)
        try (try x * x).backward()
        #expect(x.grad?.scalars == [2, -4, 6])
        x.zeroGrad()
        try (try x + x).backward()
        #expect(x.grad?.scalars == [2, 2, 2])
    }

    @Test func biasGradientIsPerChannelSum() throws {
        // dy = 1 everywhere: the bias gradient counts the N·H·W positions of each channel
        let x = try Tensor(zeros: [2, 3, 4, 5]), bias = try Tensor(zeros: [3, 1, 1], requiresGrad: true)
        try (try x + bias).backward()
        #expect(bias.grad?.scalars == [40, 40, 40])
        // [N, C] + [C] with dy = row index + 1: column sums 1 + 2 + 3 + 4 = 10
        let w = try Tensor(zeros: [4, 3]), c = try Tensor(zeros: [3], requiresGrad: true)
        let seed = try Tensor([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4], shape: [4, 3])
        try (try w + c).backward(seed: seed)
        #expect(c.grad?.scalars == [10, 10, 10])
    }

    @Test func largeTensorsUseParallelPathsCorrectly() throws {
        // 2·16·64·64 = 131072 elements: several parallel blocks, rows split between threads
        let a = try randomTensor([2, 16, 64, 64], seed: 7)
        let b = try randomTensor([1, 16, 1, 1], seed: 8)
        let y = try a * b
        #expect(y.scalars == referenceBroadcast(a, b, *).values)
        let seed = try randomTensor(y.shape, seed: 9, requiresGrad: false)
        try y.backward(seed: seed)
        // db[c] = Σ dy·a over the channel (double reference); da = dy·b
        for c in 0..<16 {
            var s = 0.0
            for n in 0..<2 { for i in 0..<4096 { let k = (n * 16 + c) * 4096 + i; s += Double(seed.data[k] * a.data[k]) } }
            #expect(abs(Double(b.grad!.data[c]) - s) <= 1e-3 * max(1, abs(s)))
        }
        let expectedA = referenceBroadcast(seed, b, *).values
        #expect(a.grad!.scalars == expectedA)
        // a long single row split between threads: [200000] + [1]
        let long = try randomTensor([200_000], seed: 10, requiresGrad: false)
        let z = try long + Tensor([0.5], shape: [1])
        #expect(z.scalars == long.scalars.map { $0 + 0.5 })
    }

    @Test func chunkedReductionsMatchReference() throws {
        // Many rows summed into few outputs: the reduction is cut into chunks whose partial sums
        // are added in order. [N, C, L] → [C] (runs along L) and [M, 3] → [3] (rows of 3).
        let x = try randomTensor([64, 3, 1024], seed: 17, requiresGrad: false)
        let perChannel = try sum(x, dims: [0, 2])
        for c in 0..<3 {
            var s = 0.0
            for n in 0..<64 { for i in 0..<1024 { s += Double(x.data[(n * 3 + c) * 1024 + i]) } }
            #expect(abs(Double(perChannel.data[c]) - s) < 1e-2)
        }
        let rows = try randomTensor([100_000, 3], seed: 18, requiresGrad: false)
        let columns = try sum(rows, dims: [0])
        for c in 0..<3 {
            var s = 0.0
            for r in 0..<100_000 { s += Double(rows.data[r * 3 + c]) }
            #expect(abs(Double(columns.data[c]) - s) < 2e-2)
        }
        #expect(try sum(rows, dims: [0]).scalars == columns.scalars)          // bit-identical when repeated
        #expect(try sum(x, dims: [0, 2]).scalars == perChannel.scalars)
        // the same path as a broadcast gradient: [100000, 3] + [3], dy = 1 → db = 100000 each
        let b = try Tensor(zeros: [3], requiresGrad: true)
        try (try rows + b).backward()
        #expect(b.grad?.scalars == [100_000, 100_000, 100_000])
        // short rows in the forward walk: [50000, 3] · [50000, 1]
        let c = try randomTensor([50_000, 1], seed: 19, requiresGrad: false)
        let small = try randomTensor([50_000, 3], seed: 20, requiresGrad: false)
        #expect(try (small * c).scalars == referenceBroadcast(small, c, *).values)
        #expect(try (c - Tensor([1, 2, 3], shape: [3])).scalars == referenceBroadcast(c, Tensor([1, 2, 3], shape: [3]), -).values)
    }

    @Test func incompatibleShapesThrow() throws {
        let a = try Tensor(zeros: [2, 3]), b = try Tensor(zeros: [4])
        #expect(throws: MedSynthError.self) { try a + b }
        #expect(throws: MedSynthError.self) { try a - b }
        #expect(throws: MedSynthError.self) { try a * b }
        #expect(throws: MedSynthError.self) { try a / b }
        #expect(throws: MedSynthError.self) { try add(Tensor(zeros: [2, 3, 4]), Tensor(zeros: [3, 3, 1])) }
        #expect(throws: MedSynthError.self) { try mul(Tensor(zeros: [0]), Tensor(zeros: [2])) }
    }

    @Test func impossibleResultsThrowInsteadOfTrapping() throws {
        // [2⁴⁰, 1] · [1, 2⁴⁰] would need 2⁸⁰ elements; [2²⁰, 1] + [1, 2²⁰] needs 4 TiB.
        // The operands are views of one element with a fake shape: only their shapes are read.
        let storage = try Storage(zeros: 1)
        let tall = Tensor(shape: [1 << 40, 1], storage: storage), wide = Tensor(shape: [1, 1 << 40], storage: storage)
        #expect(throws: MedSynthError.self) { try tall + wide }
        let column = Tensor(shape: [1 << 20, 1], storage: storage), row = Tensor(shape: [1, 1 << 20], storage: storage)
        #expect(throws: MedSynthError.self) { try column * row }
        #expect(throws: MedSynthError.self) { try matmul(column, row) }
    }

    @Test func emptyTensorsBroadcast() throws {
        // 0 broadcasts with 1 to 0 (torch): no elements, no trap
        let y = try Tensor(zeros: [0, 3]) + Tensor(zeros: [1, 3])
        #expect(y.shape == [0, 3] && y.count == 0)
    }

    // MARK: scalar and unary operations

    @Test func handComputedScalarAndUnaryOps() throws {
        let x = try Tensor([1, 4, 9], shape: [3])
        #expect(try (x + 1).scalars == [2, 5, 10])
        #expect(try (2 + x).scalars == [3, 6, 11])
        #expect(try (x - 1).scalars == [0, 3, 8])
        #expect(try (10 - x).scalars == [9, 6, 1])
        #expect(try (x * 2).scalars == [2, 8, 18])
        #expect(try (0.5 * x).scalars == [0.5, 2, 4.5])
        #expect(try (x / 2).scalars == [0.5, 2, 4.5])
        #expect(try (36 / x).scalars == [36, 9, 4])
        #expect(try (-x).scalars == [-1, -4, -9])
        #expect(try sqrt(x).scalars == [1, 2, 3])
        #expect(try square(x).scalars == [1, 16, 81])
        #expect(try reciprocal(Tensor([2, 4, -0.5], shape: [3])).scalars == [0.5, 0.25, -2])
        // e⁰ = 1, ln 1 = 0, ln e ≈ 1
        expectClose(try exp(try Tensor([0, 1, -1], shape: [3])).scalars, [1, 2.718281828, 0.367879441])
        expectClose(try log(try Tensor([1, 2.718281828, 0.5], shape: [3])).scalars, [0, 1, -0.693147181])
        // IEEE edge cases as torch: sqrt(−1) = NaN, log 0 = −inf
        #expect(try sqrt(Tensor([-1], shape: [1])).item.isNaN)
        #expect(try log(Tensor([0], shape: [1])).item == -.infinity)
    }

    @Test func scalarAndUnaryGradients() throws {
        let x = try randomTensor([3, 4], seed: 11), p = try positiveTensor([3, 4], seed: 12)
        try expectGradientsMatch([x]) { t in try t[0] + 3 }
        try expectGradientsMatch([x]) { t in try t[0] - 3 }
        try expectGradientsMatch([x]) { t in try 3 - t[0] }
        try expectGradientsMatch([x]) { t in try t[0] * -2.5 }
        try expectGradientsMatch([x]) { t in try t[0] / 4 }
        try expectGradientsMatch([p]) { t in try 3 / t[0] }
        try expectGradientsMatch([x]) { t in try -t[0] }
        try expectGradientsMatch([p]) { t in try sqrt(t[0]) }
        try expectGradientsMatch([x]) { t in try exp(t[0]) }
        try expectGradientsMatch([p]) { t in try log(t[0]) }
        try expectGradientsMatch([x]) { t in try square(t[0]) }
        try expectGradientsMatch([p]) { t in try reciprocal(t[0]) }
    }

    // MARK: reductions

    @Test func handComputedSumsAndMeans() throws {
        // [[1, 2, 3], [4, 5, 6]]
        let x = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(try sum(x).shape == [] && sum(x).item == 21)
        #expect(try mean(x).item == 3.5)
        let s0 = try sum(x, dims: [0])                       // column sums [5, 7, 9]
        #expect(s0.shape == [3] && s0.scalars == [5, 7, 9])
        let s1 = try sum(x, dims: [-1], keepDims: true)      // row sums [[6], [15]]
        #expect(s1.shape == [2, 1] && s1.scalars == [6, 15])
        let m1 = try mean(x, dims: [1])                      // row means [2, 5]
        #expect(m1.scalars == [2, 5])
        let all = try sum(x, dims: [0, 1], keepDims: true)
        #expect(all.shape == [1, 1] && all.scalars == [21])
        let none = try mean(x, dims: [])                     // torch: dim=[] reduces everything
        #expect(none.shape == [] && none.item == 3.5)
        // [2, 2, 2] over dims 0 and 2: [[[1,2],[3,4]],[[5,6],[7,8]]] → [1+2+5+6, 3+4+7+8] = [14, 22]
        let c = try Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [2, 2, 2])
        #expect(try sum(c, dims: [0, 2]).scalars == [14, 22])
        #expect(try mean(c, dims: [2, 0]).scalars == [3.5, 5.5])
        // empty: sum 0, mean NaN
        #expect(try sum(Tensor(zeros: [0, 3])).item == 0)
        #expect(try mean(Tensor(zeros: [0])).item.isNaN)
        #expect(try sum(Tensor(zeros: [2, 0]), dims: [1]).scalars == [0, 0])
    }

    static let reductionCases: [([Int], [Int], Bool)] = [
        ([2, 3, 4, 5], [1], false), ([2, 3, 4, 5], [0, 2, 3], true), ([2, 3, 4, 5], [-1], false),
        ([2, 3, 4, 5], [0], true), ([2, 3, 4, 5], [1, 2], false), ([5, 7], [0], false), ([4], [0], true),
    ]

    @Test(arguments: 0..<reductionCases.count)
    func reductionsMatchReferenceAndGradients(_ index: Int) throws {
        let (shape, dims, keep) = Self.reductionCases[index]
        let x = try randomTensor(shape, seed: 13)
        let s = try sum(x, dims: dims, keepDims: keep)
        // reference: accumulate every element into its kept index in double
        let rank = shape.count
        let reduced = Set(dims.map { $0 < 0 ? $0 + rank : $0 })
        let keptShape = (0..<rank).map { reduced.contains($0) ? 1 : shape[$0] }
        var expected = [Double](repeating: 0, count: keptShape.reduce(1, *))
        for i in 0..<x.count {
            var rest = i, target = 0, mul = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                let id = rest % shape[d]; rest /= shape[d]
                if !reduced.contains(d) { target += id * mul; mul *= shape[d] }
            }
            expected[target] += Double(x.data[i])
        }
        expectClose(s.scalars, expected.map { Float($0) })
        let n = Float(reduced.reduce(1) { $0 * shape[$1] })
        expectClose(try mean(x, dims: dims, keepDims: keep).scalars, expected.map { Float($0) / n })
        try expectGradientsMatch([x]) { t in try sum(t[0], dims: dims, keepDims: keep) }
        try expectGradientsMatch([x]) { t in try mean(t[0], dims: dims, keepDims: keep) }
    }

    @Test func fullReductionGradientsAndDeterminism() throws {
        let x = try randomTensor([3, 5], seed: 14)
        try expectGradientsMatch([x]) { t in try sum(t[0]) }
        try expectGradientsMatch([x]) { t in try mean(t[0]) }
        // a large sum: close to the double sum, and bit-identical when repeated
        let big = try randomTensor([1_000_003], seed: 15, requiresGrad: false)
        let s1 = try sum(big).item, s2 = try sum(big).item
        #expect(s1.bitPattern == s2.bitPattern)
        let reference = big.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(Double(s1) - reference) < 1e-2)
        let big4 = try randomTensor([8, 64, 32, 32], seed: 16, requiresGrad: false)
        let c1 = try sum(big4, dims: [0, 2, 3]), c2 = try sum(big4, dims: [0, 2, 3])
        #expect(c1.scalars == c2.scalars)
    }

    @Test func invalidReductionDimsThrow() throws {
        let x = try Tensor(zeros: [2, 3])
        #expect(throws: MedSynthError.self) { try sum(x, dims: [2]) }
        #expect(throws: MedSynthError.self) { try sum(x, dims: [-3]) }
        #expect(throws: MedSynthError.self) { try mean(x, dims: [0, -2]) }   // same dimension twice
        #expect(throws: MedSynthError.self) { try mean(x, dims: [5]) }
    }
}
