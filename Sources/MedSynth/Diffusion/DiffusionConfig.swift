// Configuration and options of diffusion models, each declared once as a table (see
// MedSynthCore/IO/Options.swift): what is stored with a model, how it trains, how it samples.
// The defaults here are the only ones; Python passes what the user set and reads back the rest.

import MedSynthCore

public struct DiffusionConfig: Configurable {
    public var unet = UNetConfig()
    public var schedule: BetaSchedule = .linear
    /// T, the number of diffusion timesteps (Ho et al. 2020: 1000).
    public var timesteps = 1000
    public var betaStart = 1e-4, betaEnd = 0.02
    /// v prediction (Salimans & Ho 2022): x̂₀ = √ᾱ·x_t − √(1−ᾱ)·v̂ stays bounded at every t, where
    /// ε prediction's x̂₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ multiplies the error by up to 1/√ᾱ ≈ 50 at high
    /// noise; short-trained ε models give grainy images there (issue 13, docs/sampling.md: RGB smears,
    /// 1200 steps, 22 % noisy with ε, 0 % with v). Files name their prediction, so this default
    /// changes no saved model.
    public var prediction: PredictionType = .v
    public var seed: UInt64 = 0
    /// Intensity range of the training data, [low, high], mapped to [−1, 1]; nil until the first
    /// `fit` sets it ([0, 1] for integer images, the measured range otherwise).
    public var dataRangeSetting: [Float]? = nil
    /// Class names (one per class of a conditional model); default "0", "1", ...
    public var classNames: [String] = []
    /// The dtype the training images came in, which samples are returned in: uint8, uint16,
    /// float32 or float64; set by the first `fit`.
    public var dataDType = "float32"

    public init() {}

    public init(unet: UNetConfig) {
        self.unet = unet
        classNames = Self.defaultClassNames(unet.numClasses)
    }

    public var dataRange: (low: Float, high: Float)? {
        get { dataRangeSetting.map { ($0[0], $0[1]) } }
        set { dataRangeSetting = newValue.map { [$0.low, $0.high] } }
    }

    static func defaultClassNames(_ n: Int) -> [String] { (0..<max(0, min(n, 10_000))).map { String($0) } }

    public static let name = "diffusion model config"

    public static let options: [Option<DiffusionConfig>] = UNetConfig.options.map { $0.lifted(\DiffusionConfig.unet) } + [
        .choice("schedule", \.schedule, "Noise schedule: 'linear' (beta 1e-4 to 0.02, Ho et al. 2020) or 'cosine' (Nichol & Dhariwal 2021)."),
        .int("timesteps", \.timesteps, "T, the number of diffusion timesteps (Ho et al. 2020: 1000)."),
        .double("beta_start", \.betaStart, "First beta of the linear schedule (Ho et al. 2020)."),
        .double("beta_end", \.betaEnd, "Last beta of the linear schedule (Ho et al. 2020)."),
        .choice("prediction", \.prediction, "What the network predicts: 'v' (Salimans & Ho 2022; diffusers' prediction_type='v_prediction': clean few-step samples from short-trained models) or 'epsilon' (Ho et al. 2020; diffusers' 'epsilon')."),
        .seed("seed", \.seed, "Seeds weight initialisation (and training when fit is given no seed)."),
        .floats("data_range", \.dataRangeSetting, "[low, high] intensity range mapped to [-1, 1].").shown("set by the first fit: [0, 1] for integer images, the measured range otherwise"),
        .strings("class_names", \.classNames, "One name per class.").shown("from the labels"),
        .string("data_dtype", \.dataDType, "The dtype samples are returned in (uint8, uint16, float32, float64).").shown("the training images' dtype"),
    ]

    public func validate() throws {
        try unet.validate()
        try require(["uint8", "uint16", "float32", "float64"].contains(dataDType), "data_dtype must be uint8, uint16, float32 or float64")
        _ = try NoiseSchedule(schedule, steps: timesteps, betaStart: betaStart, betaEnd: betaEnd)
        if let r = dataRangeSetting {
            try require(r.count == 2 && r[0].isFinite && r[1].isFinite && r[0] < r[1], "data_range must be [low, high] with low < high")
        }
        try require(classNames.count == unet.numClasses, "class_names needs \(unet.numClasses) names, got \(classNames.count)")
    }

    /// Class names default to "0", "1", ...
    public mutating func resolve() {
        if classNames.isEmpty { classNames = Self.defaultClassNames(unet.numClasses) }
    }
}

