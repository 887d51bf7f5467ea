// Reverse-process updates of the three samplers, as pure functions over buffers, so each can be
// checked against values computed by hand.
//
//   DDPM ancestral (Ho et al. 2020, eq. 6-7), t → t−1:
//     μ = √ᾱ_{t−1}·β_t/(1−ᾱ_t) · x̂₀ + √α_t·(1−ᾱ_{t−1})/(1−ᾱ_t) · x_t,   σ² = β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t)
//     ("fixed_small", no noise at t = 0)
//   DDIM (Song et al. 2021, eq. 12), t → t′:
//     σ = η·√((1−ᾱ_{t′})/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_{t′});  x_{t′} = √ᾱ_{t′}·x̂₀ + √(1−ᾱ_{t′}−σ²)·ε̂ + σz
//   DPM-Solver++(2M) (Lu et al. 2022, alg. 2, midpoint form as diffusers), s → t with
//     α = √ᾱ, σ = √(1−ᾱ), λ = log(α/σ), h = λ_t − λ_s, r = h_prev/h:
//     D = (1 + 1/(2r))·x̂₀(s) − 1/(2r)·x̂₀(prev)   (D = x̂₀(s) at the first and the final step)
//     x_t = (σ_t/σ_s)·x_s − α_t·(e^{−h} − 1)·D
// x̂₀ is clipped to [−1, 1] when `clip` is set (pixel-space models; MONAI's clip_sample); DDIM then
// re-derives ε̂ from the clipped x̂₀.

import MedSynthCore

import Glibc

public enum SamplerKind: String, CaseIterable {
    case ddpm, ddim
    case dpmSolver = "dpm_solver++"
}

/// How a few sampling steps are spread over the T training timesteps.
public enum TimestepSpacing: String, CaseIterable {
    /// evenly from T−1 down to 0 (torch_ref.py's DDIM: linspace(T−1, 0, n), truncated)
    case linspace
    /// k·⌊T/n⌋ for k = n−1 … 0 (diffusers DDIM's default "leading")
    case leading
    /// round(T − k·T/n) − 1 for k = 0 … n−1, always starting at T−1 (Lin et al. 2024, "Common
    /// Diffusion Noise Schedules and Sample Steps are Flawed")
    case trailing
}

public enum DiffusionSampling {
    /// Descending timesteps for `steps` model evaluations. DPM-Solver++ ends on a step to the clean
    /// image, so for it linspace spacing leaves out t = 0 (diffusers' convention).
    public static func timesteps(count steps: Int, of total: Int, spacing: TimestepSpacing, sampler: SamplerKind) -> [Int] {
        if sampler == .ddpm { return Array((0..<total).reversed()) }
        let n = max(1, min(steps, total))
        switch spacing {
        case .linspace:
            if sampler == .dpmSolver {
                // round(linspace(T−1, 0, n+1))[:-1]
                return (0..<n).map { Int((Double(total - 1) * (1 - Double($0) / Double(n))).rounded()) }
            }
            if n == 1 { return [total - 1] }
            return (0..<n).map { Int(Double(total - 1) - Double($0) * Double(total - 1) / Double(n - 1)) }
        case .leading:
            let ratio = total / n
            return (0..<n).reversed().map { $0 * ratio }
        case .trailing:
            let ratio = Double(total) / Double(n)
            return (0..<n).map { max(0, Int((Double(total) - Double($0) * ratio).rounded()) - 1) }
        }
    }

    @inline(__always)
    package static func clipped(_ v: Float, _ clip: Bool) -> Float { clip ? min(1, max(-1, v)) : v }

