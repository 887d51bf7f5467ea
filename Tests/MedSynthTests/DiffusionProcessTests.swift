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
        DiffusionSampling.ddpmStep(Self.tiny, .epsilon, output: &eps, sample: &x, t: 2, noise: &z, count: 1, clip: false)
        #expect(abs(x - 0.856392) < 2e-5)
        // at t = 0 there is no noise: x̂₀ = (0.5 − √0.1·0.3)/√0.9 = 0.427046, μ = 1·x̂₀ + 0·x_t
        var y: Float = 0.5
        DiffusionSampling.ddpmStep(Self.tiny, .epsilon, output: &eps, sample: &y, t: 0, noise: &z, count: 1, clip: false)
        #expect(abs(y - 0.427046) < 2e-5)
    }

    @Test func oneDDIMStepByHand() {
        // t = 2 → 0 with η = 0: x = √0.9·x̂₀ + √0.1·ε̂ = 0.948683·0.406686 + 0.316228·0.3 = 0.480686
        var x: Float = 0.5, eps: Float = 0.3
        DiffusionSampling.ddimStep(Self.tiny, .epsilon, output: &eps, sample: &x, t: 2, next: 0, eta: 0, noise: nil, count: 1, clip: false)
        #expect(abs(x - 0.480686) < 2e-5)
        // η = 1, z = −1: σ = √(0.1/0.496)·√(1 − 0.504/0.9) = 0.449013·0.663325 = 0.297838;
        // x = 0.948683·0.406686 + √(0.1 − 0.088707)·0.3 − 0.297838 = 0.385815 + 0.031879 − 0.297838 = 0.119856
        var y: Float = 0.5, z: Float = -1
        DiffusionSampling.ddimStep(Self.tiny, .epsilon, output: &eps, sample: &y, t: 2, next: 0, eta: 1, noise: &z, count: 1, clip: false)
        #expect(abs(y - 0.119856) < 5e-5)
    }

    @Test func oneDPMSolverStepByHand() {
        // first step 2 → 1 (first order): λ₂ = ½ln(0.504/0.496) = 0.008000, λ₁ = ½ln(0.72/0.28) = 0.472219,
        // h = 0.464219; x = (√0.28/√0.496)·0.5 − √0.72·(e^{−h} − 1)·x̂₀
        //   = 0.751343·0.5 + 0.848528·0.371350·0.406686 = 0.375672 + 0.128144 = 0.503816
        var x: Float = 0.5, eps: Float = 0.3, x0: Float = 0
        DiffusionSampling.dpmSolverStep(Self.tiny, .epsilon, output: &eps, sample: &x, t: 2, next: 1, previousX0: nil,
                                        previousT: nil, x0: &x0, count: 1, clip: false)
        #expect(abs(x0 - 0.406686) < 2e-5)
        #expect(abs(x - 0.503816) < 3e-5)
        // second step 1 → 0 with the previous x̂₀ (2M): at t = 1 with x = 0.5, ε̂ = 0.3:
        // x̂₀ = (0.5 − √0.28·0.3)/√0.72 = 0.402127; λ₀ = ½ln(9) = 1.098612, h = 0.626393,
        // r = 0.464219/0.626393 = 0.741100; D = (1 + 1/(2r))·0.402127 − 1/(2r)·0.406686 = 0.399051
        // x = (√0.1/√0.28)·0.5 − √0.9·(e^{−h} − 1)·D = 0.298807 + 0.948683·0.465443·0.399051 = 0.475012
        var y: Float = 0.5, previous: Float = 0.406686, x0b: Float = 0
        DiffusionSampling.dpmSolverStep(Self.tiny, .epsilon, output: &eps, sample: &y, t: 1, next: 0, previousX0: &previous,
                                        previousT: 2, x0: &x0b, count: 1, clip: false)
        #expect(abs(y - 0.475012) < 5e-5)
        // the last step to the clean image returns x̂₀
        var z: Float = 0.5, x0c: Float = 0
        DiffusionSampling.dpmSolverStep(Self.tiny, .epsilon, output: &eps, sample: &z, t: 0, next: -1, previousX0: &previous,
                                        previousT: 1, x0: &x0c, count: 1, clip: false)
        #expect(abs(z - 0.427046) < 2e-5)
    }

    @Test func timestepSpacings() {
        // torch_ref: linspace(999, 0, 50).long(): 999, 978, 957, ...
        let ddim = DiffusionSampling.timesteps(count: 50, of: 1000, spacing: .linspace, sampler: .ddim)
        #expect(ddim.count == 50 && ddim.first == 999 && ddim[1] == 978 && ddim.last == 0)
        #expect(DiffusionSampling.timesteps(count: 10, of: 1000, spacing: .leading, sampler: .ddim) == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0])
        #expect(DiffusionSampling.timesteps(count: 10, of: 1000, spacing: .trailing, sampler: .ddim) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99])
        // DPM-Solver++: round(linspace(999, 0, 11))[:-1]
        #expect(DiffusionSampling.timesteps(count: 10, of: 1000, spacing: .linspace, sampler: .dpmSolver) == [999, 899, 799, 699, 599, 500, 400, 300, 200, 100])
        #expect(DiffusionSampling.timesteps(count: 7, of: 20, spacing: .linspace, sampler: .ddpm).count == 20)
    }

    /// With data made of one image x*, the ideal denoiser is known in closed form:
    /// ε̂(x_t, t) = (x_t − √ᾱ_t·x*)/√(1 − ᾱ_t). Every sampler must then end at x* exactly.
    @Test(arguments: [SamplerKind.ddim, .ddpm, .dpmSolver])
    func samplersRecoverTheOnlyImageWithAnIdealDenoiser(_ kind: SamplerKind) throws {
        var config = DiffusionConfig(unet: UNetConfig(imageSize: 8, baseChannels: 4, channelMultipliers: [1], normGroups: 2))
        config.timesteps = 200
        config.dataRange = (0, 1)
        let model = try DiffusionModel(config: config)
        let target = (0..<64).map { Float($0 % 8) / 7 * 1.6 - 0.8 }   // x* in [−0.8, 0.8]
        var options = SamplingOptions()
        options.sampler = kind
        options.steps = 20
        options.batchSize = 3
        let out = [Float](repeating: 0, count: 5 * 64)
        var buffer = out
        let schedule = model.schedule
        _ = try buffer.withUnsafeMutableBufferPointer { b in
            try model.runSampler(labels: [0, 0, 0, 0, 0], options: options, into: b.baseAddress!, progress: .silent) { x, t, _ in
                let e = try Tensor(uninitialized: x.shape)
                let a = Float(schedule.alphaBar(t).squareRoot()), s = Float((1 - schedule.alphaBar(t)).squareRoot())
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
