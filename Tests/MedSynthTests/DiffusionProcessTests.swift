import Testing
import Glibc
@testable import MedSynth
@testable import MedSynthCore

@Suite struct DiffusionProcessTests {
    @Test func linearAndCosineSchedules() throws {
        let linear = try NoiseSchedule(.linear, steps: 1000)
        #expect(linear.betas[0] == 1e-4 && abs(linear.betas[999] - 0.02) < 1e-15)
        #expect(abs(linear.betas[1] - (1e-4 + 0.0199 / 999)) < 1e-15)
        // ᾱ_T of the DDPM schedule ≈ 4.04e-5 (Π (1 − β_t))
        #expect(abs(linear.alphaBars[999] - 4.035e-5) < 1e-7)
        let cosine = try NoiseSchedule(.cosine, steps: 1000)
        // ᾱ(t) = f(t+1)/f(0) up to the 0.999 clip, f(t) = cos²((t/T + s)/(1 + s)·π/2)
        func f(_ t: Double) -> Double { let c = cos((t / 1000 + 0.008) / 1.008 * Double.pi / 2); return c * c }
        #expect(abs(cosine.alphaBars[499] - f(500) / f(0)) < 1e-9)
        #expect(cosine.betas.allSatisfy { $0 > 0 && $0 <= 0.999 })
        #expect(throws: MedSynthError.self) { try NoiseSchedule(.linear, steps: 1) }
    }

    @Test func forwardProcessMatchesItsMarginal() throws {
        // q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I): over 200k draws the mean and variance agree
        let s = try NoiseSchedule(.linear, steps: 1000)
        let n = 200_000, t = 300
        let x0 = [Float](repeating: 0.7, count: n)
        let noise = try Tensor(uninitialized: [n])
        RandomGenerator(seed: 5).fillNormal(noise.data, n)
        let xt = try Tensor(uninitialized: [n])
        x0.withUnsafeBufferPointer { s.addNoise(x0: $0.baseAddress!, noise: noise.data, t: t, into: xt.data, count: n) }
        let values = xt.scalars.map { Double($0) }
        let mean = values.reduce(0, +) / Double(n)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        let expectedMean = s.alphaBars[t].squareRoot() * 0.7, expectedVariance = 1 - s.alphaBars[t]
        #expect(abs(mean - expectedMean) < 4 * (expectedVariance / Double(n)).squareRoot())
        #expect(abs(variance / expectedVariance - 1) < 0.015)
    }

    @Test func vTargetAndMinSNRWeights() throws {
        let s = NoiseSchedule(betas: [0.19, 0.5])   // ᾱ = 0.81, 0.405
        var out: Float = 0
        var x0: Float = 1, eps: Float = 2
        // v = √ᾱ·ε − √(1−ᾱ)·x₀ = 0.9·2 − √0.19·1 at t = 0
        s.target(.v, x0: &x0, noise: &eps, t: 0, into: &out, count: 1)
        #expect(abs(out - Float(1.8 - 0.19.squareRoot())) < 1e-6)
        // SNR(0) = 0.81/0.19 = 4.263: γ = 5 → weight 1 (ε); γ = 1 → 1/4.263
        #expect(s.minSNRWeight(0, gamma: 5, prediction: .epsilon) == 1)
        #expect(abs(s.minSNRWeight(0, gamma: 1, prediction: .epsilon) - Float(0.19 / 0.81)) < 1e-6)
        #expect(abs(s.minSNRWeight(0, gamma: 1, prediction: .v) - Float(1 / (0.81 / 0.19 + 1))) < 1e-6)
        // decomposing v recovers x₀ and ε from x_t = 0.9·1 + √0.19·2
        var xt = Float(0.9 + 0.19.squareRoot() * 2)
        let (rx0, reps) = s.decompose(.v, output: out, sample: xt, t: 0)
        #expect(abs(rx0 - 1) < 1e-5 && abs(reps - 2) < 1e-5)
        xt = 0
    }

    // Schedule for the hand-worked steps: β = (0.1, 0.2, 0.3) → α = (0.9, 0.8, 0.7),
    // ᾱ = (0.9, 0.72, 0.504).
    static let tiny = NoiseSchedule(betas: [0.1, 0.2, 0.3])

