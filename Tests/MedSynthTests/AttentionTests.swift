import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

/// softmax(scale · q kᵀ) v per head, straight from the definition in double precision.
func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Double? = nil) -> [Float] {
    let r = q.rank
    let (lq, d, lk, dv) = (q.shape[r - 2], q.shape[r - 1], k.shape[r - 2], v.shape[r - 1])
    let heads = q.shape.dropLast(2).reduce(1, *)
    let sc = scale ?? 1 / Double(d).squareRoot()
    var out = [Float](repeating: 0, count: heads * lq * dv)
    for h in 0..<heads {
        for i in 0..<lq {
            var scores = [Double](repeating: 0, count: lk)
            for j in 0..<lk {
                var s = 0.0
                for e in 0..<d { s += Double(q.data[(h * lq + i) * d + e]) * Double(k.data[(h * lk + j) * d + e]) }
                scores[j] = sc * s
            }
            let m = scores.max() ?? 0
            let ex = scores.map { Glibc.exp($0 - m) }
            let total = ex.reduce(0, +)
            for c in 0..<dv {
                var s = 0.0
                for j in 0..<lk { s += ex[j] / total * Double(v.data[(h * lk + j) * dv + c]) }
                out[(h * lq + i) * dv + c] = Float(s)
            }
        }
    }
    return out
}

@Suite struct AttentionTests {
    @Test func handComputedValues() throws {
        // q = [1, 0], keys [1, 0] and [0, 1], scale 1: scores [1, 0],
        // P = [e, 1] / (1 + e) = [0.73105858, 0.26894142];
        // out = 0.73105858 · [1, 2] + 0.26894142 · [3, 4] = [1.53788284, 2.53788284].
        let q = try Tensor([1, 0], shape: [1, 1, 1, 2])
        let k = try Tensor([1, 0, 0, 1], shape: [1, 1, 2, 2])
        let v = try Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        let o = try scaledDotProductAttention(q, k, v, scale: 1)
        #expect(o.shape == [1, 1, 1, 2])
        expectClose(o.scalars, [1.53788284, 2.53788284], atol: 1e-6, rtol: 1e-6)
        // default scale 1/√2: scores [0.70710678, 0], P = [e^0.7071, 1] / (1 + e^0.7071)
        // = [0.66976155, 0.33023845]; out = [1 + 2 · 0.33023845, 2 + 2 · 0.33023845] = [1.6604769, 2.6604769].
        expectClose(try scaledDotProductAttention(q, k, v).scalars, [1.6604769, 2.6604769], atol: 1e-6, rtol: 1e-6)
    }

    @Test func identicalKeysAverageValues() throws {
        // all keys equal → every score in a row is equal → P uniform → each output row is the mean of v.
        let q = try randomTensor([2, 3, 5, 4], seed: 61, requiresGrad: false)
        let key = try randomTensor([4], seed: 62, requiresGrad: false)
        let k = try Tensor(uninitialized: [2, 3, 6, 4])
        for i in 0..<k.count { k.data[i] = key.data[i % 4] }
        let v = try randomTensor([2, 3, 6, 3], seed: 63, requiresGrad: false)
        let o = try scaledDotProductAttention(q, k, v)
        for h in 0..<6 {
            for c in 0..<3 {
                var mean: Float = 0
                for j in 0..<6 { mean += v.data[(h * 6 + j) * 3 + c] / 6 }
                for i in 0..<5 { #expect(abs(o.data[(h * 5 + i) * 3 + c] - mean) < 1e-5) }
            }
        }
    }

    static let shapes: [(lead: [Int], lq: Int, lk: Int, d: Int, dv: Int, scale: Float?)] = [
        ([2, 3], 5, 7, 4, 6, nil),     // cross-attention shapes, Dv ≠ D
        ([1, 1], 9, 9, 8, 8, nil),     // one head: products split over threads
        ([3], 4, 4, 3, 3, 0.7),        // rank 3, explicit scale
        ([2, 4], 64, 64, 32, 32, nil), // a U-Net 8×8 attention block
        ([1, 2], 256, 256, 16, 16, nil),
        ([2, 1], 3, 1, 2, 5, nil),     // a single key: P = 1
    ]

    @Test(arguments: 0..<shapes.count)
    func matchesDirectImplementation(_ index: Int) throws {
        let s = Self.shapes[index]
        let q = try randomTensor(s.lead + [s.lq, s.d], seed: 64, requiresGrad: false)
        let k = try randomTensor(s.lead + [s.lk, s.d], seed: 65, requiresGrad: false)
        let v = try randomTensor(s.lead + [s.lk, s.dv], seed: 66, requiresGrad: false)
        let expected = referenceAttention(q, k, v, scale: s.scale.map(Double.init))
        let o = try scaledDotProductAttention(q, k, v, scale: s.scale)
        #expect(o.shape == s.lead + [s.lq, s.dv])
        expectClose(o.scalars, expected, atol: 2e-5, rtol: 1e-4)
        // the path that keeps P for backward computes the same values
        q.requiresGrad = true
        let withGraph = try scaledDotProductAttention(q, k, v, scale: s.scale)
        #expect(withGraph.scalars == o.scalars)
    }

    @Test func largeScoresStayFinite() throws {
        // scores around ±1000 after scaling: the row max is subtracted before exp, so P is one-hot
        // (or nearly) and the output is the chosen value row.
        let q = try Tensor([1000, 0, -1000, 0], shape: [1, 1, 2, 2], requiresGrad: true)
        let k = try Tensor([1, 0, 0, 1], shape: [1, 1, 2, 2], requiresGrad: true)
        let v = try Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2], requiresGrad: true)
        let o = try scaledDotProductAttention(q, k, v, scale: 1)
        // row 0: scores [1000, 0] → v row 0; row 1: scores [−1000, 0] → v row 1.
        expectClose(o.scalars, [1, 2, 3, 4], atol: 1e-6, rtol: 0)
        try o.backward()
        for t in [q, k, v] { #expect(t.grad?.scalars.allSatisfy { $0.isFinite } ?? false) }
    }

