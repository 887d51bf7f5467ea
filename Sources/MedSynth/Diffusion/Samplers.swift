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

/// How a few sampling steps are spread over the T training timesteps: diffusers' three rules
/// (`timestep_spacing`, Table 2 of Lin et al. 2024, "Common Diffusion Noise Schedules and Sample
/// Steps are Flawed"), each computed as the sampler's diffusers scheduler computes it.
public enum TimestepSpacing: String, CaseIterable {
    /// round(linspace(0, T−1, n)) descending (DDPM, DDIM); DPM-Solver++ takes n + 1 points and
    /// drops the 0 (its last step goes to the clean image). The default of DPMSolverMultistepScheduler.
    case linspace
    /// k·⌊T/n⌋ for k = n−1 … 0 (DDPM, DDIM); DPM-Solver++ k·⌊T/(n+1)⌋ for k = n … 1. The default
    /// of DDPMScheduler and DDIMScheduler.
    case leading
    /// round(T − k·T/n) − 1 for k = 0 … n−1: always starts at T−1.
    case trailing
}

/// Where a DDIM step lands.
public enum DDIMTarget: String, CaseIterable {
    /// t − ⌊T/n⌋, as diffusers' DDIMScheduler (with linspace or trailing spacing this can differ
    /// from the next timestep the sampler evaluates)
    case diffusers
    /// the next timestep the sampler evaluates (the clean image after the last), so every step
    /// starts where the previous one ended
    case scheduled
}

/// The timesteps a sampler evaluates the network at, in order, and where each step lands
/// (−1: the clean image, ᾱ = 1).
public struct SamplingPlan: Equatable {
    public let timesteps: [Int]
    public let targets: [Int]
}

public enum DiffusionSampling {
    /// numpy's round (half to even), as diffusers rounds timesteps.
    static func npRound(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }

    /// diffusers' timesteps of `sampler` for `steps` model evaluations over `total` training
    /// timesteps. linspace and arange are evaluated as numpy evaluates them (start + k·step, the
    /// last point exactly the end), so ties round the same way. Where diffusers' trailing rule
    /// yields one extra (negative) timestep (numpy's arange length, e.g. 61 steps of 1000), the
    /// first n are kept.
    public static func timesteps(count steps: Int, of total: Int, spacing: TimestepSpacing, sampler: SamplerKind) -> [Int] {
        let n = max(1, steps), T = total
        func linspace(_ stop: Double, _ num: Int) -> [Double] {
            guard num > 1 else { return [0] }
            let step = stop / Double(num - 1)
            return (0..<num).map { $0 == num - 1 ? stop : Double($0) * step }
        }
        func trailing() -> [Int] {
            let delta = (Double(T) + (-Double(T) / Double(n))) - Double(T)   // numpy arange's step
            return (0..<n).map { npRound(Double(T) + Double($0) * delta) - 1 }
        }
        switch (sampler.isDPMSolver, spacing) {
        case (true, .linspace):
            return Array(linspace(Double(T - 1), n + 1).map(npRound).reversed().dropLast())
        case (true, .leading):
            let ratio = T / (n + 1)
            return (1...n).reversed().map { $0 * ratio }
        case (_, .linspace):
            return linspace(Double(T - 1), n).map(npRound).reversed()
        case (_, .leading):
            let ratio = T / n
            return (0..<n).reversed().map { $0 * ratio }
        case (_, .trailing):
            return trailing()
        }
    }

    /// The timesteps and step targets of `options` over `total` timesteps: DDPM and DPM-Solver++
    /// step to the next timestep (the clean image after the last), as diffusers' DDPMScheduler
    /// and DPMSolverMultistepScheduler; DDIM as `options.ddimTarget` says.
    public static func plan(_ options: SamplingOptions, total: Int) throws -> SamplingPlan {
        let steps = options.resolvedSteps(total: total)
        let spacing = options.resolvedSpacing
        try require(steps <= total, "\(steps) sampling steps is more than the model's \(total) diffusion timesteps")
        let ts = timesteps(count: steps, of: total, spacing: spacing, sampler: options.sampler)
        for k in 0..<ts.count where ts[k] < 0 || ts[k] >= total || (k > 0 && ts[k] >= ts[k - 1]) {
            throw MedSynthError.invalidArgument("\(steps) steps with '\(spacing.rawValue)' spacing do not give \(steps) distinct "
                + "timesteps of \(total) for \(options.sampler.rawValue); use fewer steps or another spacing")
        }
        var targets = (0..<ts.count).map { $0 + 1 < ts.count ? ts[$0 + 1] : -1 }
        if options.sampler == .ddim && options.ddimTarget == .diffusers {
            targets = ts.map { max(-1, $0 - total / steps) }
        }
        return SamplingPlan(timesteps: ts, targets: targets)
    }

