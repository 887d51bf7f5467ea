// Where a sampler evaluates the network: a few of the T training timesteps, placed by one of
// diffusers' rules, and the noise level each step starts from and lands at.
//
// Integer spacings (diffusers' `timestep_spacing`, Table 2 of Lin et al. 2024, "Common Diffusion
// Noise Schedules and Sample Steps are Flawed") pick timesteps; each step then runs between the
// ᾱ of its timestep and of its target. Noise-level spacings (Karras et al. 2022, "Elucidating the
// Design Space of Diffusion-Based Generative Models", eq. 5, ρ = 7; Lu et al. 2022, DPM-Solver,
// uniform in log-SNR) place the noise levels σ = √((1−ᾱ)/ᾱ) themselves, from σ(T−1) down to σ(0),
// as diffusers' DPMSolverMultistepScheduler does with use_karras_sigmas / use_lu_lambdas: the
// network sees the timestep nearest each σ (interpolated in log σ, then rounded) and the step
// uses the exact σ. They put several evaluations below t ≈ 50, where a short-trained model's
// samples keep or lose their fine texture.

import MedSynthCore

import Glibc

/// How a few sampling steps are spread over the T training timesteps.
public enum TimestepSpacing: String, CaseIterable {
    /// round(linspace(0, T−1, n)) descending (DDPM, DDIM); DPM-Solver++ takes n + 1 points and
    /// drops the 0 (its last step goes to the clean image). The default of DPMSolverMultistepScheduler.
    case linspace
    /// k·⌊T/n⌋ for k = n−1 … 0 (DDPM, DDIM); DPM-Solver++ k·⌊T/(n+1)⌋ for k = n … 1. The default
    /// of DDPMScheduler and DDIMScheduler.
    case leading
    /// round(T − k·T/n) − 1 for k = 0 … n−1: always starts at T−1.
    case trailing
    /// σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, ρ = 7 (Karras et al. 2022;
    /// diffusers' use_karras_sigmas=True), from σ(T−1) to σ(0).
    case karras
    /// log σ uniform from σ(T−1) to σ(0), i.e. uniform in log-SNR (Lu et al. 2022; diffusers'
    /// use_lu_lambdas=True).
    case logSNR = "log_snr"

    /// Spacings that place noise levels rather than timesteps.
    var placesNoiseLevels: Bool { self == .karras || self == .logSNR }
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

/// The timesteps a sampler evaluates the network at, in order, where each step lands (−1: the
/// clean image), and the ᾱ each step runs from and to (ᾱ of the timesteps for integer spacings;
/// the exact noise levels of Karras and log-SNR spacing, which the timesteps only round; 1 for
/// the clean image).
public struct SamplingPlan: Equatable {
    public let timesteps: [Int]
    public let targets: [Int]
    public let alphaBars: [Double]
    public let targetAlphaBars: [Double]
}

extension DiffusionSampling {
    /// numpy's round (half to even), as diffusers rounds timesteps.
    static func npRound(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }

    /// diffusers' timesteps of `sampler` for `steps` model evaluations over `total` training
    /// timesteps, for the integer spacings. linspace and arange are evaluated as numpy evaluates
    /// them (start + k·step, the last point exactly the end), so ties round the same way. Where
    /// diffusers' trailing rule yields one extra (negative) timestep (numpy's arange length, e.g.
    /// 61 steps of 1000), the first n are kept.
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
        case (_, .karras), (_, .logSNR):
            return []
        }
    }

    /// The noise levels σ = √((1−ᾱ)/ᾱ) of Karras or log-SNR spacing, from σ(T−1) down to σ(0), as
    /// diffusers' _convert_to_karras (ρ = 7) and _convert_to_lu (ρ = 1 on log σ) compute them.
    public static func noiseLevels(count n: Int, schedule: NoiseSchedule, spacing: TimestepSpacing) -> [Double] {
        let sigmaMax = schedule.sigma(schedule.steps - 1), sigmaMin = schedule.sigma(0)
        let ramp = (0..<n).map { n > 1 ? Double($0) / Double(n - 1) : 0 }
        switch spacing {
        case .karras:
            let rho = 7.0, maxInv = pow(sigmaMax, 1 / rho), minInv = pow(sigmaMin, 1 / rho)
            return ramp.map { pow(maxInv + $0 * (minInv - maxInv), rho) }
        default:
            let high = log(sigmaMax), low = log(sigmaMin)
            return ramp.map { exp(high + $0 * (low - high)) }
        }
    }

    /// The (fractional) timestep of noise level σ, interpolated linearly in log σ between the
    /// schedule's neighbouring timesteps (diffusers' _sigma_to_t).
    public static func timestep(ofSigma sigma: Double, schedule: NoiseSchedule) -> Double {
        let logSigma = log(max(sigma, 1e-10)), T = schedule.steps
        // the last timestep whose log σ is at most log_sigma (0 when none), at most T − 2
        var low = 0
        for t in 0..<T where log(schedule.sigma(t)) <= logSigma { low = t }
        low = min(low, T - 2)
        let lo = log(schedule.sigma(low)), hi = log(schedule.sigma(low + 1))
        let w = min(1, max(0, (lo - logSigma) / (lo - hi)))
        return (1 - w) * Double(low) + w * Double(low + 1)
    }

    /// The plan of `options` on `schedule`. Integer spacings: DDPM and DPM-Solver++ step to the
    /// next timestep (the clean image after the last), as diffusers' DDPMScheduler and
    /// DPMSolverMultistepScheduler; DDIM as `options.ddimTarget` says. Karras and log-SNR
    /// spacing: every sampler steps to the next noise level, the clean image after σ(0); the
    /// network sees each level's rounded timestep (truncated on the cosine schedule, as diffusers).
    public static func plan(_ options: SamplingOptions, schedule: NoiseSchedule) throws -> SamplingPlan {
        let total = schedule.steps
        let steps = options.resolvedSteps(total: total)
        let spacing = options.resolvedSpacing
        try require(steps <= total, "\(steps) sampling steps is more than the model's \(total) diffusion timesteps")
        if spacing.placesNoiseLevels {
            let sigmas = noiseLevels(count: steps, schedule: schedule, spacing: spacing)
            let ts = sigmas.map { sigma -> Int in
                let t = timestep(ofSigma: sigma, schedule: schedule)
                return min(total - 1, max(0, schedule.kind == .cosine ? Int(t) : npRound(t)))
            }
            let alphaBars = sigmas.map { 1 / (1 + $0 * $0) }
            return SamplingPlan(timesteps: ts, targets: (0..<steps).map { $0 + 1 < steps ? ts[$0 + 1] : -1 },
                                alphaBars: alphaBars, targetAlphaBars: (0..<steps).map { $0 + 1 < steps ? alphaBars[$0 + 1] : 1 })
        }
        let ts = timesteps(count: steps, of: total, spacing: spacing, sampler: options.sampler)
        for k in 0..<ts.count where ts[k] < 0 || ts[k] >= total || (k > 0 && ts[k] >= ts[k - 1]) {
            throw MedSynthError.invalidArgument("\(steps) steps with '\(spacing.rawValue)' spacing do not give \(steps) distinct "
                + "timesteps of \(total) for \(options.sampler.rawValue); use fewer steps or another spacing")
        }
        var targets = (0..<ts.count).map { $0 + 1 < ts.count ? ts[$0 + 1] : -1 }
        if options.sampler == .ddim && options.ddimTarget == .diffusers {
            targets = ts.map { max(-1, $0 - total / steps) }
        }
        return SamplingPlan(timesteps: ts, targets: targets, alphaBars: ts.map(schedule.alphaBar),
                            targetAlphaBars: targets.map(schedule.alphaBar))
    }
}