    @Test func oneDDPMStepByHand() {
        // t = 2, x_t = 0.5, ε̂ = 0.3, z = 1:
        // x̂₀ = (0.5 − √0.496·0.3)/√0.504 = (0.5 − 0.211282)/0.709930 = 0.406686
        // μ = √0.72·0.3/0.496·x̂₀ + √0.7·0.28/0.496·x_t = 0.513222·0.406686 + 0.472302·0.5 = 0.444865
        // σ = √(0.3·0.28/0.496) = 0.411527 → x = 0.856392
        var x: Float = 0.5, eps: Float = 0.3, z: Float = 1
        DiffusionSampling.ddpmStep(.epsilon, output: &eps, sample: &x, from: Self.tiny.alphaBar(2), to: Self.tiny.alphaBar(1), noise: &z, count: 1, clip: false)
        #expect(abs(x - 0.856392) < 2e-5)
        // at t = 0 there is no noise: x̂₀ = (0.5 − √0.1·0.3)/√0.9 = 0.427046, μ = 1·x̂₀ + 0·x_t
        var y: Float = 0.5
        DiffusionSampling.ddpmStep(.epsilon, output: &eps, sample: &y, from: Self.tiny.alphaBar(0), to: Self.tiny.alphaBar(-1), noise: &z, count: 1, clip: false)
        #expect(abs(y - 0.427046) < 2e-5)
    }

    @Test func oneDDIMStepByHand() {
        // t = 2 → 0 with η = 0: x = √0.9·x̂₀ + √0.1·ε̂ = 0.948683·0.406686 + 0.316228·0.3 = 0.480686
        var x: Float = 0.5, eps: Float = 0.3
        DiffusionSampling.ddimStep(.epsilon, output: &eps, sample: &x, from: Self.tiny.alphaBar(2), to: Self.tiny.alphaBar(0), eta: 0, noise: nil, count: 1, clip: false)
        #expect(abs(x - 0.480686) < 2e-5)
        // η = 1, z = −1: σ = √(0.1/0.496)·√(1 − 0.504/0.9) = 0.449013·0.663325 = 0.297838;
        // x = 0.948683·0.406686 + √(0.1 − 0.088707)·0.3 − 0.297838 = 0.385815 + 0.031879 − 0.297838 = 0.119856
        var y: Float = 0.5, z: Float = -1
        DiffusionSampling.ddimStep(.epsilon, output: &eps, sample: &y, from: Self.tiny.alphaBar(2), to: Self.tiny.alphaBar(0), eta: 1, noise: &z, count: 1, clip: false)
        #expect(abs(y - 0.119856) < 5e-5)
    }

    @Test func oneDPMSolverStepByHand() {
        // first step 2 → 1 (first order): λ₂ = ½ln(0.504/0.496) = 0.008000, λ₁ = ½ln(0.72/0.28) = 0.472219,
        // h = 0.464219; x = (√0.28/√0.496)·0.5 − √0.72·(e^{−h} − 1)·x̂₀
        //   = 0.751343·0.5 + 0.848528·0.371350·0.406686 = 0.375672 + 0.128144 = 0.503816
        var x: Float = 0.5, eps: Float = 0.3, x0: Float = 0
        DiffusionSampling.dpmSolverStep(.epsilon, output: &eps, sample: &x, from: Self.tiny.alphaBar(2), to: Self.tiny.alphaBar(1), previousX0: nil,
                                        previousAlphaBar: nil, x0: &x0, count: 1, clip: false)
        #expect(abs(x0 - 0.406686) < 2e-5)
        #expect(abs(x - 0.503816) < 3e-5)
        // second step 1 → 0 with the previous x̂₀ (2M): at t = 1 with x = 0.5, ε̂ = 0.3:
        // x̂₀ = (0.5 − √0.28·0.3)/√0.72 = 0.402127; λ₀ = ½ln(9) = 1.098612, h = 0.626393,
        // r = 0.464219/0.626393 = 0.741100; D = (1 + 1/(2r))·0.402127 − 1/(2r)·0.406686 = 0.399051
        // x = (√0.1/√0.28)·0.5 − √0.9·(e^{−h} − 1)·D = 0.298807 + 0.948683·0.465443·0.399051 = 0.475012
        var y: Float = 0.5, previous: Float = 0.406686, x0b: Float = 0
        DiffusionSampling.dpmSolverStep(.epsilon, output: &eps, sample: &y, from: Self.tiny.alphaBar(1), to: Self.tiny.alphaBar(0), previousX0: &previous,
                                        previousAlphaBar: Self.tiny.alphaBar(2), x0: &x0b, count: 1, clip: false)
        #expect(abs(y - 0.475012) < 5e-5)
        // the last step to the clean image returns x̂₀
        var z: Float = 0.5, x0c: Float = 0
        DiffusionSampling.dpmSolverStep(.epsilon, output: &eps, sample: &z, from: Self.tiny.alphaBar(0), to: Self.tiny.alphaBar(-1), previousX0: &previous,
                                        previousAlphaBar: Self.tiny.alphaBar(1), x0: &x0c, count: 1, clip: false)
        #expect(abs(z - 0.427046) < 2e-5)
    }

