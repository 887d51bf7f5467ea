// Training a classifier: cross-entropy classification (class weights, label smoothing) as a
// `TrainingTask` for the shared `Trainer`, validated at the end of every epoch for early stopping.

import MedSynthCore

/// Cross-entropy on a labelled training set, with an optional validation set.
final class ClassificationTask: TrainingTask {
    let classifier: ImageClassifier
    let train: ImageSet
    let trainLabels: UnsafePointer<Int64>
    let validation: ImageSet?
    let options: ClassifierTrainingOptions
    let classWeights: Tensor?

    init(classifier: ImageClassifier, train: ImageSet, trainLabels: UnsafePointer<Int64>, validation: ImageSet?,
         options: ClassifierTrainingOptions) throws {
        self.classifier = classifier
        self.train = train
        self.trainLabels = trainLabels
        self.validation = validation
        self.options = options
        classWeights = try options.classWeights.map { try Tensor($0, shape: [$0.count]) }
    }

    var network: Module { classifier.model }
    var trainingCount: Int { train.count }
    var summary: String { "training \(classifier.config.architecture)" }

    func batchLoss(_ indices: [Int], rng: RandomGenerator) throws -> BatchLoss {
        let targets = indices.map { Int(trainLabels[$0]) }
        let logits = try classifier.model(classifier.batch(train, indices[...], augmentation: options.augmentation, rng: rng))
        var loss = try crossEntropy(logits: logits, targets: targets, weight: classWeights, labelSmoothing: options.labelSmoothing)
        if let aux = classifier.model as? AuxiliaryLogits {   // GoogLeNet with aux_logits: + 0.3 × each aux loss
            for a in aux.auxiliaryLogits {
                let auxLoss = try crossEntropy(logits: a, targets: targets, weight: classWeights, labelSmoothing: options.labelSmoothing)
                loss = try add(loss, mul(auxLoss, aux.auxiliaryLossWeight))
            }
        }
        return BatchLoss(loss: loss, count: targets.count, correct: ImageClassifier.correctCount(logits, targets))
    }

    func probeLoss(count: Int) throws -> Tensor {
        let out = try classifier.model(classifier.batch(train, Array(0..<count)[...]))
        try require(out.shape == [count, classifier.config.numClasses], "the model produced \(out.shape) for \(count) images")
        return try mean(out)
    }

    func evaluateEpoch() throws -> (metrics: [(String, JSON)], monitored: Double?) {
        guard let validation else { return ([], nil) }
        let (loss, accuracy) = try classifier.evaluate(validation, weights: classWeights)
        // the trainer minimises the monitored value: accuracy enters negated
        let monitored = options.earlyStoppingMonitor == .validationAccuracy ? -accuracy : loss
        return ([("val_loss", .number(loss)), ("val_accuracy", .number(accuracy))], monitored)
    }

    func checkpointMetadata() -> [(String, String)] { classifier.metadata() }

    func restoreTaskState(from file: SafetensorsFile, path: String) throws {
        let saved = try ImageClassifier.savedConfig(file, path: path)
        let c = classifier.config
        try require(saved.config.architecture == c.architecture && saved.config.numClasses == c.numClasses
                    && saved.config.inChannels == c.inChannels && saved.config.imageSize == c.imageSize,
                    "checkpoint '\(path)' was made for a different model (\(saved.config.architecture), \(saved.config.numClasses) classes)")
        classifier.config.mean = saved.config.mean
        classifier.config.std = saved.config.std
        classifier.normalizationFitted = true
    }
}

extension ImageClassifier {
    /// Trains on `train` (labels required), optionally monitoring `validation`; returns the
    /// trainer's history ({"epochs": [...], "best_epoch": k, "stopped_early": bool, "log": [...]}).
    @discardableResult
    public func fit(_ train: ImageSet, validation: ImageSet? = nil, options: ClassifierTrainingOptions,
                    progress: Progress = .silent) throws -> JSON {
        try options.validate()
        try check(train, what: "training set", needLabels: true)
        if let validation { try check(validation, what: "validation set", needLabels: true) }
        if let w = options.classWeights {
            try require(w.count == config.numClasses, "class_weights needs \(config.numClasses) values, got \(w.count)")
        }
        guard let trainLabels = train.labels else { throw MedSynthError.invalidArgument("training set needs labels") }
        // a resumed run restores the normalisation of the run it continues
        if !normalizationFitted && !options.resume { fitNormalization(train) }

        var settings = TrainerSettings(totalSteps: 0, batchSize: options.batchSize, learningRate: options.learningRate,
                                       weightDecay: options.weightDecay, schedule: .constant, gradClip: options.gradClip,
                                       seed: options.seed.map { UInt64($0) } ?? config.seed)
        settings.dropSingletonBatch = true
        let stepsPerEpoch = settings.stepsPerEpoch(train.count)
        settings.totalSteps = options.epochs * stepsPerEpoch
        settings.schedule = options.lrSchedule(stepsPerEpoch: stepsPerEpoch)
        settings.optimizer = options.optimizer == "sgd" ? .sgd(momentum: options.momentum) : .adamw
        if options.freezeBackbone || options.backboneLRScale != 1 {
            let backbone = Set(backboneParameters.map { ObjectIdentifier($0.1) })
            let scale: Float = options.freezeBackbone ? 0 : options.backboneLRScale
            settings.learningRateScales = model.parameters.map { backbone.contains(ObjectIdentifier($0)) ? scale : 1 }
        }
        settings.earlyStoppingPatience = options.earlyStoppingPatience
        settings.restoreBest = options.restoreBest
        settings.checkpoint = options.checkpoint
        settings.checkpointAtEpochs = true
        settings.resume = options.resume
        settings.logEvery = stepsPerEpoch
        // what decides each step: a run may be extended by more epochs unless its schedule depends on the total
        var key: [(String, JSON)] = [("batch_size", .number(Double(options.batchSize))), ("seed", .number(Double(settings.seed))),
                                     ("lr", .number(Double(options.learningRate))), ("schedule", .string(options.schedule))]
        if options.schedule == "cosine" { key.append(("epochs", .number(Double(options.epochs)))) }
        if options.freezeBackbone { key.append(("freeze_backbone", .bool(true))) }
        if options.backboneLRScale != 1 { key.append(("backbone_lr_scale", .number(Double(options.backboneLRScale)))) }
        settings.resumeKey = .object(key)
        let task = try ClassificationTask(classifier: self, train: train, trainLabels: trainLabels, validation: validation, options: options)
        return try Trainer.run(task, settings, progress: progress).result
    }
}
