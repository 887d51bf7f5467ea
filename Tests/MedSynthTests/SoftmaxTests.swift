import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Softmax (or log-softmax) along `dim` of a row-major tensor, straight from the definition in
/// double precision (with the max subtracted, so large values stay finite).
func referenceSoftmax(_ x: Tensor, dim: Int, log: Bool = false) -> [Float] {
    let shape = x.shape.isEmpty ? [1] : x.shape
    let d = dim < 0 ? dim + shape.count : dim
    let outer = shape[..<d].reduce(1, *), n = shape[d], inner = shape[(d + 1)...].reduce(1, *)
    var out = [Float](repeating: 0, count: x.count)
    for o in 0..<outer {
        for j in 0..<inner {
            let index = { (r: Int) in (o * n + r) * inner + j }
            var m = -Double.infinity
            for r in 0..<n { m = max(m, Double(x.data[index(r)])) }
            var s = 0.0
            for r in 0..<n { s += Glibc.exp(Double(x.data[index(r)]) - m) }
            for r in 0..<n {
                let v = Double(x.data[index(r)]) - m
                out[index(r)] = Float(log ? v - Glibc.log(s) : Glibc.exp(v) / s)
            }
        }
    }
    return out
}

/// Runs f and backward twice without zeroing gradients: every input's gradient must end up exactly
/// twice the first pass's, i.e. backward accumulates (+=) instead of overwriting.
func expectGradientsAccumulate(_ inputs: [Tensor], sourceLocation: SourceLocation = #_sourceLocation,
                               _ f: ([Tensor]) throws -> Tensor) throws {
    for t in inputs { t.grad = nil }
    let first = try f(inputs)
    let seed = try randomTensor(first.shape, seed: 98, requiresGrad: false)
    try first.backward(seed: seed)
    let once = inputs.map { $0.grad?.scalars ?? [] }
    try f(inputs).backward(seed: seed)
    for (which, t) in inputs.enumerated() where t.requiresGrad {
        let twice = once[which].map { 2 * $0 }
        expectClose(t.grad?.scalars ?? [], twice, atol: 1e-6, rtol: 1e-5, sourceLocation: sourceLocation)
        #expect(once[which].contains { $0 != 0 }, "input \(which) got no gradient", sourceLocation: sourceLocation)
    }
    for t in inputs { t.grad = nil }
}

@Suite struct SoftmaxTests {
    @Test func handComputedValues() throws {
        // x = [1, 2, 3]: subtracting the max gives [−2, −1, 0]; e^−2 = 0.13533528, e^−1 = 0.36787944,
        // e^0 = 1, sum = 1.50321472, so softmax = [0.13533528, 0.36787944, 1] / 1.50321472
        // = [0.09003057, 0.24472847, 0.66524096] and log-softmax = x − 3 − log(1.50321472)
        // = x − 3.40760596 = [−2.40760596, −1.40760596, −0.40760596].
        let x = try Tensor([1, 2, 3], shape: [3])
        expectClose(try softmax(x, dim: 0).scalars, [0.09003057, 0.24472847, 0.66524096], atol: 1e-7, rtol: 1e-6)
        expectClose(try logSoftmax(x, dim: -1).scalars, [-2.40760596, -1.40760596, -0.40760596], atol: 1e-6, rtol: 1e-6)
        // Over dim 0 of [[0, 0], [ln 3, 0]]: column 0 is softmax(0, ln 3) = [1/4, 3/4], column 1 is
        // softmax(0, 0) = [1/2, 1/2].
        let y = try Tensor([0, 0, Float(Glibc.log(3.0)), 0], shape: [2, 2])
        expectClose(try softmax(y, dim: 0).scalars, [0.25, 0.5, 0.75, 0.5], atol: 1e-7, rtol: 1e-6)
        // 0-d tensor: a single element has probability 1 (log-probability 0).
        #expect(try softmax(Tensor([5], shape: []), dim: 0).scalars == [1])
        #expect(try logSoftmax(Tensor([5], shape: []), dim: -1).scalars == [0])
    }

    static let layouts: [(shape: [Int], dim: Int)] = [
        ([4, 7], -1), ([4, 7], 0), ([3, 4, 5], 1), ([3, 4, 5], -3), ([2, 3, 300], 1), ([1, 5, 2, 260], 2),
        ([64, 1024], 1), ([40, 17, 64], 1), ([6], 0),
    ]

    @Test(arguments: 0..<layouts.count)
    func matchesDefinition(_ index: Int) throws {
        let (shape, dim) = Self.layouts[index]
        let x = try randomTensor(shape, seed: 7, scale: 3, requiresGrad: false)
        expectClose(try softmax(x, dim: dim).scalars, referenceSoftmax(x, dim: dim), atol: 1e-7, rtol: 1e-5)
        expectClose(try logSoftmax(x, dim: dim).scalars, referenceSoftmax(x, dim: dim, log: true), atol: 1e-5, rtol: 1e-5)
    }