    @Test func timestepsAreDiffusers() throws {
        // the lists diffusers' schedulers chose (DiffusersTimesteps.swift, from the reference venv)
        for (key, expected) in DiffusersTimesteps.lists {
            let parts = key.split(separator: " ").map(String.init)
            let sampler = try #require(SamplerKind(rawValue: parts[0])), spacing = try #require(TimestepSpacing(rawValue: parts[1]))
            let n = try #require(Int(parts[2]))
            #expect(DiffusionSampling.timesteps(count: n, of: 1000, spacing: spacing, sampler: sampler) == expected, "\(key)")
        }
        // the examples: DPM-Solver++ leading takes floor(T/(n+1)) and drops 0; DDIM linspace rounds
        #expect(Array(DiffusionSampling.timesteps(count: 20, of: 1000, spacing: .leading, sampler: .dpmSolver).prefix(3)) == [940, 893, 846])
        #expect(Array(DiffusionSampling.timesteps(count: 50, of: 1000, spacing: .linspace, sampler: .ddim).prefix(4)) == [999, 979, 958, 938])
        // every count diffusers' formulas give, written out as numpy evaluates them (start + k·step, half to even)
        func npRound(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }
        for total in [1000, 200] {
            for n in 1...min(total / 2, 120) {
                let T = Double(total)
                let lin = (0..<n).map { k in k == n - 1 ? total - 1 : npRound(Double(k) * ((T - 1) / Double(n - 1))) }
                #expect(DiffusionSampling.timesteps(count: n, of: total, spacing: .linspace, sampler: .ddim) == (n == 1 ? [0] : lin.reversed()))
                let lin1 = (0...n).map { k in k == n ? total - 1 : npRound(Double(k) * ((T - 1) / Double(n))) }
                #expect(DiffusionSampling.timesteps(count: n, of: total, spacing: .linspace, sampler: .dpmSolver) == Array(lin1.reversed().dropLast()))
                #expect(DiffusionSampling.timesteps(count: n, of: total, spacing: .leading, sampler: .ddpm) == (0..<n).reversed().map { $0 * (total / n) })
                #expect(DiffusionSampling.timesteps(count: n, of: total, spacing: .leading, sampler: .dpmSolver) == (1...n).reversed().map { $0 * (total / (n + 1)) })
                let step = (T - T / Double(n)) - T
                let trailing = (0..<n).map { npRound(T + Double($0) * step) - 1 }
                for sampler in SamplerKind.allCases {
                    #expect(DiffusionSampling.timesteps(count: n, of: total, spacing: .trailing, sampler: sampler) == trailing)
                }
            }
        }
    }