public struct DiffusionTrainingOptions: Configurable {
    public var steps = 2000
    public var batchSize = 16
    /// AdamW at 1e-3, the rate for CPU-budget runs of a few thousand steps: on the RGB smears
    /// (28 px, 1200 steps, v prediction) the colour histogram's distance to the real one was 0.029
    /// against 0.107 at torch_ref.py's 2e-4 (docs/sampling.md); the warmup and the cosine decay
    /// keep the first and last steps small. Long runs (the paper preset) set 2e-4.
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0
    /// Linear warmup steps; nil: min(500, steps/10).
    public var warmupSteps: Int? = nil
    /// "cosine" (to 0 after warmup) or "constant".
    public var lrSchedule = "cosine"
    /// EMA decay (0 disables EMA). The decay in force warms up as min(decay, (1+n)/(10+n)) after n
    /// updates (diffusers' EMAModel without use_ema_warmup), so short runs do not average in the
    /// untrained start: up to ~1800 steps 0.999 and 0.995 are the same average (0.9926 at 1200).
    /// 0.9999 barely leaves its initialisation below ~20k steps.
    public var emaDecay: Float = 0.999
    /// Probability that a label is replaced by the null class (classifier-free guidance training,
    /// Ho & Salimans 2021; 0.1 to 0.2 is usual).
    public var pUncond: Float = 0.1
    /// min-SNR-γ loss weighting (Hang et al. 2023: w_t = min(SNR_t, γ)/(SNR_t + 1) for v
    /// prediction, γ = 5); 0 for the plain L_simple. It caps the weight of the easy low-noise
    /// timesteps, which short runs otherwise spend their steps on (docs/sampling.md).
    public var minSNRGamma: Double = 5
    public var gradClip: Float = 1
    public var augmentation = Augmentation()
    public var checkpoint: String? = nil
    public var checkpointEvery = 500
    public var resume = false
    /// nil: the model's seed.
    public var seed: Int? = nil
    /// The dtype the caller's images came in; the first fit records it (samples come back in it)
    /// and takes [0, 1] as the data range of integer images.
    public var dataDType: String? = nil

    public init() {}

    public static let name = "diffusion training"

    public static let options: [Option<DiffusionTrainingOptions>] = [
        .int("steps", \.steps, "Optimiser steps."),
        .int("batch_size", \.batchSize, "Images per step (torch_ref.py: 16)."),
        .float("lr", \.learningRate, "AdamW learning rate; 1e-3 suits CPU-budget runs of a few thousand steps (long runs: torch_ref.py's 2e-4, diffusers' example 1e-4)."),
        .float("weight_decay", \.weightDecay, "AdamW weight decay (decoupled, Loshchilov & Hutter 2019)."),
        .int("warmup_steps", \.warmupSteps, "Linear warmup steps.").shown("min(500, steps/10)"),
        .string("lr_schedule", \.lrSchedule, "'cosine' (decay to 0 after the warmup) or 'constant'."),
        .float("ema_decay", \.emaDecay, "Decay of the EMA of the weights that sampling uses; 0 disables it (0.995-0.999 suits runs below ~20k steps)."),
        .float("p_uncond", \.pUncond, "Probability that a label is dropped to the null class, for classifier-free guidance (Ho & Salimans 2021)."),
        .double("min_snr_gamma", \.minSNRGamma, "min-SNR-gamma loss weighting (Hang et al. 2023; 5 as in the paper); 0: the plain L_simple."),
        .float("grad_clip", \.gradClip, "Largest global gradient norm; 0 disables clipping."),
    ] + Augmentation.options(\DiffusionTrainingOptions.augmentation) + [
        .string("checkpoint", \.checkpoint, "Path of a checkpoint written atomically every checkpoint_every steps and at the end."),
        .int("checkpoint_every", \.checkpointEvery, "Steps between checkpoints."),
        .bool("resume", \.resume, "Continue from the checkpoint exactly as the uninterrupted run would."),
        .int("seed", \.seed, "Seeds the data order, noise, timesteps and label dropout.").shown("the model's seed"),
        .string("data_dtype", \.dataDType, "The dtype of the caller's images (uint8, uint16, float32, float64), recorded by the first fit.").shown("float32"),
    ]

