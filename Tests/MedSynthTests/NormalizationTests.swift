import Testing
import Glibc
@testable import MedSynth
@testable import MedSynthCore

/// Batch norm by its definition, in Double: x viewed as [N, C, S].
func referenceBatchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, mean: [Double]? = nil, variance: [Double]? = nil,
                        eps: Double) -> [Float] {
    let n = x.shape[0], c = x.shape[1], s = x.shape[2...].reduce(1, *)
    var out = [Float](repeating: 0, count: x.count)
    for ch in 0..<c {
        var mu = 0.0, v = 0.0
        if let mean, let variance { mu = mean[ch]; v = variance[ch] } else {
            for b in 0..<n { for i in 0..<s { mu += Double(x.data[(b * c + ch) * s + i]) } }
            mu /= Double(n * s)
            for b in 0..<n { for i in 0..<s { let d = Double(x.data[(b * c + ch) * s + i]) - mu; v += d * d } }
            v /= Double(n * s)
        }
        let w = Double(weight?.data[ch] ?? 1), bb = Double(bias?.data[ch] ?? 0)
        for b in 0..<n { for i in 0..<s {
            let j = (b * c + ch) * s + i
            out[j] = Float((Double(x.data[j]) - mu) / (v + eps).squareRoot() * w + bb)
        }}
    }
    return out
}

/// Group norm by its definition, in Double.
func referenceGroupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double) -> [Float] {
    let n = x.shape[0], c = x.shape[1], s = x.shape[2...].reduce(1, *), cg = c / groups, m = cg * s
    var out = [Float](repeating: 0, count: x.count)
    for b in 0..<n { for g in 0..<groups {
        let base = (b * c + g * cg) * s
        var mu = 0.0, v = 0.0
        for i in 0..<m { mu += Double(x.data[base + i]) }
        mu /= Double(m)
        for i in 0..<m { let d = Double(x.data[base + i]) - mu; v += d * d }
        v /= Double(m)
        for i in 0..<m {
            let ch = g * cg + i / s
            out[base + i] = Float((Double(x.data[base + i]) - mu) / (v + eps).squareRoot()
                                  * Double(weight?.data[ch] ?? 1) + Double(bias?.data[ch] ?? 0))
        }
    }}
    return out
}

@Suite struct NormalizationTests {
    // MARK: - batch norm values

    @Test func batchNormTrainingHandComputed() throws {
        // x [N=4, C=2], rows (c0, c1): (0, 1), (0, 5), (2, 1), (2, 5)
        // c0 = {0, 0, 2, 2}: mean 1, biased var 1 → x̂ = −1, −1, 1, 1
        // c1 = {1, 5, 1, 5}: mean 3, biased var 4 → x̂ = −1, 1, −1, 1
        // weight (2, 3), bias (0.5, −1), eps 0: c0 → −1.5, −1.5, 2.5, 2.5; c1 → −4, 2, −4, 2
        let x = try Tensor([0, 1, 0, 5, 2, 1, 2, 5], shape: [4, 2])
        let rm = try Tensor([0, 1], shape: [2]), rv = try Tensor([1, 1], shape: [2])
        let y = try batchNorm(x, weight: Tensor([2, 3], shape: [2]), bias: Tensor([0.5, -1], shape: [2]),
                              runningMean: rm, runningVar: rv, training: true, momentum: 0.1, eps: 0)
        #expect(y.shape == [4, 2])
        expectClose(y.scalars, [-1.5, -4, -1.5, 2, 2.5, -4, 2.5, 2], atol: 1e-6)
        // running stats, momentum 0.1, unbiased variance (M = 4 → ×4/3):
        //   mean: 0.9·0 + 0.1·1 = 0.1;  0.9·1 + 0.1·3 = 1.2
        //   var:  0.9·1 + 0.1·(1·4/3) = 1.0333333;  0.9·1 + 0.1·(4·4/3) = 1.4333333
        expectClose(rm.scalars, [0.1, 1.2], atol: 1e-6)
        expectClose(rv.scalars, [0.9 + 0.4 / 3, 0.9 + 1.6 / 3], atol: 1e-6)
        // a second step folds in the same batch statistics again
        _ = try batchNorm(x, weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 0.5, eps: 0)
        // mean: 0.5·0.1 + 0.5·1 = 0.55;  0.5·1.2 + 0.5·3 = 2.1
        // var:  0.5·1.0333333 + 0.5·4/3 = 1.1833333;  0.5·1.4333333 + 0.5·16/3 = 3.3833333
        expectClose(rm.scalars, [0.55, 2.1], atol: 1e-6)
        expectClose(rv.scalars, [0.5 * (0.9 + 0.4 / 3) + 0.5 * 4 / 3, 0.5 * (0.9 + 1.6 / 3) + 0.5 * 16 / 3], atol: 1e-6)
    }

