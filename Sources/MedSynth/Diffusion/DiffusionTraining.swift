// Training a diffusion model: the denoising objective as a `TrainingTask` for the shared
// `Trainer` — L_simple (Ho et al. 2020) or min-SNR-weighted MSE (Hang et al. 2023) on ε or v,
// with classifier-free-guidance label dropout (Ho & Salimans 2021) and optional augmentation.

import MedSynthCore

/// The diffusion objective on one training set: x₀ in [−1, 1], a random timestep and noise per
/// image, x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, and the MSE between the network's output and its target.
final class DiffusionTask: TrainingTask {
    let model: DiffusionModel
    let data: ImageSet
    let options: DiffusionTrainingOptions
    let augmentScratch: Storage?

    init(model: DiffusionModel, data: ImageSet, options: DiffusionTrainingOptions) throws {
        self.model = model
        self.data = data
        self.options = options
        augmentScratch = try options.augmentation.isIdentity ? nil : Storage(count: model.valuesPerImage)
    }

    var network: Module { model.unet }
    var trainingCount: Int { data.count }
    var summary: String {
        "training a \(model.config.unet.imageSize)x\(model.config.unet.imageSize) diffusion model"
    }

    /// x₀ of the images `indices`, in [−1, 1], augmented with draws from `rng` when asked.
    func cleanBatch(_ indices: [Int], rng: RandomGenerator?) throws -> Tensor {
        let u = model.config.unet, count = model.valuesPerImage
        // x₀ = (x − low)·scale − 1 maps the data range onto [−1, 1] (read here: resuming may restore it)
        let range = model.config.dataRange ?? (0, 1)
        let low = range.low, scale = 2 / (range.high - range.low)
        let x0 = try Tensor(uninitialized: [indices.count, u.inChannels, u.imageSize, u.imageSize])
        for (b, index) in indices.enumerated() {
            let src = data.images + index * count, dst = x0.data + b * count
            for i in 0..<count { dst[i] = (src[i] - low) * scale - 1 }
            if let rng, let scratch = augmentScratch {
                options.augmentation.apply(dst, channels: u.inChannels, height: u.imageSize, width: u.imageSize, rng: rng,
                                           scratch: scratch.pointer)
            }
        }
        return x0
    }

    func batchLoss(_ indices: [Int], rng: RandomGenerator) throws -> BatchLoss {
        let config = model.config, schedule = model.schedule, count = model.valuesPerImage
        let x0 = try cleanBatch(indices, rng: rng)
        let batch = indices.count
        let timesteps = (0..<batch).map { _ in rng.int(below: config.timesteps) }
        let noise = try Tensor(uninitialized: x0.shape)
        rng.fillNormal(noise.data, noise.count)
        var classLabels: [Int]? = nil
        if model.isConditional, let labels = data.labels {
            classLabels = indices.map { rng.uniform() < options.pUncond ? model.nullClass : Int(labels[$0]) }
        }
        let noisy = try Tensor(uninitialized: x0.shape), target = try Tensor(uninitialized: x0.shape)
        for b in 0..<batch {
            let o = b * count
            schedule.addNoise(x0: x0.data + o, noise: noise.data + o, t: timesteps[b], into: noisy.data + o, count: count)
            schedule.target(config.prediction, x0: x0.data + o, noise: noise.data + o, t: timesteps[b], into: target.data + o, count: count)
        }
        let prediction = try model.unet.forward(noisy, timesteps: timesteps.map { Float($0) }, labels: classLabels)
        if options.minSNRGamma > 0 {
            let gamma = options.minSNRGamma
            let w = try Tensor(timesteps.map { schedule.minSNRWeight($0, gamma: gamma, prediction: config.prediction) }, shape: [batch])
            return BatchLoss(loss: try mseLoss(prediction, target, sampleWeights: w), count: batch)
        }
        return BatchLoss(loss: try mseLoss(prediction, target), count: batch)
    }

    func probeLoss(count: Int) throws -> Tensor {
        let x0 = try cleanBatch(Array(0..<count), rng: nil)
        let labels = model.isConditional ? [Int](repeating: 0, count: count) : nil
        return try mean(try model.unet.forward(x0, timesteps: [Float](repeating: 0, count: count), labels: labels))
    }

    func checkpointMetadata() -> [(String, String)] { model.metadata() }

    func restoreTaskState(from file: SafetensorsFile, path: String) throws {
        let saved = try DiffusionModel.savedConfig(file, path: path)
        try require(saved.config.unet.json == model.config.unet.json && saved.config.timesteps == model.config.timesteps,
                    "checkpoint '\(path)' holds a different diffusion model")
        // the same weights mean another thing under another parametrisation (the default changed
        // from epsilon to v): resuming across it would train on without error, silently wrong
        try require(saved.config.prediction == model.config.prediction,
                    "checkpoint '\(path)' was trained with prediction '\(saved.config.prediction.rawValue)', this model predicts '\(model.config.prediction.rawValue)': create it with prediction=\"\(saved.config.prediction.rawValue)\" (or load the checkpoint with DiffusionModel.load)")
        model.config.dataRange = saved.config.dataRange
        model.config.dataDType = saved.config.dataDType
        model.trainedSteps = saved.trainedSteps
    }
}

extension DiffusionModel {
    /// Trains `options.steps` steps on `data` (labels required for a class-conditional model);
    /// returns the trainer's history with the model's lifetime step count.
    @discardableResult
    public func fit(_ data: ImageSet, options: DiffusionTrainingOptions, progress: Progress = .silent) throws -> JSON {
        try options.validate()
        try checkData(data, needLabels: isConditional)
        if !isConditional { try require(data.labels == nil, "this model is unconditional: it takes no labels") }
        if trainedSteps == 0 {
            // the first fit decides what the data are: their dtype and the range mapped to [−1, 1]
            if let dtype = options.dataDType { config.dataDType = dtype }
            if config.dataRange == nil {
                config.dataRange = ["uint8", "uint16"].contains(config.dataDType) ? (0, 1) : Self.measureRange(data)
            }
        }
        try require(config.dataRange != nil, "this model has been trained but has no data range")

        var settings = TrainerSettings(totalSteps: options.steps, batchSize: options.batchSize, learningRate: options.learningRate,
                                       weightDecay: options.weightDecay, schedule: options.schedule, gradClip: options.gradClip,
                                       seed: options.seed.map { UInt64($0) } ?? config.seed)
        settings.wrapBatches = true
        settings.emaDecay = options.emaDecay
        settings.checkpoint = options.checkpoint
        settings.checkpointEvery = options.checkpointEvery
        settings.resume = options.resume
        settings.logEvery = max(1, min(100, options.steps / 20))
        // what decides each step: a run may be extended by more steps unless its schedule depends on the total
        var key: [(String, JSON)] = [("batch_size", .number(Double(options.batchSize))), ("seed", .number(Double(settings.seed))),
                                     ("lr", .number(Double(options.learningRate))), ("lr_schedule", .string(options.lrSchedule))]
        if options.lrSchedule == "cosine" || options.warmupSteps == nil { key.append(("steps", .number(Double(options.steps)))) }
        settings.resumeKey = .object(key)
        let task = try DiffusionTask(model: self, data: data, options: options)
        let outcome = try Trainer.run(task, settings, ema: ema, progress: progress)
        optimizer = outcome.optimizer
        ema = outcome.ema
        trainedSteps += outcome.stepsTaken
        guard case .object(var result) = outcome.result else { return outcome.result }
        result.append(("trained_steps", .number(Double(trainedSteps))))
        return .object(result)
    }
}
