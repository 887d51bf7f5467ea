// The classifier training loop.
//
// Reproducibility: every epoch draws its shuffling and dropout masks from a generator seeded by
// (seed, epoch), so a run resumed from an epoch checkpoint continues exactly as the uninterrupted
// run would, with no generator state to carry. Cancellation (Ctrl-C) is honoured between steps
// and inside backward; the optimiser never applies a partial step, so the model stays usable.

import MedSynthCore

import Glibc

extension ImageClassifier {
    /// Trains on `train` (labels required), optionally monitoring `validation`; returns the history
    /// as JSON ({"epochs": [...], "best_epoch": k, "stopped_early": bool}).
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
        if !normalizationFitted && !(options.resume && options.checkpoint.map(Files.exists) == true) {
            fitNormalization(train)
        }

        let batchSize = min(options.batchSize, train.count)
        // a final batch of one image cannot be batch-normalised in training mode: fold it into the
        // previous batch's epoch by dropping it (it is reshuffled into another batch next epoch)
        var stepsPerEpoch = (train.count + batchSize - 1) / batchSize
        if train.count % batchSize == 1 && stepsPerEpoch > 1 { stepsPerEpoch -= 1 }
        try preflight(train, batchSize: batchSize)

        let parameters = model.parameters
        let optimizer: Optimizer = options.optimizer == "sgd"
            ? SGD(parameters, learningRate: options.learningRate, momentum: options.momentum, weightDecay: options.weightDecay)
            : AdamW(parameters, learningRate: options.learningRate, weightDecay: options.weightDecay)
        let schedule = options.lrSchedule(stepsPerEpoch: stepsPerEpoch)
        let classWeights = try options.classWeights.map { try Tensor($0, shape: [$0.count]) }

        var history: [JSON] = []
        var startEpoch = 0
        var best: (loss: Double, epoch: Int, state: [SafetensorsEntry])? = nil
        var epochsWithoutImprovement = 0
        if options.resume, let path = options.checkpoint, Files.exists(path) {
            (startEpoch, history, best, epochsWithoutImprovement) = try resume(from: path, optimizer: optimizer)
        }

