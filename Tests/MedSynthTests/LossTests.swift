import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct LossTests {
    // MARK: - cross entropy, hand-computed
    //
    // Logits (C = 3) and log-probabilities log p = z − log Σ exp(z):
    //   row 0 = [0, 0, 0]          → log p = [−ln 3, −ln 3, −ln 3] = [−1.0986123, −1.0986123, −1.0986123]
    //   row 1 = [0, ln 2, ln 5]    → p = [1, 2, 5]/8, log p = [−ln 8, −ln 4, ln(5/8)]
    //                                = [−2.0794415, −1.3862944, −0.47000363]
    //   row 2 = [5, −5, 0], target ignoreIndex (−100): contributes nothing anywhere.
    // Targets [0, 2, −100], so nll = [1.0986123, 0.47000363].
    static func logits() throws -> Tensor {
        try Tensor([0, 0, 0, 0, Float(Glibc.log(2.0)), Float(Glibc.log(5.0)), 5, -5, 0], shape: [3, 3], requiresGrad: true)
    }
    static let targets = [0, 2, -100]
    static var classWeights: Tensor { get throws { try Tensor([1, 2, 3], shape: [3]) } }

    @Test func crossEntropyPlain() throws {
        // mean over the 2 non-ignored rows: (1.0986123 + 0.47000363) / 2 = 0.78430796
        // sum = 1.5686159; none = [1.0986123, 0.47000363, 0]
        let z = try Self.logits()
        expectClose(try crossEntropy(logits: z, targets: Self.targets).scalars, [0.78430796], atol: 1e-6, rtol: 1e-6)
        expectClose(try crossEntropy(logits: z, targets: Self.targets, reduction: .sum).scalars, [1.5686159], atol: 1e-6, rtol: 1e-6)
        let none = try crossEntropy(logits: z, targets: Self.targets, reduction: .none)
        #expect(none.shape == [3])
        expectClose(none.scalars, [1.0986123, 0.47000363, 0], atol: 1e-6, rtol: 1e-6)
        #expect(try crossEntropy(logits: z, targets: Self.targets).shape == [])
    }

    @Test func crossEntropyWithClassWeights() throws {
        // w = [1, 2, 3]: nll = [w_0 · 1.0986123, w_2 · 0.47000363] = [1.0986123, 1.4100109];
        // sum = 2.5086232; mean divides by the target classes' weights w_0 + w_2 = 4 (not by N = 2,
        // nor by 3 rows): 2.5086232 / 4 = 0.62715580.
        let z = try Self.logits()
        let w = try Self.classWeights
        expectClose(try crossEntropy(logits: z, targets: Self.targets, weight: w).scalars, [0.62715580], atol: 1e-6, rtol: 1e-6)
        expectClose(try crossEntropy(logits: z, targets: Self.targets, weight: w, reduction: .sum).scalars, [2.5086232], atol: 1e-6, rtol: 1e-6)
        expectClose(try crossEntropy(logits: z, targets: Self.targets, weight: w, reduction: .none).scalars,
                    [1.0986123, 1.4100109, 0], atol: 1e-6, rtol: 1e-6)
    }

    @Test func crossEntropyWithLabelSmoothing() throws {
        // ε = 0.3, C = 3: ℓ = 0.7 · nll + 0.1 · smooth, smooth = −Σ_c log p_c:
        //   row 0: smooth = 3 ln 3 = 3.2958369 → ℓ0 = 0.7 · 1.0986123 + 0.32958369 = 1.0986123
        //   row 1: smooth = 2.0794415 + 1.3862944 + 0.47000363 = 3.9357395
        //          → ℓ1 = 0.7 · 0.47000363 + 0.39357395 = 0.72257649
        // mean = (1.0986123 + 0.72257649) / 2 = 0.91059440
        let z = try Self.logits()
        expectClose(try crossEntropy(logits: z, targets: Self.targets, labelSmoothing: 0.3).scalars, [0.91059440], atol: 1e-6, rtol: 1e-6)
        expectClose(try crossEntropy(logits: z, targets: Self.targets, labelSmoothing: 0.3, reduction: .none).scalars,
                    [1.0986123, 0.72257649, 0], atol: 1e-6, rtol: 1e-6)
    }

    @Test func crossEntropyWithWeightsAndSmoothing() throws {
        // w = [1, 2, 3], ε = 0.3 (torch: the smoothing term weights each class by w_c):
        //   smooth_w row 0 = −Σ w_c log p_c = 6 · 1.0986123 = 6.5916738
        //   smooth_w row 1 = 1 · 2.0794415 + 2 · 1.3862944 + 3 · 0.47000363 = 6.2620411
        //   none: ℓ0 = 0.7 · 1.0986123 + 0.1 · 6.5916738 = 1.4281960
        //         ℓ1 = 0.7 · 1.4100109 + 0.1 · 6.2620411 = 1.6132117
        //   sum  = 3.0414077
        //   mean = 0.7 · (2.5086232 / 4) + (12.853715 / 4) · 0.1 = 0.43900906 + 0.32134287 = 0.76035193
        //          (both terms divided by Σ w_target = 4)
        let z = try Self.logits(), w = try Self.classWeights
        expectClose(try crossEntropy(logits: z, targets: Self.targets, weight: w, labelSmoothing: 0.3).scalars,
                    [0.76035193], atol: 1e-6, rtol: 1e-6)
        expectClose(try crossEntropy(logits: z, targets: Self.targets, weight: w, labelSmoothing: 0.3, reduction: .sum).scalars,
                    [3.0414077], atol: 1e-6, rtol: 1e-6)
        expectClose(try crossEntropy(logits: z, targets: Self.targets, weight: w, labelSmoothing: 0.3, reduction: .none).scalars,
                    [1.4281960, 1.6132117, 0], atol: 1e-6, rtol: 1e-6)
    }

    @Test func crossEntropyIgnoreIndex() throws {
        // ignoreIndex may be a real class: with ignoreIndex = 2, row 1 (target 2) is ignored and
        // row 2 (now target 1: log p = −5 − log(e⁵ + e⁻⁵ + 1) = −10.006760) counts.
        // mean = (1.0986123 + 10.006760) / 2 = 5.5526864
        let z = try Self.logits()
        expectClose(try crossEntropy(logits: z, targets: [0, 2, 1], ignoreIndex: 2).scalars, [5.5526864], atol: 1e-5, rtol: 1e-6)
        // Every row ignored: the mean is 0/0 = NaN (torch), the sum 0, and no gradient flows.
        let all = try crossEntropy(logits: z, targets: [-100, -100, -100])
        #expect(all.item.isNaN)
        #expect(try crossEntropy(logits: z, targets: [-100, -100, -100], reduction: .sum).item == 0)
        #expect(try crossEntropy(logits: z, targets: [-100, -100, -100], labelSmoothing: 0.1).item.isNaN)
        let s = try crossEntropy(logits: z, targets: [-100, -100, -100], reduction: .sum)
        try s.backward()
        #expect(z.grad?.scalars.allSatisfy { $0 == 0 } ?? true)
        // An empty batch: mean NaN, sum 0, none [].
        let empty = try Tensor(zeros: [0, 4])
        #expect(try crossEntropy(logits: empty, targets: []).item.isNaN)
        #expect(try crossEntropy(logits: empty, targets: [], reduction: .sum).item == 0)
        #expect(try crossEntropy(logits: empty, targets: [], reduction: .none).shape == [0])
    }

    @Test func crossEntropyHandGradient() throws {
        // mean, unweighted, no smoothing: ∂L/∂z_nj = (p_nj − [j = t_n]) / 2 for the 2 counted rows.
        //   row 0: ([1/3, 1/3, 1/3] − [1, 0, 0]) / 2 = [−1/3, 1/6, 1/6]
        //   row 1: ([1/8, 1/4, 5/8] − [0, 0, 1]) / 2 = [1/16, 1/8, −3/16]
        //   row 2 (ignored): 0
        let z = try Self.logits()
        try crossEntropy(logits: z, targets: Self.targets).backward()
        expectClose(z.grad?.scalars ?? [], [-1.0 / 3, 1.0 / 6, 1.0 / 6, 1.0 / 16, 1.0 / 8, -3.0 / 16, 0, 0, 0], atol: 1e-7, rtol: 1e-5)
    }

    @Test func crossEntropyLargeLogitsStayFinite() throws {
        // [1000, 0, −1000] with target 2: log p_2 = −2000 exactly; target 0: 0.
        let z = try Tensor([1000, 0, -1000, 1000, 0, -1000, 1000, 1000, 1000], shape: [3, 3], requiresGrad: true)
        let none = try crossEntropy(logits: z, targets: [2, 0, 1], labelSmoothing: 0.1, reduction: .none)
        // ℓ0 = 0.9 · 2000 + (0.1/3) · (2000 + 1000 + 0) = 1900; ℓ1 = 0 + (0.1/3) · 3000 = 100;
        // ℓ2 = ln 3 (uniform row).
        expectClose(none.scalars, [1900, 100, 1.0986123], atol: 1e-4, rtol: 1e-6)
        let loss = try crossEntropy(logits: z, targets: [2, 0, 1], weight: Self.classWeights, labelSmoothing: 0.1)
        #expect(loss.item.isFinite)
        try loss.backward()
        #expect(z.grad?.scalars.allSatisfy { $0.isFinite } ?? false)
    }

    static let crossEntropyVariants: [(weighted: Bool, smoothing: Float, reduction: LossReduction)] = [
        (false, 0, .mean), (false, 0, .sum), (false, 0, .none),
        (true, 0, .mean), (true, 0, .none),
        (false, 0.2, .mean), (false, 0.2, .sum), (false, 0.2, .none),
        (true, 0.2, .mean), (true, 0.2, .sum), (true, 0.2, .none), (true, 1, .mean),
    ]

    @Test(arguments: 0..<crossEntropyVariants.count)
    func crossEntropyGradients(_ index: Int) throws {
        let v = Self.crossEntropyVariants[index]
        let weight: Tensor? = try v.weighted ? Tensor([0.5, 2, 1, 3], shape: [4]) : nil
        let targets = [0, 3, -100, 2, 1]
        try expectGradientsMatch([randomTensor([5, 4], seed: 31)]) { t in
            try crossEntropy(logits: t[0], targets: targets, weight: weight, labelSmoothing: v.smoothing,
                             reduction: v.reduction)
        }
    }

    @Test func backwardAccumulates() throws {
        let w = try Tensor([0.5, 2, 1, 3], shape: [4])
        for reduction in [LossReduction.mean, .none] {
            try expectGradientsAccumulate([randomTensor([3, 4], seed: 32)]) { t in
                try crossEntropy(logits: t[0], targets: [1, -100, 3], weight: w, labelSmoothing: 0.1, reduction: reduction)
            }
            try expectGradientsAccumulate([randomTensor([3, 4], seed: 33), randomTensor([3, 4], seed: 34)]) { t in
                try mseLoss(t[0], t[1], reduction: reduction)
            }
            try expectGradientsAccumulate([randomTensor([3, 4], seed: 35), randomTensor([3, 4], seed: 36)]) { t in
                try binaryCrossEntropyWithLogits(t[0], t[1], reduction: reduction)
            }
        }
        try expectGradientsAccumulate([randomTensor([3, 4], seed: 37), randomTensor([3, 4], seed: 38),
                                       Tensor([1, 2, 3], shape: [3], requiresGrad: true)]) { t in
            try mseLoss(t[0], t[1], sampleWeights: t[2])
        }
    }

    @Test func crossEntropyRejectsBadArguments() throws {
        let z = try Tensor(zeros: [2, 3])
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: Tensor(zeros: [3]), targets: [0]) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: Tensor(zeros: [2, 3, 4]), targets: [0, 1]) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0]) }           // count
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, 3]) }        // = C
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [-1, 0]) }       // negative
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, -100], ignoreIndex: -1) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, 1], weight: Tensor(zeros: [2])) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, 1], weight: Tensor(zeros: [3, 1])) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, 1], labelSmoothing: 1.5) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, 1], labelSmoothing: -0.1) }
        #expect(throws: MedSynthError.self) { try crossEntropy(logits: z, targets: [0, 1], labelSmoothing: .nan) }
    }

    // MARK: - mean squared error

    @Test func mseHandComputed() throws {
        // input − target = [1, 2, 3, 4] − [0, 2, 5, 1] = [1, 0, −2, 3]; squares [1, 0, 4, 9];
        // sum 14, mean 14/4 = 3.5.
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true), t = try Tensor([0, 2, 5, 1], shape: [2, 2])
        #expect(try mseLoss(x, t).scalars == [3.5])
        #expect(try mseLoss(x, t, reduction: .sum).scalars == [14])
        let none = try mseLoss(x, t, reduction: .none)
        #expect(none.shape == [2, 2] && none.scalars == [1, 0, 4, 9])
        // ∂mean/∂x = 2 (x − t) / 4 = [0.5, 0, −1, 1.5]
        try mseLoss(x, t).backward()
        #expect(x.grad?.scalars == [0.5, 0, -1, 1.5])
        #expect(try mseLoss(Tensor(zeros: [0, 3]), Tensor(zeros: [0, 3])).item.isNaN)
    }

    @Test func mseLargeTensorMatchesDoubleSum() throws {
        // 100 003 elements: several chunks of the parallel sum, and a ragged last chunk.
        let x = try randomTensor([100_003], seed: 41, requiresGrad: false), t = try randomTensor([100_003], seed: 42, requiresGrad: false)
        var s = 0.0
        for i in 0..<x.count { let d = Double(x.data[i]) - Double(t.data[i]); s += d * d }
        expectClose(try mseLoss(x, t).scalars, [Float(s / Double(x.count))], atol: 0, rtol: 1e-5)
        expectClose(try mseLoss(x, t, reduction: .sum).scalars, [Float(s)], atol: 0, rtol: 1e-5)
        #expect(try mseLoss(x, t).item == mseLoss(x, t).item)   // deterministic
    }

    @Test(arguments: [LossReduction.mean, .sum, .none])
    func mseGradients(_ reduction: LossReduction) throws {
        try expectGradientsMatch([randomTensor([3, 2, 4], seed: 43), randomTensor([3, 2, 4], seed: 44)]) { t in
            try mseLoss(t[0], t[1], reduction: reduction)
        }
    }

    @Test func weightedMseHandComputed() throws {
        // samples [[1, 2], [3, 4]] against zeros: per-sample means (1 + 4)/2 = 2.5 and (9 + 16)/2 = 12.5;
        // weights [2, 0.5]: (2 · 2.5 + 0.5 · 12.5) / 2 = (5 + 6.25) / 2 = 5.625.
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2]), t = try Tensor(zeros: [2, 2])
        let w = try Tensor([2, 0.5], shape: [2], requiresGrad: true)
        let loss = try mseLoss(x, t, sampleWeights: w)
        #expect(loss.shape == [] && loss.item == 5.625)
        // ∂L/∂w_n = mse_n / N = [1.25, 6.25]
        try loss.backward()
        #expect(w.grad?.scalars == [1.25, 6.25])
        // unit weights give the plain mean
        let a = try randomTensor([4, 3, 5], seed: 45, requiresGrad: false), b = try randomTensor([4, 3, 5], seed: 46, requiresGrad: false)
        expectClose(try mseLoss(a, b, sampleWeights: Tensor(repeating: 1, shape: [4])).scalars, try mseLoss(a, b).scalars,
                    atol: 1e-6, rtol: 1e-5)
    }

    @Test func weightedMseGradients() throws {
        let inputs = [try randomTensor([3, 2, 2, 2], seed: 47), try randomTensor([3, 2, 2, 2], seed: 48),
                      try Tensor([0.5, 1.5, 5], shape: [3], requiresGrad: true)]
        try expectGradientsMatch(inputs) { t in try mseLoss(t[0], t[1], sampleWeights: t[2]) }
        // constant weights (the usual case): gradients to input only
        let w = try Tensor([2, 0.25, 1], shape: [3])
        try expectGradientsMatch([randomTensor([3, 5], seed: 49)]) { t in
            try mseLoss(t[0], Tensor(zeros: [3, 5]), sampleWeights: w)
        }
    }

    @Test func mseRejectsBadArguments() {
        #expect(throws: MedSynthError.self) { try mseLoss(Tensor(zeros: [2, 3]), Tensor(zeros: [3, 2])) }
        #expect(throws: MedSynthError.self) { try mseLoss(Tensor(zeros: [2, 3]), Tensor(zeros: [6])) }
        #expect(throws: MedSynthError.self) { try mseLoss(Tensor(zeros: [2, 3]), Tensor(zeros: [2, 3]), sampleWeights: Tensor(zeros: [3])) }
        #expect(throws: MedSynthError.self) { try mseLoss(Tensor(zeros: [2, 3]), Tensor(zeros: [2, 3]), sampleWeights: Tensor(zeros: [2, 1])) }
        #expect(throws: MedSynthError.self) { try mseLoss(Tensor(zeros: [2, 3]), Tensor(zeros: [2, 2]), sampleWeights: Tensor(zeros: [2])) }
        #expect(throws: MedSynthError.self) { try mseLoss(Tensor([1], shape: []), Tensor([1], shape: []), sampleWeights: Tensor(zeros: [1])) }
    }

    // MARK: - binary cross entropy with logits

    @Test func bceHandComputed() throws {
        // ℓ = (1 − t) x − log σ(x):
        //   x = 0,  t = 1:   0 − log(1/2) = ln 2 = 0.69314718
        //   x = 2,  t = 0:   2 + log(1 + e⁻²) = 2 + 0.12692801 = 2.12692801
        //   x = −1, t = 0.5: −0.5 + log(1 + e) = −0.5 + 1.31326169 = 0.81326169
        // mean = 3.63333688 / 3 = 1.21111229. pos_weight [2, 1, 1] doubles the first: 2 ln 2 = 1.38629436.
        let x = try Tensor([0, 2, -1], shape: [3]), t = try Tensor([1, 0, 0.5], shape: [3])
        expectClose(try binaryCrossEntropyWithLogits(x, t, reduction: .none).scalars, [0.69314718, 2.12692801, 0.81326169], atol: 1e-6, rtol: 1e-6)
        expectClose(try binaryCrossEntropyWithLogits(x, t).scalars, [1.21111229], atol: 1e-6, rtol: 1e-6)
        expectClose(try binaryCrossEntropyWithLogits(x, t, posWeight: Tensor([2, 1, 1], shape: [3]), reduction: .none).scalars,
                    [1.38629436, 2.12692801, 0.81326169], atol: 1e-6, rtol: 1e-6)
        expectClose(try binaryCrossEntropyWithLogits(x, t, weight: Tensor([1, 0, 2], shape: [3]), reduction: .sum).scalars,
                    [0.69314718 + 2 * 0.81326169], atol: 1e-6, rtol: 1e-6)
        // |x| = 1000 stays finite: ℓ(1000, 0) = 1000, ℓ(−1000, 1) = 1000, ℓ(1000, 1) = 0.
        expectClose(try binaryCrossEntropyWithLogits(Tensor([1000, -1000, 1000], shape: [3]), Tensor([0, 1, 1], shape: [3]),
                                                     reduction: .none).scalars, [1000, 1000, 0], atol: 1e-4, rtol: 1e-6)
    }

    static let bceVariants: [(weight: Int, posWeight: Bool, reduction: LossReduction)] = [
        (0, false, .mean), (0, false, .none), (1, false, .sum), (2, true, .mean), (1, true, .none), (0, true, .sum),
    ]

    @Test(arguments: 0..<bceVariants.count)
    func bceGradients(_ index: Int) throws {
        let v = Self.bceVariants[index]
        let weight: Tensor? = try v.weight == 0 ? nil : v.weight == 1 ? Tensor([0.5, 2, 1], shape: [3])
            : randomTensor([4, 3], seed: 51, requiresGrad: false)
        let posWeight: Tensor? = try v.posWeight ? Tensor([3, 0.5, 1], shape: [3]) : nil
        let target = try Tensor(uninitialized: [4, 3])
        RandomGenerator(seed: 52).fillUniform(target.data, target.count)
        target.requiresGrad = true
        try expectGradientsMatch([randomTensor([4, 3], seed: 53, scale: 2), target]) { t in
            try binaryCrossEntropyWithLogits(t[0], t[1], weight: weight, posWeight: posWeight, reduction: v.reduction)
        }
    }

    @Test func bceRejectsBadArguments() throws {
        let x = try Tensor(zeros: [2, 3])
        #expect(throws: MedSynthError.self) { try binaryCrossEntropyWithLogits(x, Tensor(zeros: [3, 2])) }
        #expect(throws: MedSynthError.self) { try binaryCrossEntropyWithLogits(x, x, weight: Tensor(zeros: [2])) }
        #expect(throws: MedSynthError.self) { try binaryCrossEntropyWithLogits(x, x, posWeight: Tensor(zeros: [2, 3])) }
    }
}
