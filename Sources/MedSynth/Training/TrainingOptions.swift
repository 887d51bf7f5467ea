// Options of a classifier training run, declared once as a table (see
// MedSynthCore/IO/Options.swift).

import MedSynthCore

public enum EarlyStoppingMonitor: String, CaseIterable {
    case validationLoss = "val_loss"
    case validationAccuracy = "val_accuracy"
}

public struct ClassifierTrainingOptions: Configurable {
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
    /// What early stopping and restore_best watch on the validation set (Keras' `monitor`).
    public var earlyStoppingMonitor = EarlyStoppingMonitor.validationLoss
    public var restoreBest = true
    public var gradClip: Float = 0
    /// Fine-tuning: train only the head (torchvision's classifier layers; see
    /// ClassifierArchitecture.isHead), or the backbone at a fraction of the learning rate.
    public var freezeBackbone = false
    public var backboneLRScale: Float = 1
    public var augmentation = Augmentation()
    public var checkpoint: String? = nil
    public var resume = false
    /// nil: the model's seed.
    public var seed: Int? = nil

    public init() {}

    public static let name = "classifier training"

    public static let options: [Option<ClassifierTrainingOptions>] = [
        .int("epochs", \.epochs, "Passes over the training set (the paper: at most 50, with early stopping)."),
        .int("batch_size", \.batchSize, "Images per step."),
        .float("lr", \.learningRate, "Learning rate (torch.optim.AdamW's default 1e-3)."),
        .float("weight_decay", \.weightDecay, "Weight decay (torch.optim.AdamW's default 1e-2; decoupled for AdamW, L2 for SGD)."),
        .string("optimizer", \.optimizer, "'adamw' (the paper) or 'sgd'."),
        .float("momentum", \.momentum, "SGD momentum."),
        .string("schedule", \.schedule, "'constant', 'cosine' (to 0 at the last epoch) or 'step' (x gamma every step_size_epochs)."),
        .int("warmup_epochs", \.warmupEpochs, "Epochs of linear learning-rate warmup."),
        .int("step_size_epochs", \.stepSizeEpochs, "Epochs between decays of the 'step' schedule."),
        .float("gamma", \.gamma, "Decay factor of the 'step' schedule."),
        .float("label_smoothing", \.labelSmoothing, "Label smoothing of the cross-entropy (torch's definition)."),
        .floats("class_weights", \.classWeights, "One cross-entropy weight per class (for imbalance)."),
        .int("early_stopping_patience", \.earlyStoppingPatience, "Epochs without improvement of the monitored loss (validation loss when there is a validation set) before stopping; 0 never stops early."),
        .choice("early_stopping_monitor", \.earlyStoppingMonitor, "What early stopping and restore_best watch on the validation set: 'val_loss' (Keras' default; the lowest wins) or 'val_accuracy' (the highest wins; steadier on small validation sets, where the loss can rise from overconfidence while accuracy still improves). Without a validation set, the training loss."),
        .bool("restore_best", \.restoreBest, "With early stopping, end with the weights of the best epoch."),
        .bool("freeze_backbone", \.freezeBackbone, "Fine-tuning: train only the head; the backbone keeps its weights (its batch-norm statistics still update in training, as in torch's train mode)."),
        .float("backbone_lr_scale", \.backboneLRScale, "Fine-tuning: the backbone's learning rate as a fraction of lr (torch's parameter groups), e.g. 0.1."),
        .float("grad_clip", \.gradClip, "Largest global gradient norm; 0 disables clipping."),
    ] + Augmentation.options(\ClassifierTrainingOptions.augmentation) + [
        .string("checkpoint", \.checkpoint, "Path of a checkpoint written atomically after every epoch."),
        .bool("resume", \.resume, "Continue from the checkpoint exactly as the uninterrupted run would."),
        .int("seed", \.seed, "Seeds shuffling and dropout.").shown("the model's seed"),
    ]

    public func validate() throws {
        try require(epochs >= 1 && epochs <= 100_000, "epochs must be between 1 and 100000, got \(epochs)")
        try require(batchSize >= 1 && batchSize <= 65536, "batch_size must be between 1 and 65536, got \(batchSize)")
        try require(learningRate.isFinite && learningRate > 0 && learningRate < 10, "lr must be in (0, 10), got \(learningRate)")
        try require(weightDecay.isFinite && weightDecay >= 0 && weightDecay <= 10, "weight_decay must be between 0 and 10, got \(weightDecay)")
        try require(["adamw", "sgd"].contains(optimizer), "optimizer must be 'adamw' or 'sgd', got '\(optimizer)'")
        try require(momentum.isFinite && momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
        try require(["constant", "cosine", "step"].contains(schedule), "schedule must be 'constant', 'cosine' or 'step', got '\(schedule)'")
        try require(warmupEpochs >= 0 && (warmupEpochs < epochs || warmupEpochs == 0), "warmup_epochs must be smaller than epochs")
        try require(stepSizeEpochs >= 1, "step_size_epochs must be at least 1")
        try require(gamma.isFinite && gamma > 0 && gamma <= 1, "gamma must be in (0, 1]")
        try require(labelSmoothing.isFinite && labelSmoothing >= 0 && labelSmoothing <= 1, "label_smoothing must be in [0, 1]")
        if let w = classWeights { try require(w.allSatisfy { $0.isFinite && $0 >= 0 }, "class_weights must be non-negative numbers") }
        try require(earlyStoppingPatience >= 0, "early_stopping_patience must be non-negative")
        try require(gradClip.isFinite && gradClip >= 0, "grad_clip must be non-negative")
        try require(backboneLRScale.isFinite && backboneLRScale > 0 && backboneLRScale <= 1000,
                    "backbone_lr_scale must be in (0, 1000], got \(backboneLRScale); to train only the head use freeze_backbone=True")
        try augmentation.validate()
        if resume { try require(checkpoint != nil, "resume needs a checkpoint path") }
        if let s = seed { try require(s >= 0, "seed must be a non-negative integer") }
    }

    func lrSchedule(stepsPerEpoch: Int) -> LRSchedule {
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
