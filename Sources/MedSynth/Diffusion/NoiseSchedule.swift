// The forward (noising) process of DDPM and the quantities samplers need.
//
//   q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) I),   ᾱ_t = Π_{s≤t} (1 − β_s)          (Ho et al. 2020)
// Schedules: linear β from 1e-4 to 0.02 (Ho et al.), or cosine ᾱ(t) = f(t)/f(0),
// f(t) = cos²(((t/T) + s)/(1 + s) · π/2), s = 0.008, β clipped at 0.999 (Nichol & Dhariwal 2021;
// diffusers "squaredcos_cap_v2"). Everything is kept in double precision; timesteps are 0-based.

import MedSynthCore

import Glibc

public enum BetaSchedule: String, CaseIterable {
    case linear, cosine
}

/// What the network predicts: the noise ε (Ho et al. 2020), or v = √ᾱ·ε − √(1−ᾱ)·x₀
/// (Salimans & Ho 2022, "Progressive Distillation").
public enum PredictionType: String, CaseIterable {
    case epsilon, v
}

public struct NoiseSchedule {
    public let kind: BetaSchedule
    public let betas: [Double]
    public let alphaBars: [Double]
    public var steps: Int { betas.count }

    public init(_ kind: BetaSchedule, steps: Int, betaStart: Double = 1e-4, betaEnd: Double = 0.02) throws {
        try require(steps >= 2 && steps <= 100_000, "the number of diffusion timesteps must be between 2 and 100000, got \(steps)")
        try require(betaStart > 0 && betaEnd < 1 && betaStart <= betaEnd, "betas must satisfy 0 < beta_start <= beta_end < 1")
        self.kind = kind
        var betas = [Double](repeating: 0, count: steps)
        switch kind {
        case .linear:
            // torch.linspace(beta_start, beta_end, T): the endpoints exactly
            for t in 0..<steps { betas[t] = betaStart + (betaEnd - betaStart) * Double(t) / Double(steps - 1) }
        case .cosine:
            func f(_ t: Double) -> Double { let c = cos((t / Double(steps) + 0.008) / 1.008 * Double.pi / 2); return c * c }
            for t in 0..<steps { betas[t] = min(1 - f(Double(t + 1)) / f(Double(t)), 0.999) }
        }
        self.betas = betas
        var product = 1.0
        alphaBars = betas.map { product *= 1 - $0; return product }
    }

    /// A schedule with the given β (for tests and custom schedules).
    package init(betas: [Double]) {
        kind = .linear
        self.betas = betas
        var product = 1.0
        alphaBars = betas.map { product *= 1 - $0; return product }
    }

    /// ᾱ at timestep t, with ᾱ(−1) = 1 (the clean image; DDIM's `set_alpha_to_one`).
    @inline(__always)
    public func alphaBar(_ t: Int) -> Double { t < 0 ? 1 : alphaBars[t] }

    /// Signal-to-noise ratio ᾱ/(1−ᾱ).
    public func snr(_ t: Int) -> Double { alphaBars[t] / (1 - alphaBars[t]) }

    /// The noise level σ = √((1−ᾱ)/ᾱ) of timestep t (x_t/√ᾱ = x₀ + σ·ε; diffusers' `sigmas`).
    public func sigma(_ t: Int) -> Double { ((1 - alphaBars[t]) / alphaBars[t]).squareRoot() }

    /// x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε for one image of `count` values.
    public func addNoise(x0: UnsafePointer<Float>, noise: UnsafePointer<Float>, t: Int,
                         into out: UnsafeMutablePointer<Float>, count: Int) {
        let a = Float(alphaBars[t].squareRoot()), s = Float((1 - alphaBars[t]).squareRoot())
        for i in 0..<count { out[i] = a * x0[i] + s * noise[i] }
    }

    /// The training target for one image: ε, or v = √ᾱ·ε − √(1−ᾱ)·x₀.
    public func target(_ prediction: PredictionType, x0: UnsafePointer<Float>, noise: UnsafePointer<Float>, t: Int,
                       into out: UnsafeMutablePointer<Float>, count: Int) {
        switch prediction {
        case .epsilon:
            out.update(from: noise, count: count)
        case .v:
            let a = Float(alphaBars[t].squareRoot()), s = Float((1 - alphaBars[t]).squareRoot())
            for i in 0..<count { out[i] = a * noise[i] - s * x0[i] }
        }
    }

    /// The loss weight of min-SNR-γ (Hang et al. 2023, arXiv 2303.09556): min(SNR, γ)/SNR for ε
    /// prediction, min(SNR, γ)/(SNR + 1) for v prediction.
    public func minSNRWeight(_ t: Int, gamma: Double, prediction: PredictionType) -> Float {
        let s = snr(t)
        return Float(prediction == .epsilon ? min(s, gamma) / s : min(s, gamma) / (s + 1))
    }

    /// (x̂₀, ε̂) from the network's output at timestep t for the current sample x_t (elementwise).
    @inline(__always)
    package func decompose(_ prediction: PredictionType, output: Float, sample: Float, t: Int) -> (x0: Float, eps: Float) {
        Self.decompose(prediction, output: output, sample: sample, alphaBar: alphaBars[t])
    }

    /// (x̂₀, ε̂) from the network's output for a sample x at noise level ᾱ (elementwise):
    /// ε: x̂₀ = (x − √(1−ᾱ)·ε̂)/√ᾱ; v: x̂₀ = √ᾱ·x − √(1−ᾱ)·v̂, ε̂ = √(1−ᾱ)·x + √ᾱ·v̂.
    @inline(__always)
    package static func decompose(_ prediction: PredictionType, output: Float, sample: Float, alphaBar: Double) -> (x0: Float, eps: Float) {
        let a = alphaBar.squareRoot(), s = (1 - alphaBar).squareRoot()
        switch prediction {
        case .epsilon:
            return (Float((Double(sample) - s * Double(output)) / a), output)
        case .v:
            return (Float(a * Double(sample) - s * Double(output)), Float(s * Double(sample) + a * Double(output)))
        }
    }
}