    /// One DDPM ancestral step t → t−1. `noise` is z ~ N(0, I) (unused at t = 0).
    public static func ddpmStep(_ s: NoiseSchedule, _ prediction: PredictionType, output: UnsafePointer<Float>,
                                sample: UnsafeMutablePointer<Float>, t: Int, noise: UnsafePointer<Float>,
                                count: Int, clip: Bool) {
        let abT = s.alphaBar(t), abPrev = s.alphaBar(t - 1), beta = s.betas[t]
        let c0 = Float(abPrev.squareRoot() * beta / (1 - abT))
        let ct = Float((1 - beta).squareRoot() * (1 - abPrev) / (1 - abT))
        let sigma = t > 0 ? Float((beta * (1 - abPrev) / (1 - abT)).squareRoot()) : 0
        for i in 0..<count {
            let x0 = clipped(s.decompose(prediction, output: output[i], sample: sample[i], t: t).x0, clip)
            sample[i] = c0 * x0 + ct * sample[i] + sigma * noise[i]
        }
    }

    /// One DDIM step t → next (next = −1 is the clean image). `noise` may be nil when eta = 0.
    public static func ddimStep(_ s: NoiseSchedule, _ prediction: PredictionType, output: UnsafePointer<Float>,
                                sample: UnsafeMutablePointer<Float>, t: Int, next: Int, eta: Double,
                                noise: UnsafePointer<Float>?, count: Int, clip: Bool) {
        let abT = s.alphaBar(t), abNext = s.alphaBar(next)
        let sigma = eta * ((1 - abNext) / (1 - abT)).squareRoot() * (1 - abT / abNext).squareRoot()
        let a = Float(abNext.squareRoot()), dir = Float(max(0, 1 - abNext - sigma * sigma).squareRoot())
        let sig = Float(sigma)
        // with clipping, ε̂ is re-derived from the clipped x̂₀ (GLIDE; diffusers'
        // use_clipped_model_output): the update then stays on the ODE that DPM-Solver++ follows,
        // instead of adding back noise the clipped x̂₀ no longer explains
        let aT = Float(abT.squareRoot()), sT = Float((1 - abT).squareRoot())
        for i in 0..<count {
            var (x0, eps) = s.decompose(prediction, output: output[i], sample: sample[i], t: t)
            if clip && (x0 > 1 || x0 < -1) {
                x0 = min(1, max(-1, x0))
                eps = (sample[i] - aT * x0) / sT
            }
            let z: Float = noise.map { $0[i] } ?? 0
            sample[i] = a * x0 + dir * eps + sig * z
        }
    }

    /// λ(t) = log(α_t/σ_t) (+∞ for the clean image).
    package static func lambda(_ s: NoiseSchedule, _ t: Int) -> Double {
        let ab = s.alphaBar(t)
        return t < 0 ? .infinity : 0.5 * log(ab) - 0.5 * log(1 - ab)
    }

    /// One DPM-Solver++(2M) step t → next. `x0` receives this step's x̂₀ (the caller keeps it for
    /// the next step); `previousX0`/`previousT` are the last step's (nil at the first step).
    public static func dpmSolverStep(_ s: NoiseSchedule, _ prediction: PredictionType, output: UnsafePointer<Float>,
                                     sample: UnsafeMutablePointer<Float>, t: Int, next: Int,
                                     previousX0: UnsafePointer<Float>?, previousT: Int?,
                                     x0 buffer: UnsafeMutablePointer<Float>, count: Int, clip: Bool) {
        for i in 0..<count {
            buffer[i] = clipped(s.decompose(prediction, output: output[i], sample: sample[i], t: t).x0, clip)
        }
        if next < 0 {
            // σ = 0 at the clean image: x = D, and the final step is first order
            sample.update(from: buffer, count: count)
            return
        }
        let lT = lambda(s, t), lNext = lambda(s, next), h = lNext - lT
        let alphaNext = s.alphaBar(next).squareRoot()
        let ratio = Float(((1 - s.alphaBar(next)) / (1 - s.alphaBar(t))).squareRoot())
        let k = Float(-alphaNext * expm1(-h))   // −α_t·(e^{−h} − 1)
        if let previousX0, let previousT {
            let r = (lT - lambda(s, previousT)) / h
            let w0 = Float(1 + 1 / (2 * r)), w1 = Float(-1 / (2 * r))
            for i in 0..<count { sample[i] = ratio * sample[i] + k * (w0 * buffer[i] + w1 * previousX0[i]) }
        } else {
            for i in 0..<count { sample[i] = ratio * sample[i] + k * buffer[i] }
        }
    }
}