    public func validate() throws {
        try require(steps >= 1 && steps <= 10_000_000, "steps must be between 1 and 10000000, got \(steps)")
        try require(batchSize >= 1 && batchSize <= 4096, "batch_size must be between 1 and 4096, got \(batchSize)")
        try require(learningRate.isFinite && learningRate > 0 && learningRate < 1, "lr must be in (0, 1), got \(learningRate)")
        try require(weightDecay.isFinite && weightDecay >= 0 && weightDecay <= 10, "weight_decay must be between 0 and 10")
        if let w = warmupSteps { try require(w >= 0 && w < steps, "warmup_steps must be in [0, steps)") }
        try require(["cosine", "constant"].contains(lrSchedule), "lr_schedule must be 'cosine' or 'constant'")
        try require(emaDecay.isFinite && emaDecay >= 0 && emaDecay < 1, "ema_decay must be in [0, 1) (0 disables EMA)")
        try require(pUncond.isFinite && pUncond >= 0 && pUncond <= 1, "p_uncond must be in [0, 1]")
        try require(minSNRGamma.isFinite && minSNRGamma >= 0, "min_snr_gamma must be non-negative (0 disables the weighting)")
        try require(gradClip.isFinite && gradClip >= 0, "grad_clip must be non-negative (0 disables it)")
        try augmentation.validate()
        try require(checkpointEvery >= 1, "checkpoint_every must be at least 1")
        if resume { try require(checkpoint != nil, "resume needs a checkpoint path") }
        if let s = seed { try require(s >= 0, "seed must be a non-negative integer") }
        if let d = dataDType { try require(["uint8", "uint16", "float32", "float64"].contains(d), "data_dtype must be uint8, uint16, float32 or float64") }
    }

    var schedule: LRSchedule {
        let warmup = warmupSteps ?? min(500, steps / 10)
        return lrSchedule == "cosine"
            ? .cosine(warmupSteps: warmup, totalSteps: steps, minLR: 0)
            : (warmup > 0 ? .cosine(warmupSteps: warmup, totalSteps: Int.max / 2, minLR: learningRate) : .constant)
    }
}

public struct SamplingOptions: Configurable {
    /// DPM-Solver++(2M) SDE with Karras spacing ("DPM++ 2M SDE Karras") at 20 steps: the fast
    /// sampler that stays as clean as DDPM on short-trained models (issue 13, docs/sampling.md).
    /// The deterministic samplers (ddim with eta 0, dpm_solver++) follow the probability-flow ODE,
    /// which carries a short-trained ε model's denoising errors into the image as grain at any step
    /// count (DDIM 250 steps was as noisy as 50); the SDE replaces part of the noise at every step
    /// and lets the model correct them. With v prediction (the default) all are free of grain, and
    /// the SDE's images are the closest to the real ones (fewest smooth, closest histogram).
    public var sampler: SamplerKind = .dpmSolverSDE
    /// Model evaluations per image; nil: `defaultSteps` of the sampler.
    public var steps: Int? = nil
    /// DDIM's η: 0 is deterministic, 1 matches DDPM's variance.
    public var eta: Double = 0
    /// Classifier-free guidance scale s: ε̂ = ε_u + s·(ε_c − ε_u). 1 is plain conditional sampling
    /// (one model evaluation per step); Ho & Salimans report their best FID near s = 1.3 and
    /// sharper, less varied samples as s grows.
    public var guidanceScale: Float = 1.5
    public var seed: UInt64 = 0
    public var batchSize = 32
    public var useEMA = true
    /// Clip x̂₀ to [−1, 1] inside every step (diffusers' clip_sample).
    public var clip = true
    /// Clamp the final images to the data range (diffusers' pipelines clamp to [0, 1]).
    public var clampOutput = true
    /// nil: the spacing diffusers' scheduler for the sampler defaults to.
    public var spacing: TimestepSpacing? = nil
    public var ddimTarget: DDIMTarget = .diffusers

    /// Steps of DDIM and DPM-Solver++ when `steps` is not set.
    static let fastSteps = 50
    /// Steps of DPM-Solver++ SDE when `steps` is not set: on short-trained models more steps make
    /// its images smoother than the real ones (covid_ct 28 px, 1200 training steps: 6 % of images
    /// below the real images' 1st percentile of high-frequency energy at 20 steps, 38 % at 50),
    /// fewer noisier (10 steps: 6 % noisy).
    static let sdeSteps = 20

    public init() {}

    /// The steps `sampler` takes when `steps` is not set: every timestep (T) for DDPM.
    public static func defaultSteps(_ sampler: SamplerKind, total: Int) -> Int {
        switch sampler {
        case .ddpm: total
        case .dpmSolverSDE: sdeSteps
        case .ddim, .dpmSolver: fastSteps
        }
    }

    /// The model evaluations per image these options ask for over `total` timesteps.
    public func resolvedSteps(total: Int) -> Int { steps ?? Self.defaultSteps(sampler, total: total) }

    /// The spacing in force: as set, or diffusers' default for the sampler's scheduler
    /// (DDPMScheduler and DDIMScheduler: "leading"; DPMSolverMultistepScheduler: "linspace"),
    /// except for the SDE variant, which defaults to Karras spacing: the pairing known as
    /// "DPM++ 2M SDE Karras" (diffusers: use_karras_sigmas=True, algorithm_type="sde-dpmsolver++"),
    /// whose last evaluations near t = 0 restore fine texture that linspace's last step (from
    /// t ≈ T/n) smooths away.
    public var resolvedSpacing: TimestepSpacing {
        spacing ?? (sampler == .dpmSolverSDE ? .karras : sampler.isDPMSolver ? .linspace : .leading)
    }

