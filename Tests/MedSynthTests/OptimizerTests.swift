// Optimisers, schedules, clipping and EMA (Optimizers/): updates against torch's formulas worked
// out by hand, state round trips that continue bit for bit.

import Testing
@testable import MedSynth
@testable import MedSynthCore

/// A parameter (requiresGrad) holding `values`.
private func parameter(_ values: [Float]) throws -> Tensor { try Tensor(values, shape: [values.count], requiresGrad: true) }

/// Sets `p.grad` to `values`.
private func setGrad(_ p: Tensor, _ values: [Float]) throws { p.grad = try Tensor(values, shape: p.shape) }

@Suite struct OptimizerTests {
    // MARK: - AdamW

    @Test func adamWOneAndTwoStepsByHand() throws {
        // torch.optim.AdamW, lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, θ₀ = [1, −2]
        let p = try parameter([1, -2])
        let opt = AdamW([p], learningRate: 0.1, betas: (0.9, 0.999), eps: 1e-8, weightDecay: 0.01)
        // step 1, g = [0.5, −1]:
        //   decay θ·(1 − 0.1·0.01) = θ·0.999 = [0.999, −1.998]
        //   m = 0.1·g = [0.05, −0.1];  v = 0.001·g² = [0.00025, 0.001]
        //   m̂ = m / (1 − 0.9) = g;  √v̂ = √(v / (1 − 0.999)) = |g|
        //   θ −= 0.1 · m̂ / (√v̂ + 1e-8) = 0.1·sign(g)  →  θ₁ = [0.899, −1.898]
        try setGrad(p, [0.5, -1])
        try opt.step()
        expectClose(p.scalars, [0.899, -1.898], atol: 1e-6, rtol: 0)
        #expect(opt.stepCount == 1)
        // step 2, g = [−0.5, 2]:
        //   decay θ₁·0.999 = [0.898101, −1.896102]
        //   m = 0.9·[0.05, −0.1] + 0.1·[−0.5, 2] = [−0.005, 0.11]
        //   v = 0.999·[0.00025, 0.001] + 0.001·[0.25, 4] = [0.00049975, 0.004999]
        //   1 − β₁² = 0.19, 1 − β₂² = 0.001999
        //   m̂ = [−0.0263157895, 0.578947368];  v̂ = [0.00049975, 0.004999] / 0.001999 = [0.25, 2.5007504]
        //   √v̂ = [0.5, 1.5813761]
        //   θ₀ = 0.898101 − 0.1·(−0.0263157895)/0.5 = 0.898101 + 0.00526315789 = 0.90336416
        //   θ₁ = −1.896102 − 0.1·0.578947368/1.5813761 = −1.896102 − 0.0366104 = −1.9327124
        try setGrad(p, [-0.5, 2])
        try opt.step()
        expectClose(p.scalars, [0.90336416, -1.9327124], atol: 2e-6, rtol: 0)
        #expect(opt.stepCount == 2)
    }

    @Test func adamWDefaultsAreTorchs() throws {
        let opt = AdamW([try parameter([0])])
        #expect(opt.learningRate == 1e-3 && opt.beta1 == 0.9 && opt.beta2 == 0.999 && opt.eps == 1e-8 && opt.weightDecay == 1e-2)
    }

    @Test func adamWWeightDecayIsDecoupled() throws {
        // With a zero gradient, m = v = 0 and the Adam term is 0 / (0 + eps) = 0: only the decay acts,
        // θ ← θ·(1 − lr·λ) = [4, −1]·(1 − 0.1·0.5) = [3.8, −0.95].
        // Coupled L2 (Adam with g + λθ) would instead move each weight by lr·sign: [3.9, −0.9].
        let p = try parameter([4, -1])
        let opt = AdamW([p], learningRate: 0.1, weightDecay: 0.5)
        try setGrad(p, [0, 0])
        try opt.step()
        expectClose(p.scalars, [3.8, -0.95], atol: 1e-6, rtol: 0)
    }