    @Test func stepTargetsAreDiffusers() throws {
        var options = SamplingOptions()
        // DDIM lands at t − T//n (DDIMScheduler.step), or at the next timestep evaluated
        options.sampler = .ddim
        options.steps = 10
        options.spacing = .linspace
        let ddim = try DiffusionSampling.plan(options, schedule: try NoiseSchedule(.linear, steps: 1000))
        #expect(ddim.timesteps == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0])
        #expect(ddim.targets == [899, 788, 677, 566, 455, 344, 233, 122, 11, -1])
        options.ddimTarget = .scheduled
        #expect(try DiffusionSampling.plan(options, schedule: NoiseSchedule(.linear, steps: 1000)).targets == [888, 777, 666, 555, 444, 333, 222, 111, 0, -1])
        // default spacing: diffusers' default of the sampler's scheduler
        options = SamplingOptions()
        options.sampler = .ddim
        #expect(options.resolvedSpacing == .leading)
        options.sampler = .dpmSolver
        #expect(options.resolvedSpacing == .linspace)
        options.steps = 10
        let dpm = try DiffusionSampling.plan(options, schedule: try NoiseSchedule(.linear, steps: 1000))
        #expect(dpm.timesteps == [999, 899, 799, 699, 599, 500, 400, 300, 200, 100])
        #expect(dpm.targets == [899, 799, 699, 599, 500, 400, 300, 200, 100, -1])
        // DDPM: every timestep unless steps are given, then the next one (DDPMScheduler.previous_timestep)
        options = SamplingOptions()
        options.sampler = .ddpm
        let ddpm = try DiffusionSampling.plan(options, schedule: try NoiseSchedule(.linear, steps: 1000))
        #expect(ddpm.timesteps == Array((0..<1000).reversed()) && ddpm.targets == Array((-1..<999).reversed()))
        options.steps = 4
        #expect(try DiffusionSampling.plan(options, schedule: NoiseSchedule(.linear, steps: 1000)).targets == [500, 250, 0, -1])
        // counts that give repeated timesteps are errors, not silent duplicates
        // (DPM-Solver++ leading over T = 10 with 10 steps: ⌊10/11⌋ = 0)
        options.sampler = .dpmSolver
        options.spacing = .leading
        options.steps = 10
        #expect(throws: MedSynthError.self) { try DiffusionSampling.plan(options, schedule: try NoiseSchedule(.linear, steps: 10)) }
        options.steps = 11
        #expect(throws: MedSynthError.self) { try DiffusionSampling.plan(options, schedule: try NoiseSchedule(.linear, steps: 10)) }
    }