    @inline(__always)
    package static func clipped(_ v: Float, _ clip: Bool) -> Float { clip ? min(1, max(-1, v)) : v }

    /// One DDPM ancestral step t → `previous` (t − 1 with all T steps; −1 is the clean image), as
    /// diffusers' DDPMScheduler.step with "fixed_small" variance: with α′ = ᾱ_t/ᾱ_prev, β′ = 1 − α′,
    ///   x = √ᾱ_prev·β′/(1−ᾱ_t)·x̂₀ + √α′·(1−ᾱ_prev)/(1−ᾱ_t)·x_t + σz,  σ² = max((1−ᾱ_prev)/(1−ᾱ_t)·β′, 1e-20)
    /// (no noise at t = 0). `noise` is z ~ N(0, I) (unused at t = 0).
    public static func ddpmStep(_ s: NoiseSchedule, _ prediction: PredictionType, output: UnsafePointer<Float>,
                                sample: UnsafeMutablePointer<Float>, t: Int, previous: Int, noise: UnsafePointer<Float>,
                                count: Int, clip: Bool) {
        let abT = s.alphaBar(t), abPrev = s.alphaBar(previous)
        let alpha = abT / abPrev, beta = 1 - alpha
        let c0 = Float(abPrev.squareRoot() * beta / (1 - abT))
        let ct = Float(alpha.squareRoot() * (1 - abPrev) / (1 - abT))
        let sigma = t > 0 ? Float(max((1 - abPrev) / (1 - abT) * beta, 1e-20).squareRoot()) : 0
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
                                     x0 buffer: UnsafeMutablePointer<Float>, count: Int, clip: Bool,
                                     noise: UnsafePointer<Float>? = nil) {
        for i in 0..<count {
            buffer[i] = clipped(s.decompose(prediction, output: output[i], sample: sample[i], t: t).x0, clip)
        }
        if next < 0 {
            // σ = 0 at the clean image: x = D, and the final step is first order
            sample.update(from: buffer, count: count)
            return
        }
        let lT = lambda(s, t), lNext = lambda(s, next), h = lNext - lT
        let alphaNext = s.alphaBar(next).squareRoot(), sigmaNext = (1 - s.alphaBar(next)).squareRoot()
        var ratio = Float(((1 - s.alphaBar(next)) / (1 - s.alphaBar(t))).squareRoot())
        var k = Float(-alphaNext * expm1(-h))   // −α_t·(e^{−h} − 1)
        var sigmaZ: Float = 0
        if noise != nil {
            // SDE variant: (σ_t/σ_s)·e^{−h}·x_s + α_t(1 − e^{−2h})·D + σ_t·√(1 − e^{−2h})·z
            ratio *= Float(exp(-h))
            k = Float(-alphaNext * expm1(-2 * h))
            sigmaZ = Float(sigmaNext * (-expm1(-2 * h)).squareRoot())
        }
        let z = noise ?? UnsafePointer(buffer)     // read only when sigmaZ ≠ 0
        if let previousX0, let previousT {
            let r = (lT - lambda(s, previousT)) / h
            let w0 = Float(1 + 1 / (2 * r)), w1 = Float(-1 / (2 * r))
            for i in 0..<count { sample[i] = ratio * sample[i] + k * (w0 * buffer[i] + w1 * previousX0[i]) + sigmaZ * z[i] }
        } else {
            for i in 0..<count { sample[i] = ratio * sample[i] + k * buffer[i] + sigmaZ * z[i] }
        }
    }
}