    @Test func parametersWithoutGradientsAreUntouched() throws {
        // torch skips parameters whose .grad is None: no decay, no state
        let a = try parameter([1, 2]), b = try parameter([3, 4])
        let adam = AdamW([a, b], learningRate: 0.1, weightDecay: 0.5)
        try setGrad(a, [1, 1])
        try adam.step()
        #expect(b.scalars == [3, 4])
        #expect(a.scalars != [1, 2])
        #expect(adam.stateEntries().map { $0.name } == ["optimizer.adamw.m.0", "optimizer.adamw.v.0", "optimizer.adamw.step"])

        let c = try parameter([1, 2]), d = try parameter([3, 4])
        let sgd = SGD([c, d], learningRate: 0.1, momentum: 0.9, weightDecay: 0.5)
        try setGrad(d, [1, 1])
        try sgd.step()
        #expect(c.scalars == [1, 2])
        #expect(d.scalars != [3, 4])
        #expect(sgd.stateEntries().map { $0.name } == ["optimizer.sgd.momentum.1", "optimizer.sgd.step"])
    }

    // MARK: - SGD

    @Test func sgdPlainAndWeightDecayByHand() throws {
        // θ ← θ − lr·g = [1, −2] − 0.1·[0.5, −1] = [0.95, −1.9]
        let p = try parameter([1, -2])
        try setGrad(p, [0.5, -1])
        try SGD([p], learningRate: 0.1).step()
        expectClose(p.scalars, [0.95, -1.9], atol: 1e-7, rtol: 0)
        // weight decay λ = 0.1 (coupled, as torch's SGD): g + λθ = [0.5 + 0.1, −1 − 0.2] = [0.6, −1.2];
        // θ = [1 − 0.06, −2 + 0.12] = [0.94, −1.88]
        let q = try parameter([1, -2])
        try setGrad(q, [0.5, -1])
        try SGD([q], learningRate: 0.1, weightDecay: 0.1).step()
        expectClose(q.scalars, [0.94, -1.88], atol: 1e-7, rtol: 0)
    }

    @Test func sgdMomentumByHand() throws {
        // μ = 0.9. Step 1: b = g = [0.5, −1] (no dampening on the first step); θ = [0.95, −1.9].
        // Step 2, g = [1, 1]: b = 0.9·[0.5, −1] + [1, 1] = [1.45, 0.1]; θ = [0.95 − 0.145, −1.9 − 0.01] = [0.805, −1.91]
        let p = try parameter([1, -2])
        let opt = SGD([p], learningRate: 0.1, momentum: 0.9)
        try setGrad(p, [0.5, -1]); try opt.step()
        expectClose(p.scalars, [0.95, -1.9], atol: 1e-6, rtol: 0)
        try setGrad(p, [1, 1]); try opt.step()
        expectClose(p.scalars, [0.805, -1.91], atol: 1e-6, rtol: 0)

        // dampening τ = 0.5: step 2 b = 0.9·[0.5, −1] + 0.5·[1, 1] = [0.95, −0.4]; θ = [0.95 − 0.095, −1.9 + 0.04] = [0.855, −1.86]
        let q = try parameter([1, -2])
        let damped = SGD([q], learningRate: 0.1, momentum: 0.9, dampening: 0.5)
        try setGrad(q, [0.5, -1]); try damped.step()
        expectClose(q.scalars, [0.95, -1.9], atol: 1e-6, rtol: 0)
        try setGrad(q, [1, 1]); try damped.step()
        expectClose(q.scalars, [0.855, -1.86], atol: 1e-6, rtol: 0)
    }

    @Test func sgdNesterovByHand() throws {
        // Step 1: b = g = [0.5, −1]; update g + μb = [0.95, −1.9]; θ = [1 − 0.095, −2 + 0.19] = [0.905, −1.81].
        // Step 2, g = [1, 1]: b = [1.45, 0.1]; update = [1 + 1.305, 1 + 0.09] = [2.305, 1.09];
        // θ = [0.905 − 0.2305, −1.81 − 0.109] = [0.6745, −1.919]
        let p = try parameter([1, -2])
        let opt = SGD([p], learningRate: 0.1, momentum: 0.9, nesterov: true)
        try setGrad(p, [0.5, -1]); try opt.step()
        expectClose(p.scalars, [0.905, -1.81], atol: 1e-6, rtol: 0)
        try setGrad(p, [1, 1]); try opt.step()
        expectClose(p.scalars, [0.6745, -1.919], atol: 1e-6, rtol: 0)
    }

