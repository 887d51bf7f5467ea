// Options of a classifier training run, parsed from the JSON the Python layer sends.

import MedSynthCore

public struct ClassifierTrainingOptions {
    public var epochs = 10
    public var batchSize = 32
    /// AdamW defaults from torch.optim.AdamW (the paper trains every CNN with AdamW).
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 1e-2
    public var optimizer = "adamw"
    public var momentum: Float = 0.9
    public var schedule = "constant"
    public var warmupEpochs = 0
    public var stepSizeEpochs = 10
    public var gamma: Float = 0.1
    public var labelSmoothing: Float = 0
    public var classWeights: [Float]? = nil
    /// Stop when the monitored loss has not improved for this many epochs (0: never).
    public var earlyStoppingPatience = 0
    public var restoreBest = true
    public var gradClip: Float = 0
    public var checkpoint: String? = nil
    public var resume = false
    public var seed: UInt64 = 0

    package static let keys: Set<String> = ["epochs", "batch_size", "lr", "weight_decay", "optimizer", "momentum", "schedule",
                                    "warmup_epochs", "step_size_epochs", "gamma", "label_smoothing", "class_weights",
                                    "early_stopping_patience", "restore_best", "grad_clip", "checkpoint", "resume", "seed"]

    public init() {}

    public init(json: JSON) throws {
        try json.rejectUnknownKeys(Self.keys, in: "training")
        if let v = try json.int("epochs") { epochs = v }
        if let v = try json.int("batch_size") { batchSize = v }
        if let v = try json.double("lr") { learningRate = Float(v) }
        if let v = try json.double("weight_decay") { weightDecay = Float(v) }
        if let v = try json.string("optimizer") { optimizer = v }
        if let v = try json.double("momentum") { momentum = Float(v) }
        if let v = try json.string("schedule") { schedule = v }
        if let v = try json.int("warmup_epochs") { warmupEpochs = v }
        if let v = try json.int("step_size_epochs") { stepSizeEpochs = v }
        if let v = try json.double("gamma") { gamma = Float(v) }
        if let v = try json.double("label_smoothing") { labelSmoothing = Float(v) }
        if let v = try json.doubleArray("class_weights") { classWeights = v.map { Float($0) } }
        if let v = try json.int("early_stopping_patience") { earlyStoppingPatience = v }
        if let v = try json.bool("restore_best") { restoreBest = v }
        if let v = try json.double("grad_clip") { gradClip = Float(v) }
        if let v = try json.string("checkpoint") { checkpoint = v }
        if let v = try json.bool("resume") { resume = v }
        if let v = try json.seed() { seed = v }
        try validate()
    }

    public func validate() throws {
        try require(epochs >= 1 && epochs <= 100_000, "epochs must be between 1 and 100000, got \(epochs)")
        try require(batchSize >= 1 && batchSize <= 65536, "batch_size must be between 1 and 65536, got \(batchSize)")
        try require(learningRate.isFinite && learningRate > 0 && learningRate < 10, "lr must be in (0, 10), got \(learningRate)")
        try require(weightDecay.isFinite && weightDecay >= 0, "weight_decay must be non-negative")
        try require(["adamw", "sgd"].contains(optimizer), "optimizer must be 'adamw' or 'sgd', got '\(optimizer)'")
        try require(momentum.isFinite && momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
        try require(["constant", "cosine", "step"].contains(schedule), "schedule must be 'constant', 'cosine' or 'step', got '\(schedule)'")
        try require(warmupEpochs >= 0 && warmupEpochs < epochs || warmupEpochs == 0, "warmup_epochs must be smaller than epochs")
        try require(stepSizeEpochs >= 1, "step_size_epochs must be at least 1")
        try require(gamma.isFinite && gamma > 0 && gamma <= 1, "gamma must be in (0, 1]")
        try require(labelSmoothing >= 0 && labelSmoothing <= 1, "label_smoothing must be in [0, 1]")
        if let w = classWeights { try require(w.allSatisfy { $0.isFinite && $0 >= 0 }, "class_weights must be non-negative numbers") }
        try require(earlyStoppingPatience >= 0, "early_stopping_patience must be non-negative")
        try require(gradClip.isFinite && gradClip >= 0, "grad_clip must be non-negative")
        if resume { try require(checkpoint != nil, "resume needs a checkpoint path") }
    }

    package func lrSchedule(stepsPerEpoch: Int) -> LRSchedule {
        switch schedule {
        case "cosine":
            return .cosine(warmupSteps: warmupEpochs * stepsPerEpoch, totalSteps: epochs * stepsPerEpoch, minLR: 0)
        case "step":
            return .step(stepSize: stepSizeEpochs * stepsPerEpoch, gamma: gamma)
        default:
            return warmupEpochs > 0 ? .cosine(warmupSteps: warmupEpochs * stepsPerEpoch, totalSteps: Int.max / 2, minLR: learningRate) : .constant
        }
    }
}
