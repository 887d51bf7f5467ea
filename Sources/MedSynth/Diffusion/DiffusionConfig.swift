// Configuration and options of diffusion models: what is stored with a model, how it trains,
// how it samples. Each parses from the JSON the Python layer sends and rejects unknown keys.

import MedSynthCore

public struct DiffusionConfig {
    public var unet: UNetConfig
    public var schedule: BetaSchedule = .linear
    /// T, the number of diffusion timesteps (Ho et al. 2020: 1000).
    public var timesteps = 1000
    public var betaStart = 1e-4, betaEnd = 0.02
    public var prediction: PredictionType = .epsilon
    public var seed: UInt64 = 0
    /// Intensity range of the training data, mapped to [−1, 1]; set by the first `fit`.
    public var dataRange: (low: Float, high: Float)? = nil
    public var classNames: [String] = []
    /// The dtype the training images came in (kept for the Python layer, which returns samples in
    /// it): uint8, uint16, float32 or float64.
    public var dataDType = "float32"

    public init(unet: UNetConfig) {
        self.unet = unet
        classNames = (0..<max(0, min(unet.numClasses, 10_000))).map { String($0) }
    }

    package static let keys: Set<String> = UNetConfig.keys.union(["schedule", "timesteps", "beta_start", "beta_end", "prediction",
                                                          "seed", "data_range", "class_names", "data_dtype", "parameters",
                                                          "trained_steps", "ema_updates"])

    public init(json: JSON) throws {
        try json.rejectUnknownKeys(Self.keys, in: "diffusion model config")
        var unetJSON: [(String, JSON)] = []
        for key in UNetConfig.keys { if let v = json[key] { unetJSON.append((key, v)) } }
        self.init(unet: try UNetConfig(json: .object(unetJSON)))
        if let s = try json.string("schedule") {
            guard let k = BetaSchedule(rawValue: s) else { throw MedSynthError.invalidArgument("schedule must be 'linear' or 'cosine', got '\(s)'") }
            schedule = k
        }
        if let v = try json.int("timesteps") { timesteps = v }
        if let v = try json.double("beta_start") { betaStart = v }
        if let v = try json.double("beta_end") { betaEnd = v }
        if let s = try json.string("prediction") {
            guard let p = PredictionType(rawValue: s) else { throw MedSynthError.invalidArgument("prediction must be 'epsilon' or 'v', got '\(s)'") }
            prediction = p
        }
        if let v = try json.seed() { seed = v }
        if let r = try json.doubleArray("data_range") {
            try require(r.count == 2 && r[0].isFinite && r[1].isFinite && r[0] < r[1], "data_range must be [low, high] with low < high")
            dataRange = (Float(r[0]), Float(r[1]))
        }
        if let names = json["class_names"]?.array {
            classNames = try names.map { n in
                guard let s = n.string else { throw MedSynthError.invalidArgument("class_names must be strings") }
                return s
            }
        }
        if let d = try json.string("data_dtype") { dataDType = d }
        try validate()
    }

    public func validate() throws {
        try unet.validate()
        try require(["uint8", "uint16", "float32", "float64"].contains(dataDType), "data_dtype must be uint8, uint16, float32 or float64")
        _ = try NoiseSchedule(schedule, steps: timesteps, betaStart: betaStart, betaEnd: betaEnd)
        try require(classNames.count == unet.numClasses, "class_names needs \(unet.numClasses) names, got \(classNames.count)")
    }

    public func json(extra: [(String, JSON)] = []) -> JSON {
        guard case .object(var pairs) = unet.json else { return unet.json }
        pairs += [
            ("schedule", .string(schedule.rawValue)), ("timesteps", .number(Double(timesteps))),
            ("beta_start", .number(betaStart)), ("beta_end", .number(betaEnd)),
            ("prediction", .string(prediction.rawValue)), ("seed", .number(Double(seed))),
            ("data_range", dataRange.map { .array([.number(Double($0.low)), .number(Double($0.high))]) } ?? .null),
            ("class_names", .array(classNames.map { .string($0) })), ("data_dtype", .string(dataDType)),
        ]
        return .object(pairs + extra)
    }
}

/// Small random geometric changes for training, all off by default: anatomy has a left and a
/// right, so flips are the user's decision (lucidrains' Trainer flips by default; see
/// ../shared/notes/diffusion.md).
public struct Augmentation: Equatable {
    public var horizontalFlip = false
    public var verticalFlip = false
    /// Largest shift in pixels (uniform in [−t, t] on each axis).
    public var translate: Float = 0
    /// Largest rotation in degrees (uniform in [−r, r]).
    public var rotate: Float = 0

    public init() {}
    public var isIdentity: Bool { !horizontalFlip && !verticalFlip && translate == 0 && rotate == 0 }
}

public struct DiffusionTrainingOptions {
    public var steps = 1000
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
    public var seed: UInt64 = 0

    package static let keys: Set<String> = ["steps", "batch_size", "lr", "weight_decay", "warmup_steps", "lr_schedule", "ema_decay",
                                    "p_uncond", "min_snr_gamma", "grad_clip", "hflip", "vflip", "translate", "rotate",
                                    "checkpoint", "checkpoint_every", "resume", "seed"]

    public init() {}