    @Test func sgdMomentumWithWeightDecayByHand() throws {
        // λ = 0.1, μ = 0.5, lr 0.1, θ₀ = [1, −2], g = [0, 0] twice: the decay term drives the momentum.
        // Step 1: g' = λθ = [0.1, −0.2]; b = g'; θ₁ = θ₀ − 0.1·b = [0.99, −1.98].
        // Step 2: g' = λθ₁ = [0.099, −0.198]; b = 0.5·[0.1, −0.2] + g' = [0.149, −0.298];
        //         θ₂ = [0.99 − 0.0149, −1.98 + 0.0298] = [0.9751, −1.9502]
        let p = try parameter([1, -2])
        let opt = SGD([p], learningRate: 0.1, momentum: 0.5, weightDecay: 0.1)
        try setGrad(p, [0, 0]); try opt.step()
        expectClose(p.scalars, [0.99, -1.98], atol: 1e-6, rtol: 0)
        try setGrad(p, [0, 0]); try opt.step()
        expectClose(p.scalars, [0.9751, -1.9502], atol: 1e-6, rtol: 0)
    }

    // MARK: - state

    /// Runs `make` twice on equal parameters: A takes 3 steps; B takes 2, hands its state to a
    /// fresh optimiser C, which takes the 3rd. C's parameters must equal A's bit for bit.
    private func expectResumeContinuesIdentically(_ make: ([Tensor]) -> Optimizer) throws {
        let grads: [[[Float]]] = [[[0.5, -1, 0.25], [2]], [[-0.3, 0.7, 1.5], [-1]], [[0.1, 0.2, -0.9], [0.5]]]
        func params() throws -> [Tensor] { [try parameter([1, -2, 0.5]), try parameter([3])] }
        let pa = try params(), pb = try params()
        let a = make(pa), b = make(pb)
        for step in 0..<3 {
            for (p, g) in zip(pa, grads[step]) { try setGrad(p, g) }
            try a.step()
            if step < 2 {
                for (p, g) in zip(pb, grads[step]) { try setGrad(p, g) }
                try b.step()
            }
        }
        // round trip through a safetensors file's bytes, as checkpoints do
        let saved = try SafetensorsFile.parse(try SafetensorsFile(entries: b.stateEntries()).serialized())
        let c = make(pb)
        try c.loadState { saved[$0] }
        #expect(c.stepCount == 2)
        for (p, g) in zip(pb, grads[2]) { try setGrad(p, g) }
        try c.step()
        #expect(c.stepCount == 3 && a.stepCount == 3)
        for (x, y) in zip(pa, pb) {
            #expect(x.scalars.map { $0.bitPattern } == y.scalars.map { $0.bitPattern })
        }
        // without the state, the third step differs (the test can fail)
        let pd = try params()
        let d0 = make(pd)
        for step in 0..<2 { for (p, g) in zip(pd, grads[step]) { try setGrad(p, g) }; try d0.step() }
        let d = make(pd)
        for (p, g) in zip(pd, grads[2]) { try setGrad(p, g) }
        try d.step()
        #expect(pd[0].scalars != pa[0].scalars)
    }

    @Test func adamWStateRoundTripContinuesIdentically() throws {
        try expectResumeContinuesIdentically { AdamW($0, learningRate: 0.05, weightDecay: 0.1) }
    }

    @Test func sgdStateRoundTripContinuesIdentically() throws {
        try expectResumeContinuesIdentically { SGD($0, learningRate: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true) }
    }

    @Test func loadStateChecksShapesAndReadsLargeStepCounts() throws {
        let p = try parameter([1, 2])
        let opt = AdamW([p])
        let wrong = try SafetensorsEntry(name: "optimizer.adamw.m.0", tensor: try Tensor([1, 2, 3], shape: [3]))
        expectInvalidArgument("'optimizer.adamw.m.0' has shape [3], the model expects [2]") {
            try opt.loadState { $0 == wrong.name ? wrong : nil }
        }
        // a step count beyond float32's 2^24 integers is restored exactly (bias correction uses it)
        let step = SafetensorsEntry(name: "optimizer.adamw.step", int64: 16_777_217)
        try opt.loadState { $0 == step.name ? step : nil }
        #expect(opt.stepCount == 16_777_217)
        let sgd = SGD([p], learningRate: 0.1)
        let sgdStep = SafetensorsEntry(name: "optimizer.sgd.step", int64: (1 << 40) + 1)
        try sgd.loadState { $0 == sgdStep.name ? sgdStep : nil }
        #expect(sgd.stepCount == (1 << 40) + 1)
        // a counter that is not a whole non-negative number is an error, not a trap
        for bad in [SafetensorsEntry(name: "optimizer.sgd.step", dtype: .F32, shape: [], bytes: withUnsafeBytes(of: Float.nan.bitPattern) { Array($0) }),
                    SafetensorsEntry(name: "optimizer.sgd.step", int64: -1),
                    SafetensorsEntry(name: "optimizer.sgd.step", tensor: try Tensor([1, 2], shape: [2]))] {
            expectInvalidArgument("'optimizer.sgd.step' must hold one non-negative I64 integer") { try sgd.loadState { $0 == bad.name ? bad : nil } }
        }
    }