    static let gradientShapes: [(lead: [Int], lq: Int, lk: Int, d: Int, dv: Int, scale: Float?)] = [
        ([2, 2], 3, 4, 3, 2, nil),   // several heads in parallel
        ([1, 1], 5, 3, 4, 4, 0.8),   // one head (split products)
        ([3], 2, 6, 2, 3, nil),
    ]

    @Test(arguments: 0..<gradientShapes.count)
    func gradientsMatchFiniteDifferences(_ index: Int) throws {
        let s = Self.gradientShapes[index]
        let inputs = [try randomTensor(s.lead + [s.lq, s.d], seed: 71), try randomTensor(s.lead + [s.lk, s.d], seed: 72),
                      try randomTensor(s.lead + [s.lk, s.dv], seed: 73)]
        try expectGradientsMatch(inputs) { t in try scaledDotProductAttention(t[0], t[1], t[2], scale: s.scale) }
    }

    @Test func gradientsForSubsetsAndSelfAttention() throws {
        // only v needs a gradient (q, k constants), then only q
        let q = try randomTensor([2, 1, 4, 3], seed: 74, requiresGrad: false), k = try randomTensor([2, 1, 5, 3], seed: 75, requiresGrad: false)
        try expectGradientsMatch([randomTensor([2, 1, 5, 2], seed: 76)]) { t in try scaledDotProductAttention(q, k, t[0]) }
        let v = try randomTensor([2, 1, 5, 2], seed: 77, requiresGrad: false)
        try expectGradientsMatch([randomTensor([2, 1, 4, 3], seed: 78)]) { t in try scaledDotProductAttention(t[0], k, v) }
        // self-attention with one tensor as q, k and v: the three gradients add up in one buffer
        try expectGradientsMatch([randomTensor([2, 2, 4, 3], seed: 79)]) { t in try scaledDotProductAttention(t[0], t[0], t[0]) }
    }

    @Test func backwardAccumulates() throws {
        // Two backward passes without zeroing must leave exactly twice the gradient (+=, not =).
        let inputs = [try randomTensor([2, 2, 3, 4], seed: 84), try randomTensor([2, 2, 5, 4], seed: 85), try randomTensor([2, 2, 5, 3], seed: 86)]
        try expectGradientsAccumulate(inputs) { t in try scaledDotProductAttention(t[0], t[1], t[2]) }
        try expectGradientsAccumulate([randomTensor([1, 1, 5, 4], seed: 87)]) { t in try scaledDotProductAttention(t[0], t[0], t[0]) }
    }

    @Test func noGraphWithoutGradients() throws {
        let q = try randomTensor([1, 2, 3, 4], seed: 81), k = try randomTensor([1, 2, 3, 4], seed: 82), v = try randomTensor([1, 2, 3, 4], seed: 83)
        let o = try withoutGrad { try scaledDotProductAttention(q, k, v) }
        #expect(o.node == nil)
        #expect(try scaledDotProductAttention(q, k, v).node != nil)
        q.requiresGrad = false; k.requiresGrad = false; v.requiresGrad = false
        #expect(try scaledDotProductAttention(q, k, v).node == nil)
    }

    @Test func rejectsBadShapes() throws {
        let q = try Tensor(zeros: [2, 3, 4, 8])
        #expect(throws: MedSynthError.self) { try scaledDotProductAttention(q, Tensor(zeros: [2, 3, 5]), Tensor(zeros: [2, 3, 5, 8])) }    // rank
        #expect(throws: MedSynthError.self) { try scaledDotProductAttention(q, Tensor(zeros: [2, 2, 5, 8]), Tensor(zeros: [2, 2, 5, 8])) } // heads
        #expect(throws: MedSynthError.self) { try scaledDotProductAttention(q, Tensor(zeros: [2, 3, 5, 7]), Tensor(zeros: [2, 3, 5, 8])) } // width
        #expect(throws: MedSynthError.self) { try scaledDotProductAttention(q, Tensor(zeros: [2, 3, 5, 8]), Tensor(zeros: [2, 3, 6, 8])) } // v length
        #expect(throws: MedSynthError.self) { try scaledDotProductAttention(Tensor(zeros: [4]), Tensor(zeros: [4]), Tensor(zeros: [4])) }
        #expect(throws: MedSynthError.self) {
            try scaledDotProductAttention(Tensor(zeros: [1, 2, 0]), Tensor(zeros: [1, 3, 0]), Tensor(zeros: [1, 3, 2]))
        }
    }
}