    public static let name = "sampling"

    public static let options: [Option<SamplingOptions>] = [
        .choice("sampler", \.sampler, "'dpm_solver++_sde' (DPM-Solver++(2M) SDE, Lu et al. 2022, diffusers' sde-dpmsolver++, Karras spacing: as clean as DDPM on short-trained models in 20 steps), 'ddpm' (Ho et al. 2020, ancestral: the reference, T steps), 'ddim' (Song et al. 2021; eta 0 is deterministic) or 'dpm_solver++' (Lu et al. 2022, 2M, deterministic). The deterministic samplers follow the probability-flow ODE, sharp and reproducible on well-trained models; on short-trained epsilon-prediction models they are grainy whatever the step count (issue 13: 44 % of images noisier than the real ones, against 0 % for dpm_solver++_sde 20 and ddpm), on v-prediction models (the default) clean but often smoother than the real images."),
        .int("steps", \.steps, "Model evaluations per image (with guidance each evaluates the network twice, as one batch).").shown("\(sdeSteps) for dpm_solver++_sde, T (every timestep) for ddpm, \(fastSteps) for ddim and dpm_solver++"),
        .double("eta", \.eta, "DDIM's eta: 0 deterministic, 1 DDPM's variance."),
        .float("guidance_scale", \.guidanceScale, "Classifier-free guidance scale s (eps_u + s (eps_c - eps_u)); 1 disables guidance. Ho & Salimans' best FID was near 1.3."),
        .seed("seed", \.seed, "Seeds each image's noise: the same seed gives the same images."),
        .int("batch_size", \.batchSize, "Images denoised together."),
        .bool("use_ema", \.useEMA, "Sample with the EMA weights when the model has them."),
        .bool("clip", \.clip, "Clip the predicted clean image x0 to [-1, 1] inside every step (diffusers' clip_sample; DDIM then re-derives eps from the clipped x0, as diffusers' use_clipped_model_output=True). False: no clipping inside the sampler."),
        .bool("clamp_output", \.clampOutput, "Clamp the final images to the training data's range, as diffusers' pipelines clamp to [0, 1]. False returns the sampler's last x mapped linearly from [-1, 1] to the data range, unclamped (to compare with another implementation)."),
        .choice("spacing", \.spacing, "How the steps are placed, by diffusers' rules: among the T timesteps as the sampler's scheduler places them ('linspace', 'leading' or 'trailing'), or by noise level from sigma(T-1) to sigma(0) ('karras': Karras et al. 2022, rho = 7, diffusers' use_karras_sigmas; 'log_snr': uniform in log-SNR, Lu et al. 2022, diffusers' use_lu_lambdas), where the network sees the nearest timestep and the step uses the exact noise level (DDIM then steps to the next level).").shown("diffusers' default for the sampler: 'leading' for ddpm and ddim, 'linspace' for dpm_solver++; 'karras' for dpm_solver++_sde (DPM++ 2M SDE Karras)"),
        .choice("ddim_target", \.ddimTarget, "Where a DDIM step from t lands: 'diffusers' (t - T//steps, as DDIMScheduler) or 'scheduled' (the next timestep evaluated, the clean image after the last). They differ only with linspace or trailing spacing, where diffusers' rule starts each step a little away from where the last one ended; 'scheduled' is the consistent discretisation of the DDIM ODE."),
    ]

    public func validate() throws {
        if let steps { try require(steps >= 1 && steps <= 100_000, "steps must be between 1 and 100000") }
        try require(eta.isFinite && eta >= 0 && eta <= 1, "eta must be in [0, 1]")
        try require(guidanceScale.isFinite && guidanceScale >= 0 && guidanceScale <= 100, "guidance_scale must be between 0 and 100")
        try require(batchSize >= 1 && batchSize <= 4096, "batch_size must be between 1 and 4096")
    }
}

/// Which weights a saved diffusion model holds.
public enum SavedWeights: String, CaseIterable {
    case both, ema, raw
}

public struct DiffusionSaveOptions: Configurable {
    public var weights: SavedWeights = .both

    public init() {}

    public static let name = "diffusion save"

    public static let options: [Option<DiffusionSaveOptions>] = [
        .choice("weights", \.weights, "'both' (the raw weights under the plain names and the EMA weights under 'ema.': everything to sample or train on), 'ema' (the EMA weights under the plain names: a module of the same layout loads the file with strict=True, and medsynth loads it as a model whose weights are the EMA weights) or 'raw' (the raw weights alone)."),
    ]

    public func validate() throws {}
}