        defer { model.eval() }
        var stoppedEarly = false
        let totalSteps = options.epochs * stepsPerEpoch
        for epoch in startEpoch..<options.epochs {
            let rng = RandomGenerator(seed: options.seed &* 1_000_003 &+ UInt64(epoch) &+ 0x5EED)
            model.setDropoutGenerator(rng)
            let order = rng.permutation(train.count)
            model.train()
            var lossSum = 0.0, correct = 0, seen = 0
            for step in 0..<stepsPerEpoch {
                let globalStep = epoch * stepsPerEpoch + step
                let lo = step * batchSize
                let hi = step == stepsPerEpoch - 1 ? train.count : lo + batchSize
                let indices = order[lo..<hi]
                let x = try batch(train, indices)
                let targets = indices.map { Int(trainLabels[$0]) }
                let logits = try model(x)
                let loss = try crossEntropy(logits: logits, targets: targets, weight: classWeights,
                                            labelSmoothing: options.labelSmoothing)
                guard loss.item.isFinite else {
                    throw MedSynthError.runtime(
                        "the training loss became \(loss.item) at epoch \(epoch + 1), step \(step + 1); lower the learning rate"
                        + (options.checkpoint.map { " (the last good checkpoint is kept at '\($0)')" } ?? ""))
                }
                model.zeroGrad()
                try loss.backward(cancel: progress.cancel)
                if options.gradClip > 0 { GradientClipping.clipGlobalNorm(parameters, maxNorm: options.gradClip) }
                optimizer.learningRate = schedule.learningRate(base: options.learningRate, step: globalStep)
                try optimizer.step()
                model.zeroGrad()

                lossSum += Double(loss.item) * Double(targets.count)
                correct += Self.correctCount(logits, targets)
                seen += targets.count
                try progress.report(globalStep + 1, totalSteps, .object([
                    ("phase", .string("train")), ("epoch", .number(Double(epoch + 1))),
                    ("epochs", .number(Double(options.epochs))), ("loss", .number(Double(loss.item))),
                    ("lr", .number(Double(optimizer.learningRate))),
                ]))
            }
            var record: [(String, JSON)] = [
                ("epoch", .number(Double(epoch + 1))),
                ("train_loss", .number(lossSum / Double(max(seen, 1)))),
                ("train_accuracy", .number(Double(correct) / Double(max(seen, 1)))),
                ("lr", .number(Double(optimizer.learningRate))),
            ]
            var monitored = lossSum / Double(max(seen, 1))
            if let validation {
                let (valLoss, valAccuracy) = try evaluate(validation, weights: classWeights)
                record += [("val_loss", .number(valLoss)), ("val_accuracy", .number(valAccuracy))]
                monitored = valLoss
            }
            history.append(.object(record))
            if let b = best, monitored >= b.loss {
                epochsWithoutImprovement += 1
            } else {
                best = (monitored, epoch + 1, options.restoreBest && options.earlyStoppingPatience > 0 ? model.stateEntries() : [])
                epochsWithoutImprovement = 0
            }
            stoppedEarly = options.earlyStoppingPatience > 0 && epochsWithoutImprovement >= options.earlyStoppingPatience
            if let path = options.checkpoint {
                try writeCheckpoint(path, optimizer: optimizer, epoch: epoch + 1, history: history, best: best,
                                    epochsWithoutImprovement: epochsWithoutImprovement)
            }
            try progress.report((epoch + 1) * stepsPerEpoch, totalSteps, .object([("phase", .string("epoch"))] + record))
            if stoppedEarly { break }
        }
        if let best, !best.state.isEmpty, stoppedEarly || options.restoreBest && options.earlyStoppingPatience > 0 {
            try model.loadState(best.state)
        }
        return .object([
            ("epochs", .array(history)),
            ("best_epoch", .number(Double(best?.epoch ?? 0))),
            ("stopped_early", .bool(stoppedEarly)),
        ])
    }

    /// Runs one forward and backward pass on two images (evaluation mode: no state changes) to
    /// check that the architecture accepts the inputs and to measure the memory a training step
    /// will need; an impossible batch size becomes a MemoryError before training starts.
    package func preflight(_ train: ImageSet, batchSize: Int) throws {
        let probe = min(2, train.count)
        model.eval()
        let perImage = try MemoryBudget.peakBytes {
            let out = try model(batch(train, Array(0..<probe)[...]))
            try require(out.shape == [probe, config.numClasses], "the model produced \(out.shape) for \(probe) images")
            try out.backward()
        } / probe
        model.zeroGrad()
        let parameterBytes = model.parameterCount * 4 * 4   // weights, gradients, two AdamW moments
        try MemoryBudget.check(bytes: perImage * batchSize * 5 / 4 + parameterBytes,
                               what: "training \(config.architecture) with batch size \(batchSize)")
    }

    // MARK: - checkpoints

    package func writeCheckpoint(_ path: String, optimizer: Optimizer, epoch: Int, history: [JSON],
                         best: (loss: Double, epoch: Int, state: [SafetensorsEntry])?, epochsWithoutImprovement: Int) throws {
        var entries = model.stateEntries() + optimizer.stateEntries()
        if let best {
            entries += best.state.map { SafetensorsEntry(name: "best." + $0.name, dtype: $0.dtype, shape: $0.shape, bytes: $0.bytes) }
        }
        let training = JSON.object([
            ("epoch", .number(Double(epoch))),
            ("history", .array(history)),
            ("best_loss", best.map { .number($0.loss) } ?? .null),
            ("best_epoch", .number(Double(best?.epoch ?? 0))),
            ("epochs_without_improvement", .number(Double(epochsWithoutImprovement))),
        ])
        try SafetensorsFile(metadata: metadata(extra: [("training", training.serialized)]), entries: entries).write(to: path)
    }

    package func resume(from path: String, optimizer: Optimizer) throws
        -> (Int, [JSON], (loss: Double, epoch: Int, state: [SafetensorsEntry])?, Int) {
        let file = try SafetensorsFile.read(path)
        guard let configText = file.metadata("config"), let trainingText = file.metadata("training") else {
            throw MedSynthError.io("'\(path)' is not a medsynth training checkpoint")
        }
        let saved = try ClassifierConfig(json: try JSON.parse(configText, source: "the config metadata of '\(path)'"))
        try require(saved.architecture == config.architecture && saved.numClasses == config.numClasses
                    && saved.inChannels == config.inChannels && saved.imageSize == config.imageSize,
                    "checkpoint '\(path)' was made for a different model (\(saved.architecture), \(saved.numClasses) classes)")
        config.mean = saved.mean
        config.std = saved.std
        normalizationFitted = true
        let modelKeys = Set(model.stateEntries().map { $0.name })
        try file.requireOnly({ modelKeys.contains($0) || $0.hasPrefix("optimizer.") || $0.hasPrefix("best.") }, path: path)
        do {
            try model.loadState(file.entries.filter { modelKeys.contains($0.name) })
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.io("'\(path)': \(m)")
        }
        var byName: [String: SafetensorsEntry] = [:]
        for e in file.entries { byName[e.name] = e }
        try optimizer.loadState { byName[$0] }
        let training = try JSON.parse(trainingText, source: "the training metadata of '\(path)'")
        let epoch = try training.int("epoch") ?? 0
        let history = training["history"]?.array ?? []
        var best: (loss: Double, epoch: Int, state: [SafetensorsEntry])? = nil
        if let loss = try training.double("best_loss") {
            let state = file.entries.filter { $0.name.hasPrefix("best.") }.map {
                SafetensorsEntry(name: String($0.name.dropFirst(5)), dtype: $0.dtype, shape: $0.shape, bytes: $0.bytes)
            }
            if !state.isEmpty { do {
                try model.checkState(state, what: "the best epoch's weights in '\(path)'")
            } catch MedSynthError.invalidArgument(let m) {
                throw MedSynthError.io(m)
            } }
            best = (loss, try training.int("best_epoch") ?? 0, state)
        }
        return (epoch, history, best, try training.int("epochs_without_improvement") ?? 0)
    }
}