    @Test func noiseLevelSpacingsAreDiffusers() throws {
        // Karras and log-SNR spacing as DPMSolverMultistepScheduler(use_karras_sigmas / use_lu_lambdas)
        // places them on the linear schedule: the rounded timesteps exactly, the noise levels to
        // 1e-4 (diffusers takes σ from a float32 ᾱ, whose 1 − ᾱ near t = 0 keeps ~4 digits:
        // σ(0) = 0.0100013 there, 0.0100005 in double precision)
        let schedule = try NoiseSchedule(.linear, steps: 1000)
        for (key, expected) in DiffusersTimesteps.noiseLevelSpacings {
            let parts = key.split(separator: " ").map(String.init)
            let spacing = try #require(TimestepSpacing(rawValue: parts[0])), n = try #require(Int(parts[1]))
            for sampler in SamplerKind.allCases {
                var options = SamplingOptions()
                options.sampler = sampler
                options.steps = n
                options.spacing = spacing
                let plan = try DiffusionSampling.plan(options, schedule: schedule)
                let sigmas = plan.alphaBars.map { ((1 - $0) / $0).squareRoot() }
                // equal timesteps, except at a near-tie (a fractional timestep within 0.01 of a
                // half: log-SNR 50 has 477.495 here, 477.5+ in diffusers' float32 table)
                for (k, (mine, theirs)) in zip(plan.timesteps, expected.0).enumerated() where mine != theirs {
                    let exact = DiffusionSampling.timestep(ofSigma: sigmas[k], schedule: schedule)
                    #expect(abs(exact - exact.rounded(.down) - 0.5) < 0.01 && abs(mine - theirs) == 1, "\(key) \(sampler) step \(k): \(mine) vs \(theirs)")
                }
                #expect(plan.timesteps.count == expected.0.count)
                for (mine, theirs) in zip(sigmas, expected.1) { #expect(abs(mine / theirs - 1) < 1e-4, "\(key): σ \(mine) vs \(theirs)") }
                // each step lands on the next level, the clean image after σ(0)
                #expect(plan.targetAlphaBars == Array(plan.alphaBars.dropFirst()) + [1])
                #expect(plan.targets == Array(plan.timesteps.dropFirst()) + [-1])
            }
        }
        // σ(t) → t interpolates in log σ and inverts the schedule's own levels
        for t in [0, 1, 17, 500, 998, 999] {
            #expect(abs(DiffusionSampling.timestep(ofSigma: schedule.sigma(t), schedule: schedule) - Double(t)) < 1e-9)
        }
        let mid = exp(0.5 * (log(schedule.sigma(10)) + log(schedule.sigma(11))))
        #expect(abs(DiffusionSampling.timestep(ofSigma: mid, schedule: schedule) - 10.5) < 1e-9)
        // the default sampler is DPM++ 2M SDE Karras in 20 steps (issue 13); its spacing is Karras
        // when the SDE variant is asked for by name too; the others keep diffusers'
        var options = SamplingOptions()
        #expect(options.sampler == .dpmSolverSDE && options.resolvedSteps(total: 1000) == 20 && options.resolvedSpacing == .karras)
        options.sampler = .ddim
        #expect(options.resolvedSteps(total: 1000) == 50)
        options.sampler = .dpmSolverSDE
        #expect(options.resolvedSpacing == .karras)
        options.sampler = .dpmSolver
        #expect(options.resolvedSpacing == .linspace)
    }

    @Test func ddpmStepWithSkippedTimestepsIsDiffusers() {
        // t = 2 → 0 on the tiny schedule: α′ = 0.504/0.9 = 0.56, β′ = 0.44;
        // x̂₀ = 0.406686 (ε̂ = 0.3, x = 0.5); c0 = √0.9·0.44/0.496 = 0.841571, ct = √0.56·0.1/0.496 = 0.150874;
        // σ² = 0.1/0.496·0.44 = 0.088710 → x = 0.342256 + 0.075437 + 0.297842 = 0.715535 with z = 1
        var x: Float = 0.5, eps: Float = 0.3, z: Float = 1
        DiffusionSampling.ddpmStep(.epsilon, output: &eps, sample: &x, from: Self.tiny.alphaBar(2), to: Self.tiny.alphaBar(0), noise: &z, count: 1, clip: false)
        #expect(abs(x - 0.715535) < 3e-5)
    }

    /// With data made of one image x*, the ideal denoiser is known in closed form:
    /// ε̂(x_t, t) = (x_t − √ᾱ_t·x*)/√(1 − ᾱ_t). Every sampler must then end at x* exactly.
    @Test(arguments: [(SamplerKind.ddim, TimestepSpacing?.none), (.ddpm, nil), (.dpmSolver, nil), (.dpmSolverSDE, nil),
                      (.dpmSolver, .logSNR), (.ddim, .karras), (.ddpm, .karras)])
    func samplersRecoverTheOnlyImageWithAnIdealDenoiser(_ kind: SamplerKind, _ spacing: TimestepSpacing?) throws {
        var config = DiffusionConfig(unet: UNetConfig(imageSize: 8, baseChannels: 4, channelMultipliers: [1], normGroups: 2))
        config.timesteps = 200
        config.dataRange = (0, 1)
        config.prediction = .epsilon          // the denoiser below returns ε
        let model = try DiffusionModel(config: config)
        let target = (0..<64).map { Float($0 % 8) / 7 * 1.6 - 0.8 }   // x* in [−0.8, 0.8]
        var options = SamplingOptions()
        options.sampler = kind
        options.spacing = spacing
        options.steps = 20
        options.batchSize = 3
        let out = [Float](repeating: 0, count: 5 * 64)
        var buffer = out
        let plan = try DiffusionSampling.plan(options, schedule: model.schedule)
        // the ideal ε at the noise level each step runs from (the exact level of Karras and
        // log-SNR spacing, which the timestep t only rounds): calls come step by step, batch by batch
        var call = 0
        _ = try buffer.withUnsafeMutableBufferPointer { b in
            try model.runSampler(labels: [0, 0, 0, 0, 0], options: options, plan: plan, into: b.baseAddress!, progress: .silent) { x, t, _ in
                let alphaBar = plan.alphaBars[call % plan.timesteps.count]
                #expect(t == plan.timesteps[call % plan.timesteps.count])
                call += 1
                let e = try Tensor(uninitialized: x.shape)
                let a = Float(alphaBar.squareRoot()), s = Float((1 - alphaBar).squareRoot())
                for i in 0..<x.count { e.data[i] = (x.data[i] - a * target[i % 64]) / s }
                return e
            }
        }
        for image in 0..<5 {
            for i in 0..<64 {
                let expected = (target[i] + 1) / 2     // [−1, 1] → the data range [0, 1]
                #expect(abs(buffer[image * 64 + i] - expected) < 2e-3, "\(kind) image \(image) pixel \(i): \(buffer[image * 64 + i]) vs \(expected)")
                if abs(buffer[image * 64 + i] - expected) >= 2e-3 { return }
            }
        }
    }
}