    @Test func zeroGradClearsGradients() throws {
        let p = try parameter([1])
        try setGrad(p, [2])
        let opt = SGD([p], learningRate: 1)
        opt.zeroGrad()
        #expect(p.grad == nil)
        try opt.step()   // no gradient: nothing moves
        #expect(p.scalars == [1])
    }

    // MARK: - schedules

    @Test func constantAndStepSchedules() {
        for step in [0, 1, 1000] { #expect(LRSchedule.constant.learningRate(base: 0.3, step: step) == 0.3) }
        // StepLR(step_size 3, γ 0.5), base 0.1: 0.1 for steps 0–2, 0.05 for 3–5, 0.025 from 6
        let s = LRSchedule.step(stepSize: 3, gamma: 0.5)
        let lrs = (0..<8).map { s.learningRate(base: 0.1, step: $0) }
        expectClose(lrs, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], atol: 1e-9, rtol: 0)
    }

    @Test func cosineWithWarmup() {
        // warmup 4, total 12, base 1, floor 0:
        //   warmup (step + 1)/4: step 0 → 0.25, step 3 → 1 (the last warmup step runs at the full rate)
        //   then progress p = (step − 4)/(12 − 4): lr = ½(1 + cos πp)
        //   step 4 → p 0 → 1; step 8 (midpoint) → p ½ → ½; step 10 → p ¾ → ½(1 − √½) = 0.1464466;
        //   step 12 (end) → 0, and it stays at the floor after the end
        let c = LRSchedule.cosine(warmupSteps: 4, totalSteps: 12, minLR: 0)
        let got = [0, 1, 3, 4, 8, 10, 12, 20].map { c.learningRate(base: 1, step: $0) }
        expectClose(got, [0.25, 0.5, 1, 1, 0.5, 0.14644661, 0, 0], atol: 1e-6, rtol: 0)
        // with a floor 0.1 and base 2: midpoint 0.1 + 1.9·½ = 1.05, end 0.1
        let f = LRSchedule.cosine(warmupSteps: 4, totalSteps: 12, minLR: 0.1)
        expectClose([0, 8, 12, 100].map { f.learningRate(base: 2, step: $0) }, [0.5, 1.05, 0.1, 0.1], atol: 1e-6, rtol: 0)
        // no warmup: starts at the base rate
        #expect(LRSchedule.cosine(warmupSteps: 0, totalSteps: 10, minLR: 0).learningRate(base: 0.5, step: 0) == 0.5)
    }

    // MARK: - clipping

    @Test func clipGlobalNorm() throws {
        // gradients [3, 4] and [12]: global norm √(9 + 16 + 144) = 13
        func make() throws -> [Tensor] {
            let a = try parameter([0, 0]), b = try parameter([0]), c = try parameter([5])   // c has no gradient
            try setGrad(a, [3, 4]); try setGrad(b, [12])
            return [a, b, c]
        }
        // max 6.5: coefficient 6.5 / (13 + 1e-6) ≈ 0.5 → [1.5, 2], [6]
        let ps = try make()
        #expect(GradientClipping.clipGlobalNorm(ps, maxNorm: 6.5) == 13)
        expectClose(ps[0].grad!.scalars, [1.5, 2], atol: 1e-6, rtol: 0)
        expectClose(ps[1].grad!.scalars, [6], atol: 1e-6, rtol: 0)
        #expect(ps[2].grad == nil)
        // below the maximum: untouched, bit for bit
        let qs = try make()
        #expect(GradientClipping.clipGlobalNorm(qs, maxNorm: 20) == 13)
        #expect(qs[0].grad!.scalars == [3, 4] && qs[1].grad!.scalars == [12])
        // the clipped norm is the maximum
        let rs = try make()
        GradientClipping.clipGlobalNorm(rs, maxNorm: 1)
        #expect(abs(GradientClipping.clipGlobalNorm(rs, maxNorm: 100) - 1) < 1e-5)
    }