    public init(json: JSON) throws {
        try json.rejectUnknownKeys(Self.keys, in: "diffusion training")
        if let v = try json.int("steps") { steps = v }
        if let v = try json.int("batch_size") { batchSize = v }
        if let v = try json.double("lr") { learningRate = Float(v) }
        if let v = try json.double("weight_decay") { weightDecay = Float(v) }
        if let v = try json.int("warmup_steps") { warmupSteps = v }
        if let v = try json.string("lr_schedule") { lrSchedule = v }
        if let v = try json.double("ema_decay") { emaDecay = Float(v) }
        if let v = try json.double("p_uncond") { pUncond = Float(v) }
        if let v = try json.double("min_snr_gamma") { minSNRGamma = v }
        if let v = try json.double("grad_clip") { gradClip = Float(v) }
        if let v = try json.bool("hflip") { augmentation.horizontalFlip = v }
        if let v = try json.bool("vflip") { augmentation.verticalFlip = v }
        if let v = try json.double("translate") { augmentation.translate = Float(v) }
        if let v = try json.double("rotate") { augmentation.rotate = Float(v) }
        if let v = try json.string("checkpoint") { checkpoint = v }
        if let v = try json.int("checkpoint_every") { checkpointEvery = v }
        if let v = try json.bool("resume") { resume = v }
        if let v = try json.seed() { seed = v }
        try validate()
    }

    public func validate() throws {
        try require(steps >= 1 && steps <= 10_000_000, "steps must be between 1 and 10000000, got \(steps)")
        try require(batchSize >= 1 && batchSize <= 4096, "batch_size must be between 1 and 4096, got \(batchSize)")
        try require(learningRate.isFinite && learningRate > 0 && learningRate < 1, "lr must be in (0, 1), got \(learningRate)")
        try require(weightDecay.isFinite && weightDecay >= 0, "weight_decay must be non-negative")
        if let w = warmupSteps { try require(w >= 0 && w < steps, "warmup_steps must be in [0, steps)") }
        try require(["cosine", "constant"].contains(lrSchedule), "lr_schedule must be 'cosine' or 'constant'")
        try require(emaDecay >= 0 && emaDecay < 1, "ema_decay must be in [0, 1) (0 disables EMA)")
        try require(pUncond >= 0 && pUncond <= 1, "p_uncond must be in [0, 1]")
        if let g = minSNRGamma { try require(g.isFinite && g > 0, "min_snr_gamma must be positive") }
        try require(gradClip.isFinite && gradClip >= 0, "grad_clip must be non-negative (0 disables it)")
        try require(augmentation.translate >= 0 && augmentation.translate <= 64, "translate must be between 0 and 64 pixels")
        try require(augmentation.rotate >= 0 && augmentation.rotate <= 180, "rotate must be between 0 and 180 degrees")
        try require(checkpointEvery >= 1, "checkpoint_every must be at least 1")
        if resume { try require(checkpoint != nil, "resume needs a checkpoint path") }
    }

    package var schedule: LRSchedule {
        let warmup = warmupSteps ?? min(500, steps / 10)
        return lrSchedule == "cosine"
            ? .cosine(warmupSteps: warmup, totalSteps: steps, minLR: 0)
            : (warmup > 0 ? .cosine(warmupSteps: warmup, totalSteps: Int.max / 2, minLR: learningRate) : .constant)
    }

    /// The options that must match for a checkpoint to be resumed exactly.
    package var resumeKey: JSON {
        .object([("steps", .number(Double(steps))), ("batch_size", .number(Double(batchSize))),
                 ("seed", .number(Double(seed))), ("lr", .number(Double(learningRate)))])
    }
}

public struct SamplingOptions {
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

    package static let keys: Set<String> = ["sampler", "steps", "eta", "guidance_scale", "seed", "batch_size", "use_ema", "clip", "spacing"]

    public init() {}

    public init(json: JSON) throws {
        try json.rejectUnknownKeys(Self.keys, in: "sampling")
        if let s = try json.string("sampler") {
            guard let k = SamplerKind(rawValue: s) else {
                throw MedSynthError.invalidArgument("sampler must be one of \(SamplerKind.allCases.map { $0.rawValue }.joined(separator: ", ")), got '\(s)'")
            }
            sampler = k
        }
        if let v = try json.int("steps") { steps = v }
        if let v = try json.double("eta") { eta = v }
        if let v = try json.double("guidance_scale") { guidanceScale = Float(v) }
        if let v = try json.seed() { seed = v }
        if let v = try json.int("batch_size") { batchSize = v }
        if let v = try json.bool("use_ema") { useEMA = v }
        if let v = try json.bool("clip") { clip = v }
        if let s = try json.string("spacing") {
            guard let k = TimestepSpacing(rawValue: s) else { throw MedSynthError.invalidArgument("spacing must be linspace, leading or trailing") }
            spacing = k
        }
        try validate()
    }

    public func validate() throws {
        try require(steps >= 1 && steps <= 100_000, "steps must be between 1 and 100000")
        try require(eta.isFinite && eta >= 0 && eta <= 1, "eta must be in [0, 1]")
        try require(guidanceScale.isFinite && guidanceScale >= 0 && guidanceScale <= 100, "guidance_scale must be between 0 and 100")
        try require(batchSize >= 1 && batchSize <= 4096, "batch_size must be between 1 and 4096")
    }
}
