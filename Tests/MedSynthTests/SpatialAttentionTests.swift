import Testing
import Glibc
@testable import MedSynth
@testable import MedSynthCore

@Suite struct SpatialAttentionTests {
    /// Naive reference: per image and head, softmax(s·qᵀk) applied to v.
    func reference(_ qkv: Tensor, heads: Int) -> [Float] {
        let (b, c3, h, w) = (qkv.shape[0], qkv.shape[1], qkv.shape[2], qkv.shape[3])
        let c = c3 / 3, l = h * w, d = c / heads
        let s = 1 / Float(d).squareRoot()
        var out = [Float](repeating: 0, count: b * c * l)
        for n in 0..<b { for hd in 0..<heads {
            func at(_ part: Int, _ ch: Int, _ p: Int) -> Float { qkv.data[((n * c3) + part * c + hd * d + ch) * l + p] }
            for i in 0..<l {
                var scores = (0..<l).map { j in s * (0..<d).reduce(Float(0)) { $0 + at(0, $1, i) * at(1, $1, j) } }
                let m = scores.max() ?? 0
                scores = scores.map { Glibc.exp($0 - m) }
                let z = scores.reduce(0, +)
                for ch in 0..<d {
                    out[(n * c + hd * d + ch) * l + i] = (0..<l).reduce(Float(0)) { $0 + scores[$1] / z * at(2, ch, $1) }
                }
            }
        }}
        return out
    }

    @Test(arguments: [1, 2])
    func matchesNaiveAttention(heads: Int) throws {
        let qkv = try randomTensor([2, 12, 3, 4], seed: 7, requiresGrad: false)
        let y = try spatialSelfAttention(qkv: qkv, heads: heads)
        #expect(y.shape == [2, 4, 3, 4])
        expectClose(y.scalars, reference(qkv, heads: heads), atol: 1e-5, rtol: 1e-4)
    }

    @Test func identicalKeysAverageTheValues() throws {
        // every key equal → uniform attention → each output pixel is the mean of v over pixels
        let qkv = try randomTensor([1, 3, 2, 2], seed: 8, requiresGrad: false)
        for p in 0..<4 { qkv.data[4 + p] = 0.5 }   // k channel constant
        let y = try spatialSelfAttention(qkv: qkv, heads: 1)
        let v = (0..<4).map { qkv.data[8 + $0] }
        let meanV = v.reduce(0, +) / 4
        expectClose(y.scalars, [Float](repeating: meanV, count: 4), atol: 1e-6)
    }

    @Test(arguments: [1, 2])
    func gradientsMatchFiniteDifferences(heads: Int) throws {
        try expectGradientsMatch([randomTensor([2, 12, 2, 3], seed: 9)]) { t in try spatialSelfAttention(qkv: t[0], heads: heads) }
    }

    @Test func rejectsBadShapes() {
        #expect(throws: MedSynthError.self) { try spatialSelfAttention(qkv: Tensor(zeros: [1, 8, 2, 2])) }
        #expect(throws: MedSynthError.self) { try spatialSelfAttention(qkv: Tensor(zeros: [1, 12, 2, 2]), heads: 3) }
        #expect(throws: MedSynthError.self) { try spatialSelfAttention(qkv: Tensor(zeros: [12, 2, 2])) }
    }
}