    // MARK: - EMA

    @Test func emaDecayWarmsUp() throws {
        // d_t = min(decay, (1 + t) / (10 + t)) with t = updates so far: 0.1, 2/11, ..., 0.5 at t = 8
        let p = try parameter([0])
        let ema = try ExponentialMovingAverage([p], decay: 0.9)
        var seen: [Float] = []
        for _ in 0..<100 { seen.append(ema.currentDecay); ema.update() }
        expectClose(Array(seen[0..<3]), [0.1, 2.0 / 11, 3.0 / 12], atol: 1e-7, rtol: 0)
        #expect(abs(seen[8] - 0.5) < 1e-7)
        // (1 + t)/(10 + t) ≥ 0.9 from t = 80 on: 81/90 = 0.9
        #expect(seen[79] < 0.9 && seen[80] == 0.9 && seen[99] == 0.9)
        #expect(ema.updates == 100)
    }

    @Test func emaUpdateByHand() throws {
        // shadow starts as a copy [1, 2]
        let p = try parameter([1, 2])
        let ema = try ExponentialMovingAverage([p], decay: 0.9)
        #expect(ema.shadow[0].scalars == [1, 2])
        // θ = [3, 6], d = 0.1: shadow = 0.1·[1, 2] + 0.9·[3, 6] = [2.8, 5.6]
        p.data[0] = 3; p.data[1] = 6
        ema.update()
        expectClose(ema.shadow[0].scalars, [2.8, 5.6], atol: 1e-6, rtol: 0)
        // θ = [0, 0], d = 2/11: shadow = 2/11·[2.8, 5.6] = [0.50909091, 1.01818182]
        p.data[0] = 0; p.data[1] = 0
        ema.update()
        expectClose(ema.shadow[0].scalars, [0.50909091, 1.01818182], atol: 1e-6, rtol: 0)
        // the live weights are not touched by update
        #expect(p.scalars == [0, 0])
    }

    @Test func emaSwapTwiceIsIdentity() throws {
        let p = try parameter([1, 2, 3]), q = try parameter([4])
        let ema = try ExponentialMovingAverage([p, q], decay: 0.5)
        p.data[0] = 10; q.data[0] = 40
        ema.update()   // d = 0.1: shadow = [0.1 + 9, 2, 3], [0.4 + 36]
        let live = [p.scalars, q.scalars], averaged = ema.shadow.map { $0.scalars }
        ema.swap()
        #expect([p.scalars, q.scalars] == averaged)
        #expect(ema.shadow.map { $0.scalars } == live)
        ema.swap()
        #expect([p.scalars, q.scalars] == live)
        #expect(ema.shadow.map { $0.scalars } == averaged)
    }

    @Test func emaStateRoundTrip() throws {
        let p = try parameter([1, 2])
        let ema = try ExponentialMovingAverage([p], decay: 0.99)
        for v: Float in [3, 5, 7] { p.data[0] = v; ema.update() }
        let saved = try SafetensorsFile.parse(try SafetensorsFile(entries: ema.stateEntries()).serialized())
        #expect(saved.entries.map { $0.name }.sorted() == ["ema.0", "ema.updates"])
        let restored = try ExponentialMovingAverage([parameter([0, 0])], decay: 0.99)
        try restored.loadState { saved[$0] }
        #expect(restored.updates == 3)
        #expect(restored.shadow[0].scalars == ema.shadow[0].scalars)
        #expect(restored.currentDecay == ema.currentDecay)
        // a custom prefix, and a missing tensor
        let other = try ExponentialMovingAverage([parameter([0, 0])])
        let prefixed = ema.stateEntries(prefix: "x")
        try other.loadState(prefix: "x") { name in prefixed.first { $0.name == name } }
        #expect(other.shadow[0].scalars == ema.shadow[0].scalars)
        expectInvalidArgument("checkpoint has no tensor 'ema.0'") { try other.loadState { _ in nil } }
        let wrong = try SafetensorsEntry(name: "ema.0", tensor: try Tensor([1], shape: [1]))
        expectInvalidArgument("'ema.0' has shape [1], the model expects [2]") { try other.loadState { $0 == "ema.0" ? wrong : nil } }
    }
}
