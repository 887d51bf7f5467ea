// Reverse-process updates of the three samplers, as pure functions over buffers, so each can be
// checked against values computed by hand.
//
//   DDPM ancestral (Ho et al. 2020, eq. 6-7), t → t−1 (or to an earlier t′ with α_t = ᾱ_t/ᾱ_{t′}):
//     μ = √ᾱ_{t−1}·β_t/(1−ᾱ_t) · x̂₀ + √α_t·(1−ᾱ_{t−1})/(1−ᾱ_t) · x_t,   σ² = β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t)
//     ("fixed_small", no noise at t = 0)
//   DDIM (Song et al. 2021, eq. 12), t → t′:
//     σ = η·√((1−ᾱ_{t′})/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_{t′});  x_{t′} = √ᾱ_{t′}·x̂₀ + √(1−ᾱ_{t′}−σ²)·ε̂ + σz
//   DPM-Solver++(2M) (Lu et al. 2022, alg. 2, midpoint form as diffusers), s → t with
//     α = √ᾱ, σ = √(1−ᾱ), λ = log(α/σ), h = λ_t − λ_s, r = h_prev/h:
//     D = (1 + 1/(2r))·x̂₀(s) − 1/(2r)·x̂₀(prev)   (D = x̂₀(s) at the first and the final step)
//     x_t = (σ_t/σ_s)·x_s − α_t·(e^{−h} − 1)·D
//     SDE variant: x_t = (σ_t/σ_s)·e^{−h}·x_s + α_t·(1 − e^{−2h})·D + σ_t·√(1 − e^{−2h})·z
// x̂₀ is clipped to [−1, 1] when `clip` is set (pixel-space models; MONAI's clip_sample); DDIM then
// re-derives ε̂ from the clipped x̂₀.

import MedSynthCore

import Glibc

public enum SamplerKind: String, CaseIterable {
    case ddpm, ddim
    case dpmSolver = "dpm_solver++"
    /// DPM-Solver++(2M) SDE (Lu et al. 2022; diffusers' algorithm_type="sde-dpmsolver++"): the same
    /// steps with part of the noise replaced by fresh noise at each step
    case dpmSolverSDE = "dpm_solver++_sde"

    /// DPMSolverMultistepScheduler's samplers (its timesteps and its final step to the clean image).
    var isDPMSolver: Bool { self == .dpmSolver || self == .dpmSolverSDE }
}

public enum DiffusionSampling {
    @inline(__always)
    package static func clipped(_ v: Float, _ clip: Bool) -> Float { clip ? min(1, max(-1, v)) : v }

    /// One DDPM ancestral step from noise level ᾱ_t to ᾱ_prev (t − 1 with all T steps; 1 is the
    /// clean image), as diffusers' DDPMScheduler.step with "fixed_small" variance: with
    /// α′ = ᾱ_t/ᾱ_prev, β′ = 1 − α′,
    ///   x = √ᾱ_prev·β′/(1−ᾱ_t)·x̂₀ + √α′·(1−ᾱ_prev)/(1−ᾱ_t)·x_t + σz,  σ² = (1−ᾱ_prev)/(1−ᾱ_t)·β′
    /// (no noise on the step to the clean image). `noise` is z ~ N(0, I) (unused then).
    public static func ddpmStep(_ prediction: PredictionType, output: UnsafePointer<Float>, sample: UnsafeMutablePointer<Float>,
                                from abT: Double, to abPrev: Double, noise: UnsafePointer<Float>, count: Int, clip: Bool) {
        let alpha = abT / abPrev, beta = 1 - alpha
        let c0 = Float(abPrev.squareRoot() * beta / (1 - abT))
        let ct = Float(alpha.squareRoot() * (1 - abPrev) / (1 - abT))
        let sigma = abPrev < 1 ? Float(max((1 - abPrev) / (1 - abT) * beta, 1e-20).squareRoot()) : 0
        for i in 0..<count {
            let x0 = clipped(NoiseSchedule.decompose(prediction, output: output[i], sample: sample[i], alphaBar: abT).x0, clip)
            sample[i] = c0 * x0 + ct * sample[i] + (sigma > 0 ? sigma * noise[i] : 0)
        }
    }

