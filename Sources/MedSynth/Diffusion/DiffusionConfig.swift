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
    public var prediction: PredictionType = .epsilon
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
        .choice("prediction", \.prediction, "What the network predicts: 'epsilon' (Ho et al. 2020) or 'v' (Salimans & Ho 2022)."),
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
    /// AdamW, lr 2e-4 as ../shared/bench/torch_ref.py (diffusers' example uses 1e-4).
    public var learningRate: Float = 2e-4
    public var weightDecay: Float = 0
    /// Linear warmup steps; nil: min(500, steps/10).
    public var warmupSteps: Int? = nil
    /// "cosine" (to 0 after warmup) or "constant".
    public var lrSchedule = "cosine"
    /// EMA decay (0 disables EMA). 0.999 suits the few-thousand-step runs of small medical sets;
    /// 0.9999 barely leaves its initialisation below ~20k steps.
    public var emaDecay: Float = 0.999
    /// Probability that a label is replaced by the null class (classifier-free guidance training,
    /// Ho & Salimans 2021; 0.1 to 0.2 is usual).
    public var pUncond: Float = 0.1
    /// min-SNR-γ loss weighting (Hang et al. 2023); nil for the plain L_simple.
    public var minSNRGamma: Double? = nil
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
        .float("lr", \.learningRate, "AdamW learning rate (torch_ref.py: 2e-4; diffusers' example 1e-4)."),
        .float("weight_decay", \.weightDecay, "AdamW weight decay (decoupled, Loshchilov & Hutter 2019)."),
        .int("warmup_steps", \.warmupSteps, "Linear warmup steps.").shown("min(500, steps/10)"),
        .string("lr_schedule", \.lrSchedule, "'cosine' (decay to 0 after the warmup) or 'constant'."),
        .float("ema_decay", \.emaDecay, "Decay of the EMA of the weights that sampling uses; 0 disables it (0.995-0.999 suits runs below ~20k steps)."),
        .float("p_uncond", \.pUncond, "Probability that a label is dropped to the null class, for classifier-free guidance (Ho & Salimans 2021)."),
        .double("min_snr_gamma", \.minSNRGamma, "min-SNR-gamma loss weighting (Hang et al. 2023; 5 in the paper); null: L_simple."),
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
        if let g = minSNRGamma { try require(g.isFinite && g > 0, "min_snr_gamma must be positive") }
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
    public var sampler: SamplerKind = .ddim
    /// Model evaluations for DDIM and DPM-Solver++ (DDPM always takes T).
    public var steps = 50
    /// DDIM's η: 0 is deterministic, 1 matches DDPM's variance.
    public var eta: Double = 0
    /// Classifier-free guidance scale s: ε̂ = ε_u + s·(ε_c − ε_u). 1 is plain conditional sampling
    /// (one model evaluation per step); Ho & Salimans report their best FID near s = 1.3 and
    /// sharper, less varied samples as s grows.
    public var guidanceScale: Float = 1.5
    public var seed: UInt64 = 0
    public var batchSize = 32
    public var useEMA = true
    public var clip = true
    public var spacing: TimestepSpacing = .linspace

    public init() {}

    public static let name = "sampling"

    public static let options: [Option<SamplingOptions>] = [
        .choice("sampler", \.sampler, "'ddim' (Song et al. 2021), 'ddpm' (Ho et al. 2020, T steps) or 'dpm_solver++' (Lu et al. 2022, 2M)."),
        .int("steps", \.steps, "Model evaluations of DDIM and DPM-Solver++ (DDPM always takes T)."),
        .double("eta", \.eta, "DDIM's eta: 0 deterministic, 1 DDPM's variance."),
        .float("guidance_scale", \.guidanceScale, "Classifier-free guidance scale s (eps_u + s (eps_c - eps_u)); 1 disables guidance. Ho & Salimans' best FID was near 1.3."),
        .seed("seed", \.seed, "Seeds each image's noise: the same seed gives the same images."),
        .int("batch_size", \.batchSize, "Images denoised together."),
        .bool("use_ema", \.useEMA, "Sample with the EMA weights when the model has them."),
        .bool("clip", \.clip, "Clip the predicted clean image to [-1, 1] at every step."),
        .choice("spacing", \.spacing, "How the steps are spread over the T timesteps: 'linspace', 'leading' or 'trailing'."),
    ]

    public func validate() throws {
        try require(steps >= 1 && steps <= 100_000, "steps must be between 1 and 100000")
        try require(eta.isFinite && eta >= 0 && eta <= 1, "eta must be in [0, 1]")
        try require(guidanceScale.isFinite && guidanceScale >= 0 && guidanceScale <= 100, "guidance_scale must be between 0 and 100")
        try require(batchSize >= 1 && batchSize <= 4096, "batch_size must be between 1 and 4096")
    }
}