    @Test func batchNormTrainingSpatial() throws {
        // x [N=2, C=2, 1, 2]: c0 = {1, 1 | 3, 3} (mean 2, var 1), c1 = {0, 4 | 4, 0} (mean 2, var 4)
        // eps 0, no affine: c0 → −1, −1, 1, 1; c1 → −1, 1, 1, −1
        let x = try Tensor([1, 1, 0, 4, 3, 3, 4, 0], shape: [2, 2, 1, 2])
        let y = try batchNorm(x, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true, eps: 0)
        expectClose(y.scalars, [-1, -1, -1, 1, 1, 1, 1, -1], atol: 1e-6)
        // default eps 1e-5: c0 scales by 1/√(1 + 1e-5)
        let z = try batchNorm(x, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        #expect(abs(z.data[0] - Float(-1 / (1 + 1e-5).squareRoot())) < 1e-7)
    }

    @Test func batchNormEvalHandComputed() throws {
        // running mean (1, −2), running var (3, 0), eps 1 → invstd (1/2, 1)
        // x [2, 2] = (3, 0), (−1, −2): c0 → (3−1)/2 = 1, (−1−1)/2 = −1; c1 → 0+2 = 2, −2+2 = 0
        // weight (2, 1), bias (0, 1): c0 → 2, −2; c1 → 3, 1
        let rm = try Tensor([1, -2], shape: [2]), rv = try Tensor([3, 0], shape: [2])
        let y = try batchNorm(Tensor([3, 0, -1, -2], shape: [2, 2]), weight: Tensor([2, 1], shape: [2]),
                              bias: Tensor([0, 1], shape: [2]), runningMean: rm, runningVar: rv, training: false, eps: 1)
        expectClose(y.scalars, [2, 3, -2, 1], atol: 1e-6)
        #expect(rm.scalars == [1, -2] && rv.scalars == [3, 0])   // eval leaves the running stats alone
        // a single value per channel is fine in eval mode
        let one = try batchNorm(Tensor([5, 5], shape: [1, 2]), weight: nil, bias: nil, runningMean: rm, runningVar: rv,
                                training: false, eps: 1)
        expectClose(one.scalars, [2, 7], atol: 1e-6)
    }

    @Test func batchNormMatchesReferenceOnLargeInput() throws {
        // 8·32·32 values per channel: the parallel path, chunked sums
        let x = try randomTensor([8, 4, 32, 32], seed: 11, scale: 3, requiresGrad: false)
        for i in 0..<x.count { x.data[i] += 10 }   // an offset the variance must not be fooled by
        let w = try randomTensor([4], seed: 12, requiresGrad: false), b = try randomTensor([4], seed: 13, requiresGrad: false)
        let y = try batchNorm(x, weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
        expectClose(y.scalars, referenceBatchNorm(x, weight: w, bias: b, eps: 1e-5), atol: 2e-5, rtol: 1e-4)
        let rm = try randomTensor([4], seed: 14, requiresGrad: false), rv = try Tensor([0.5, 1, 2, 4], shape: [4])
        let e = try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        let expected = referenceBatchNorm(x, weight: w, bias: b, mean: rm.scalars.map(Double.init),
                                          variance: rv.scalars.map(Double.init), eps: 1e-5)
        expectClose(e.scalars, expected, atol: 2e-5, rtol: 1e-4)
    }

    @Test(arguments: [1, 4, 49, 255, 300])
    func batchNormSmallPlaneSweepsMatchPlaneByPlane(_ s: Int) throws {
        // the two kernels of each product, on the same values: planes of s values, 7 channels
        let (n, c) = (5, 7)
        let x = try randomTensor([n, c, s], seed: 31, scale: 2, requiresGrad: false)
        for i in 0..<x.count { x.data[i] += 3 }
        let dy = try randomTensor([n, c, s], seed: 32, requiresGrad: false)
        let w = try randomTensor([c], seed: 33, requiresGrad: false), b = try randomTensor([c], seed: 34, requiresGrad: false)
        var (m1, v1) = ([Double](repeating: 0, count: c), [Double](repeating: 0, count: c))
        var (m2, v2) = (m1, v1)
        BatchNormKernel.smallPlaneStatistics(x: x.data, n: n, c: c, s: s, mean: &m1, variance: &v1)
        BatchNormKernel.planeStatistics(x: x.data, n: n, c: c, s: s, mean: &m2, variance: &v2)
        for ch in 0..<c {
            #expect(abs(m1[ch] - m2[ch]) <= 1e-6 * abs(m2[ch]) + 1e-9)
            #expect(abs(v1[ch] - v2[ch]) <= 1e-5 * v2[ch] + 1e-9)
        }
        let mean = m2.map { Float($0) }, invstd = v2.map { Float(1 / ($0 + 1e-5).squareRoot()) }
        let y1 = try Tensor(zeros: x.shape), y2 = try Tensor(zeros: x.shape)
        if s < BatchNormKernel.smallPlane {
            BatchNormKernel.forward(x: x.data, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: w.data, bias: b.data, y: y1.data)
        }
        BatchNormKernel.planeForward(x: x.data, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: w.data, bias: b.data, y: y2.data)
        if s < BatchNormKernel.smallPlane { #expect(y1.scalars == y2.scalars) }
        for training in [true, false] {
            let (dx1, dw1, db1) = (try randomTensor(x.shape, seed: 35), try Tensor(zeros: [c]), try Tensor(zeros: [c]))
            let (dx2, dw2, db2) = (try dx1.copy(), try Tensor(zeros: [c]), try Tensor(zeros: [c]))
            BatchNormKernel.smallPlaneBackward(x: x.data, dy: dy.data, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: w.data,
                                               training: training, dx: dx1.data, dWeight: dw1.data, dBias: db1.data)
            BatchNormKernel.planeBackward(x: x.data, dy: dy.data, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: w.data,
                                          training: training, dx: dx2.data, dWeight: dw2.data, dBias: db2.data)
            expectClose(dx1.scalars, dx2.scalars, atol: 1e-5, rtol: 1e-4)
            expectClose(dw1.scalars, dw2.scalars, atol: 1e-4, rtol: 1e-4)
            expectClose(db1.scalars, db2.scalars, atol: 1e-4, rtol: 1e-4)
        }
    }

    @Test(arguments: [NormActivation.relu, .relu6])
    func batchNormFusedActivationEqualsTheTwoOps(_ activation: NormActivation) throws {
        // small (2×2) and large (20×20) planes, training and evaluation, with values on both
        // sides of 0 and 6 and exactly at them
        for (shape, training) in [([4, 3, 2, 2], true), ([2, 3, 20, 20], true), ([4, 3, 2, 2], false), ([2, 3, 20, 20], false)] {
            func run(_ fused: Bool) throws -> [[Float]] {
                let x = try randomTensor(shape, seed: 41, scale: 4)
                let w = try Tensor([1, 3, 5], shape: [3], requiresGrad: true), b = try Tensor([0.5, 2, -1], shape: [3], requiresGrad: true)
                let rm = try Tensor([0.1, -0.2, 0.3], shape: [3]), rv = try Tensor([0.5, 1, 2], shape: [3])
                let y: Tensor
                if fused {
                    y = try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: training, activation: activation)
                } else {
                    let z = try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: training)
                    y = activation == .relu ? try relu(z) : try relu6(z)
                }
                try y.backward(seed: randomTensor(shape, seed: 42, requiresGrad: false))
                return [y.scalars, x.grad?.scalars ?? [], w.grad?.scalars ?? [], b.grad?.scalars ?? []]
            }
            let (fused, separate) = (try run(true), try run(false))
            #expect(fused == separate, "\(shape), training \(training)")
            #expect(fused[0].contains(0) && (activation == .relu || fused[0].contains(6)))
        }
    }

    @Test func batchNormFusedActivationGradients() throws {
        // per channel the values −2, −1, 0, 1, 2 (and small distinct offsets): outputs on both sides
        // of 0 and 6, none within 0.1 of them, so the finite differences never cross a kink
        let x = try Tensor((0..<20).map { i in Float(i % 5 - 2) + Float(i) * 0.003 }, shape: [2, 2, 1, 5], requiresGrad: true)
        let inputs = [x, try Tensor([3, 2.5], shape: [2], requiresGrad: true), try Tensor([1.6, 3], shape: [2], requiresGrad: true)]
        let y = try withoutGrad { try batchNorm(x, weight: inputs[1], bias: inputs[2], runningMean: nil, runningVar: nil, training: true) }
        #expect(y.scalars.allSatisfy { abs($0) > 0.1 && abs($0 - 6) > 0.1 })
        #expect(y.scalars.contains { $0 < 0 } && y.scalars.contains { $0 > 6 })
        for activation in [NormActivation.relu, .relu6] {
            try expectGradientsMatch(inputs) { t in
                try batchNorm(t[0], weight: t[1], bias: t[2], runningMean: nil, runningVar: nil, training: true, activation: activation)
            }
        }
    }

    @Test(arguments: [NormActivation.identity, .relu])
    func batchNormResidualEqualsAddThenActivation(_ activation: NormActivation) throws {
        // a ResNet block's end: small (2×2) and large (20×20) planes, training and evaluation
        for (shape, training) in [([4, 3, 2, 2], true), ([2, 3, 20, 20], true), ([4, 3, 2, 2], false), ([2, 3, 20, 20], false)] {
            func run(_ fused: Bool) throws -> [[Float]] {
                let x = try randomTensor(shape, seed: 47, scale: 3), r = try randomTensor(shape, seed: 48, scale: 2)
                let w = try Tensor([1, 3, 5], shape: [3], requiresGrad: true), b = try Tensor([0.5, 2, -1], shape: [3], requiresGrad: true)
                let rm = try Tensor([0.1, -0.2, 0.3], shape: [3]), rv = try Tensor([0.5, 1, 2], shape: [3])
                let y: Tensor
                if fused {
                    y = try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: training,
                                      activation: activation, residual: r)
                } else {
                    let z = try add(try batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: training), r)
                    y = activation == .relu ? try relu(z) : z
                }
                try y.backward(seed: randomTensor(shape, seed: 49, requiresGrad: false))
                return [y.scalars, x.grad?.scalars ?? [], r.grad?.scalars ?? [], w.grad?.scalars ?? [], b.grad?.scalars ?? []]
            }
            let (fused, separate) = (try run(true), try run(false))
            #expect(fused == separate, "\(shape), training \(training)")
            #expect(!fused[2].isEmpty && (activation == .identity || fused[0].contains(0)))
        }
        // finite differences, residual included (values kept 0.1 away from the ReLU's kink)
        let x = try Tensor((0..<20).map { i in Float(i % 5 - 2) + Float(i) * 0.003 }, shape: [2, 2, 1, 5], requiresGrad: true)
        let r = try Tensor((0..<20).map { i in Float(i % 3) * 0.7 - 0.45 + Float(i) * 0.002 }, shape: [2, 2, 1, 5], requiresGrad: true)
        let inputs = [x, r, try Tensor([3, 2.5], shape: [2], requiresGrad: true), try Tensor([1.6, 3], shape: [2], requiresGrad: true)]
        let y = try withoutGrad {
            try batchNorm(x, weight: inputs[2], bias: inputs[3], runningMean: nil, runningVar: nil, training: true, residual: r)
        }
        #expect(y.scalars.allSatisfy { abs($0) > 0.1 } && y.scalars.contains { $0 < 0 })
        try expectGradientsMatch(inputs) { t in
            try batchNorm(t[0], weight: t[2], bias: t[3], runningMean: nil, runningVar: nil, training: true,
                          activation: activation, residual: t[1])
        }
        #expect(throws: MedSynthError.self) {
            try batchNorm(x, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true,
                          residual: try Tensor(zeros: [2, 2, 5, 1]))
        }
    }

    @Test func sequentialFusesBatchNormAndActivation() throws {
        let x = try randomTensor([2, 4, 3, 3], seed: 46)
        let fused = Sequential([try BatchNorm(4), ReLU6(), try BatchNorm(4), ReLU()])
        let y = try fused(x)
        let bn1 = try BatchNorm(4), bn2 = try BatchNorm(4)
        let expected = try relu(try bn2(relu6(try bn1(x))))
        #expect(y.scalars == expected.scalars)
        // both running statistics were updated, once
        let first = try #require(fused.layers[0] as? BatchNorm)
        #expect(first.batchesTracked == 1 && first.runningMean.scalars == bn1.runningMean.scalars)
    }

    @Test func batchNormEmptyBatchIsEmpty() throws {
        let rm = try Tensor([1, 2], shape: [2]), rv = try Tensor([3, 4], shape: [2])
        let y = try batchNorm(Tensor(zeros: [0, 2, 3]), weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        #expect(y.shape == [0, 2, 3])
        #expect(rm.scalars == [1, 2] && rv.scalars == [3, 4])
    }

    // MARK: - batch norm gradients

    static let batchNormCases: [(shape: [Int], affine: Bool, training: Bool)] = [
        ([3, 2, 2, 3], true, true),
        ([5, 3], true, true),
        ([4, 3, 5], false, true),
        ([3, 2, 2, 3], true, false),
        ([5, 3], false, false),
    ]

    @Test(arguments: 0..<batchNormCases.count)
    func batchNormGradients(_ index: Int) throws {
        let c = Self.batchNormCases[index]
        let channels = c.shape[1]
        var inputs = [try randomTensor(c.shape, seed: 21)]
        if c.affine { inputs += [try randomTensor([channels], seed: 22), try randomTensor([channels], seed: 23)] }
        let rm = try randomTensor([channels], seed: 24, scale: 0.5, requiresGrad: false)
        let rv = try Tensor((0..<channels).map { 0.5 + Float($0) * 0.4 }, shape: [channels])
        try expectGradientsMatch(inputs) { t in
            try batchNorm(t[0], weight: c.affine ? t[1] : nil, bias: c.affine ? t[2] : nil,
                          runningMean: rm, runningVar: rv, training: c.training)
        }
    }

    @Test func batchNormGradientsOfWeightAloneAndBiasAlone() throws {
        let x = try randomTensor([4, 3, 2, 2], seed: 31, requiresGrad: false)
        try expectGradientsMatch([x.copy(), randomTensor([3], seed: 32)]) { t in
            try batchNorm(t[0], weight: t[1], bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        try expectGradientsMatch([randomTensor([4, 3, 2, 2], seed: 33), randomTensor([3], seed: 34)]) { t in
            try batchNorm(t[0], weight: nil, bias: t[1], runningMean: nil, runningVar: nil, training: true)
        }
    }

    @Test func batchNormTrainingGradientOfSumIsZero() throws {
        // Σ BN(x) per channel is Σ bias: its x-gradient vanishes (why the gradient checks weight by r)
        let x = try randomTensor([4, 2, 3], seed: 41)
        let y = try batchNorm(x, weight: Tensor([2, 3], shape: [2]), bias: nil, runningMean: nil, runningVar: nil, training: true)
        try y.backward()
        for g in x.grad!.scalars { #expect(abs(g) < 1e-5) }
    }

    // MARK: - group norm

    @Test func groupNormHandComputed() throws {
        // x [1, 4, 2], groups 2: group 0 = channels 0–1 = {1, 1, 3, 3}: mean 2, var 1 → x̂ = −1, −1, 1, 1
        //                        group 1 = channels 2–3 = {0, 4, 4, 0}: mean 2, var 4 → x̂ = −1, 1, 1, −1
        // weight (1, 2, 3, 4), bias (0, 0, 1, 1), eps 0:
        //   c0 → −1, −1;  c1 → 2, 2;  c2 → −3+1, 3+1 = −2, 4;  c3 → 4+1, −4+1 = 5, −3
        let x = try Tensor([1, 1, 3, 3, 0, 4, 4, 0], shape: [1, 4, 2])
        let y = try groupNorm(x, groups: 2, weight: Tensor([1, 2, 3, 4], shape: [4]), bias: Tensor([0, 0, 1, 1], shape: [4]), eps: 0)
        #expect(y.shape == [1, 4, 2])
        expectClose(y.scalars, [-1, -1, 2, 2, -2, 4, 5, -3], atol: 1e-6)
        // groups 1 (layer norm over C·S): all 8 values, mean 2, var (1+1+1+1+4+4+4+4)/8 = 2.5
        let z = try groupNorm(x, groups: 1, weight: nil, bias: nil, eps: 0)
        expectClose(z.scalars, [1, 1, 3, 3, 0, 4, 4, 0].map { ($0 - 2) / Float(2.5).squareRoot() }, atol: 1e-6)
    }

    @Test(arguments: [1, 2, 3, 6])
    func groupNormMatchesReference(_ groups: Int) throws {
        let x = try randomTensor([3, 6, 9, 10], seed: 51, scale: 2, requiresGrad: false)
        for i in 0..<x.count { x.data[i] += 5 }
        let w = try randomTensor([6], seed: 52, requiresGrad: false), b = try randomTensor([6], seed: 53, requiresGrad: false)
        let y = try groupNorm(x, groups: groups, weight: w, bias: b)
        expectClose(y.scalars, referenceGroupNorm(x, groups: groups, weight: w, bias: b, eps: 1e-5), atol: 2e-5, rtol: 1e-4)
    }

    @Test(arguments: [1, 2, 3, 6])
    func groupNormGradients(_ groups: Int) throws {
        let inputs = [try randomTensor([2, 6, 2, 3], seed: 61), try randomTensor([6], seed: 62), try randomTensor([6], seed: 63)]
        try expectGradientsMatch(inputs) { t in try groupNorm(t[0], groups: groups, weight: t[1], bias: t[2]) }
    }

    @Test func groupNormGradientsWithoutAffineAndRank2() throws {
        try expectGradientsMatch([randomTensor([3, 4, 5], seed: 71)]) { t in
            try groupNorm(t[0], groups: 2, weight: nil, bias: nil)
        }
        // [N, C]: each group holds C/groups values
        try expectGradientsMatch([randomTensor([3, 6], seed: 72), randomTensor([6], seed: 73)]) { t in
            try groupNorm(t[0], groups: 2, weight: t[1], bias: nil)
        }
    }

    // MARK: - invalid arguments

    @Test func batchNormRejectsInvalidArguments() throws {
        let x = try Tensor(zeros: [4, 3, 2, 2])
        let v3 = try Tensor(zeros: [3]), v2 = try Tensor(zeros: [2])
        // rank 1
        #expect(throws: MedSynthError.self) {
            try batchNorm(Tensor(zeros: [3]), weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        // parameter shapes
        #expect(throws: MedSynthError.self) { try batchNorm(x, weight: v2, bias: nil, runningMean: nil, runningVar: nil, training: true) }
        #expect(throws: MedSynthError.self) { try batchNorm(x, weight: nil, bias: Tensor(zeros: [3, 1]), runningMean: nil, runningVar: nil, training: true) }
        #expect(throws: MedSynthError.self) { try batchNorm(x, weight: nil, bias: nil, runningMean: v2, runningVar: v3, training: true) }
        #expect(throws: MedSynthError.self) { try batchNorm(x, weight: nil, bias: nil, runningMean: v3, runningVar: v2, training: false) }
        // one running statistic without the other; eval without running statistics
        #expect(throws: MedSynthError.self) { try batchNorm(x, weight: nil, bias: nil, runningMean: v3, runningVar: nil, training: true) }
        #expect(throws: MedSynthError.self) { try batchNorm(x, weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: false) }
        // one value per channel when training
        #expect(throws: MedSynthError.self) {
            try batchNorm(Tensor(zeros: [1, 3]), weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        #expect(throws: MedSynthError.self) {
            try batchNorm(Tensor(zeros: [1, 3, 1, 1]), weight: nil, bias: nil, runningMean: v3.copy(), runningVar: v3.copy(), training: true)
        }
    }

    @Test func groupNormRejectsInvalidArguments() throws {
        let x = try Tensor(zeros: [2, 6, 3, 3])
        #expect(throws: MedSynthError.self) { try groupNorm(Tensor(zeros: [6]), groups: 2, weight: nil, bias: nil) }
        #expect(throws: MedSynthError.self) { try groupNorm(x, groups: 4, weight: nil, bias: nil) }   // 6 % 4 != 0
        #expect(throws: MedSynthError.self) { try groupNorm(x, groups: 0, weight: nil, bias: nil) }
        #expect(throws: MedSynthError.self) { try groupNorm(x, groups: 2, weight: Tensor(zeros: [2]), bias: nil) } // per group, not channel
        #expect(throws: MedSynthError.self) { try groupNorm(x, groups: 2, weight: nil, bias: Tensor(zeros: [6, 1])) }
    }
}

@Suite struct GroupNormSiLUTests {
    @Test func equalsGroupNormThenSiLU() throws {
        let x = try randomTensor([2, 6, 3, 5], seed: 31, scale: 2, requiresGrad: false)
        let w = try randomTensor([6], seed: 32, requiresGrad: false), b = try randomTensor([6], seed: 33, requiresGrad: false)
        let fused = try groupNormSiLU(x, groups: 3, weight: w, bias: b)
        let separate = try silu(try groupNorm(x, groups: 3, weight: w, bias: b))
        expectClose(fused.scalars, separate.scalars, atol: 1e-6, rtol: 1e-6)
    }

    @Test func handComputedValue() throws {
        // one group of [−1, 1]: mean 0, variance 1 → x̂ = ±1/√(1 + 1e-5); SiLU(±0.999995) = ±0.999995·σ(±0.999995)
        let y = try groupNormSiLU(Tensor([-1, 1], shape: [1, 1, 2]), groups: 1, weight: nil, bias: nil)
        let v: Float = 1 / (1 + 1e-5 as Float).squareRoot()
        expectClose(y.scalars, [-v / (1 + Glibc.exp(v)), v / (1 + Glibc.exp(-v))], atol: 1e-6)
    }

    @Test(arguments: [1, 2, 4])
    func gradientsMatchFiniteDifferences(groups: Int) throws {
        try expectGradientsMatch([randomTensor([2, 4, 3, 3], seed: 34, scale: 1.5), randomTensor([4], seed: 35),
                                  randomTensor([4], seed: 36)]) { t in
            try groupNormSiLU(t[0], groups: groups, weight: t[1], bias: t[2])
        }
    }

    @Test func rejectsBadArguments() {
        #expect(throws: MedSynthError.self) { try groupNormSiLU(Tensor(zeros: [2, 6, 2]), groups: 4, weight: nil, bias: nil) }
        #expect(throws: MedSynthError.self) { try groupNormSiLU(Tensor(zeros: [6]), groups: 1, weight: nil, bias: nil) }
        #expect(throws: MedSynthError.self) { try groupNormSiLU(Tensor(zeros: [2, 6, 2]), groups: 2, weight: Tensor(zeros: [5]), bias: nil) }
    }
}
