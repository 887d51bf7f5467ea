// What the trainer needs from a model: the network, the process it is trained for, and how its
// checkpoints describe it. Three things stay separate, as lucidrains' denoising-diffusion-pytorch
// keeps them: the network (a `Module`), the task (the diffusion objective, cross-entropy
// classification: `TrainingTask`) and the loop (`Trainer`: optimiser, schedule, EMA, checkpoints,
// progress, cancellation), which every model shares.

import MedSynthCore

/// The loss of one training batch.
public struct BatchLoss {
    /// The scalar loss, with its graph recorded.
    public let loss: Tensor
    /// Images in the batch (losses are averaged per image in the history).
    public let count: Int
    /// Correctly classified images, for tasks that classify (nil otherwise).
    public let correct: Int?

    public init(loss: Tensor, count: Int, correct: Int? = nil) {
        self.loss = loss
        self.count = count
        self.correct = correct
    }
}

/// A model's training process, as the trainer sees it.
public protocol TrainingTask: AnyObject {
    /// The network whose parameters are trained.
    var network: Module { get }
    /// Images in the training set.
    var trainingCount: Int { get }
    /// Words for messages: "training resnet18", "training a 64x64 diffusion model".
    var summary: String { get }
    /// The loss of the batch `indices` of the training set, drawing everything random from `rng`.
    func batchLoss(_ indices: [Int], rng: RandomGenerator) throws -> BatchLoss
    /// A loss on `count` training images in evaluation mode (nothing changes): the trainer runs it
    /// forward and backward to measure the memory one image needs before training starts.
    func probeLoss(count: Int) throws -> Tensor
    /// Metrics measured at the end of each epoch (validation loss and accuracy), and the value
    /// early stopping minimises (nil: the epoch's training loss).
    func evaluateEpoch() throws -> (metrics: [(String, JSON)], monitored: Double?)
    /// Checkpoint metadata that identifies the model (kind, version, configuration).
    func checkpointMetadata() -> [(String, String)]
    /// Checks that a checkpoint was written for this model and restores what the task owns
    /// beyond the weights (input normalisation, data range).
    func restoreTaskState(from file: SafetensorsFile, path: String) throws
}

extension TrainingTask {
    public func evaluateEpoch() throws -> (metrics: [(String, JSON)], monitored: Double?) { ([], nil) }
}