    /// One DDIM step from noise level ᾱ_t to ᾱ_next (1: the clean image). `noise` may be nil when eta = 0.
    public static func ddimStep(_ prediction: PredictionType, output: UnsafePointer<Float>, sample: UnsafeMutablePointer<Float>,
                                from abT: Double, to abNext: Double, eta: Double, noise: UnsafePointer<Float>?, count: Int, clip: Bool) {
        let sigma = eta * ((1 - abNext) / (1 - abT)).squareRoot() * (1 - abT / abNext).squareRoot()
        let a = Float(abNext.squareRoot()), dir = Float(max(0, 1 - abNext - sigma * sigma).squareRoot())
        let sig = Float(sigma)
        // with clipping, ε̂ is re-derived from the clipped x̂₀ (GLIDE; diffusers'
        // use_clipped_model_output): the update then stays on the ODE that DPM-Solver++ follows,
        // instead of adding back noise the clipped x̂₀ no longer explains
        let aT = Float(abT.squareRoot()), sT = Float((1 - abT).squareRoot())
        for i in 0..<count {
            var (x0, eps) = NoiseSchedule.decompose(prediction, output: output[i], sample: sample[i], alphaBar: abT)
            if clip && (x0 > 1 || x0 < -1) {
                x0 = min(1, max(-1, x0))
                eps = (sample[i] - aT * x0) / sT
            }
            let z: Float = noise.map { $0[i] } ?? 0
            sample[i] = a * x0 + dir * eps + sig * z
        }
    }

    /// λ = log(α/σ) = ½·log(ᾱ/(1−ᾱ)) (+∞ for the clean image).
    package static func lambda(_ alphaBar: Double) -> Double {
        alphaBar >= 1 ? .infinity : 0.5 * log(alphaBar) - 0.5 * log(1 - alphaBar)
    }

    /// One DPM-Solver++(2M) step from noise level ᾱ_s to ᾱ_t (1: the clean image). `x0` receives
    /// this step's x̂₀ (the caller keeps it for the next step); `previousX0`/`previousAlphaBar`
    /// are the last step's (nil at the first step).
    public static func dpmSolverStep(_ prediction: PredictionType, output: UnsafePointer<Float>, sample: UnsafeMutablePointer<Float>,
                                     from abS: Double, to abNext: Double, previousX0: UnsafePointer<Float>?,
                                     previousAlphaBar: Double?, x0 buffer: UnsafeMutablePointer<Float>, count: Int, clip: Bool,
                                     noise: UnsafePointer<Float>? = nil) {
        for i in 0..<count {
            buffer[i] = clipped(NoiseSchedule.decompose(prediction, output: output[i], sample: sample[i], alphaBar: abS).x0, clip)
        }
        if abNext >= 1 {
            // σ = 0 at the clean image: x = D, and the final step is first order
            sample.update(from: buffer, count: count)
            return
        }
        let lS = lambda(abS), lNext = lambda(abNext), h = lNext - lS
        let alphaNext = abNext.squareRoot(), sigmaNext = (1 - abNext).squareRoot()
        var ratio = Float(((1 - abNext) / (1 - abS)).squareRoot())
        var k = Float(-alphaNext * expm1(-h))   // −α_t·(e^{−h} − 1)
        var sigmaZ: Float = 0
        if noise != nil {
            // SDE variant: (σ_t/σ_s)·e^{−h}·x_s + α_t(1 − e^{−2h})·D + σ_t·√(1 − e^{−2h})·z
            ratio *= Float(exp(-h))
            k = Float(-alphaNext * expm1(-2 * h))
            sigmaZ = Float(sigmaNext * (-expm1(-2 * h)).squareRoot())
        }
        let z = noise ?? UnsafePointer(buffer)     // read only when sigmaZ ≠ 0
        if let previousX0, let previousAlphaBar {
            let r = (lS - lambda(previousAlphaBar)) / h
            let w0 = Float(1 + 1 / (2 * r)), w1 = Float(-1 / (2 * r))
            for i in 0..<count { sample[i] = ratio * sample[i] + k * (w0 * buffer[i] + w1 * previousX0[i]) + sigmaZ * z[i] }
        } else {
            for i in 0..<count { sample[i] = ratio * sample[i] + k * buffer[i] + sigmaZ * z[i] }
        }
    }
}