    @Test func slicesSumToOne() throws {
        let x = try randomTensor([3, 5, 7], seed: 11, scale: 4, requiresGrad: false)
        for dim in 0..<3 {
            let y = try softmax(x, dim: dim)
            let ref = referenceSoftmax(try Tensor(y.scalars.map { Float(Glibc.log(Double($0))) }, shape: x.shape), dim: dim)
            // softmax of log(y) is y again exactly when each slice of y sums to 1
            expectClose(y.scalars, ref, atol: 1e-6, rtol: 1e-5)
            #expect(y.scalars.allSatisfy { $0 > 0 && $0 < 1 })
        }
        let rows = try softmax(randomTensor([8, 33], seed: 12, scale: 10, requiresGrad: false), dim: 1)
        for r in 0..<8 {
            let s = (0..<33).reduce(Float(0)) { $0 + rows.data[r * 33 + $1] }
            #expect(abs(s - 1) < 1e-6)
        }
    }

    @Test func largeLogitsStayFinite() throws {
        // max subtraction: [1000, 0, −1000] → [0, −1000, −2000] before exp, so softmax = [1, 0, 0]
        // and log-softmax = [0, −1000, −2000] (e^−1000 vanishes against 1).
        let x = try Tensor([1000, 0, -1000, 1000, 1000, 1000], shape: [2, 3])
        expectClose(try softmax(x, dim: 1).scalars, [1, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3], atol: 1e-7, rtol: 1e-6)
        let logs = try logSoftmax(x, dim: 1).scalars
        expectClose(Array(logs[0..<3]), [0, -1000, -2000], atol: 1e-5, rtol: 1e-7)
        expectClose(Array(logs[3..<6]), [Float](repeating: -Float(Glibc.log(3.0)), count: 3), atol: 1e-6, rtol: 1e-6)
        // the same along a non-last dimension
        let t = try Tensor([1000, -1000, 0, 1000], shape: [2, 2])
        expectClose(try softmax(t, dim: 0).scalars, [1, 0, 0, 1], atol: 1e-7, rtol: 0)
        #expect(try logSoftmax(t, dim: 0).scalars.allSatisfy { $0.isFinite })
    }

    @Test func nonFiniteInputsFollowTorch() throws {
        // torch: a slice with NaN is all NaN; a slice of −inf only is NaN (−inf − (−inf)); −inf
        // entries next to finite ones get probability 0.
        let y = try softmax(Tensor([1, .nan, 2, -.infinity, -.infinity, -.infinity, 0, -.infinity, 0], shape: [3, 3]), dim: 1)
        #expect(y.scalars[0..<6].allSatisfy { $0.isNaN })
        #expect(Array(y.scalars[6..<9]) == [0.5, 0, 0.5])
    }

    @Test func vectorExpMatchesLibm() {
        var worst: Float = 0
        var x: Float = -103
        while x < 88.7 {
            let e = VectorMath.exp(x), r = Float(Glibc.exp(Double(x)))
            if r >= Float.leastNormalMagnitude { worst = max(worst, abs(e - r) / r) }
            else { #expect(abs(e - r) <= 2 * Float.leastNonzeroMagnitude, "x = \(x)") }
            x += 0.0137
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(VectorMath.exp(0) == 1)
        #expect(VectorMath.exp(-.infinity) == 0)
        #expect(VectorMath.exp(-200) == 0)
        #expect(VectorMath.exp(.infinity) == .infinity)
        #expect(VectorMath.exp(88.8) == .infinity)
        #expect(VectorMath.exp(88.7).isFinite)
        #expect(VectorMath.exp(.nan).isNaN)
    }

    static let gradientLayouts: [(shape: [Int], dim: Int)] = [
        ([3, 6], 1), ([3, 6], 0), ([2, 3, 4], 1), ([2, 3, 4], -1), ([2, 3, 260], 1), ([5], 0),
    ]

    @Test(arguments: 0..<gradientLayouts.count)
    func gradientsMatchFiniteDifferences(_ index: Int) throws {
        let (shape, dim) = Self.gradientLayouts[index]
        try expectGradientsMatch([randomTensor(shape, seed: 21)]) { t in try softmax(t[0], dim: dim) }
        try expectGradientsMatch([randomTensor(shape, seed: 22)]) { t in try logSoftmax(t[0], dim: dim) }
    }

    @Test func backwardAccumulates() throws {
        for dim in [1, 0] {
            try expectGradientsAccumulate([randomTensor([3, 4], seed: 23)]) { t in try softmax(t[0], dim: dim) }
            try expectGradientsAccumulate([randomTensor([3, 4], seed: 24)]) { t in try logSoftmax(t[0], dim: dim) }
        }
    }

    @Test func rejectsBadDimension() throws {
        let x = try Tensor(zeros: [2, 3])
        #expect(throws: MedSynthError.self) { try softmax(x, dim: 2) }
        #expect(throws: MedSynthError.self) { try softmax(x, dim: -3) }
        #expect(throws: MedSynthError.self) { try logSoftmax(x, dim: 5) }
        #expect(throws: MedSynthError.self) { try softmax(Tensor([1], shape: []), dim: 1) }
    }
}
