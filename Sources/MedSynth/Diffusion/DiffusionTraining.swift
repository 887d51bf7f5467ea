// Training a diffusion model: L_simple (Ho et al. 2020) or min-SNR-weighted MSE on ε or v,
// classifier-free-guidance label dropout, AdamW with warmup and cosine decay, global-norm
// clipping, EMA, periodic atomic checkpoints, exact resume, and a stop on a non-finite loss.

import MedSynthCore

import Glibc

extension DiffusionModel {
    /// Trains `options.steps` steps on `data` (labels required for a class-conditional model);
    /// returns a JSON summary ({"steps": n, "final_loss": …, "losses": [mean per log interval]}).
    @discardableResult
    public func fit(_ data: ImageSet, options: DiffusionTrainingOptions, progress: Progress = .silent) throws -> JSON {
        try options.validate()
        try checkData(data, needLabels: isConditional)
        let labels = data.labels
        if config.dataRange == nil { config.dataRange = Self.measureRange(data) }
        let batchSize = options.batchSize
        try preflight(batchSize: batchSize)

        // fresh optimiser and EMA for a new run; a resumed run restores both from the checkpoint
        let parameters = unet.parameters
        let optimizer = AdamW(parameters, learningRate: options.learningRate, weightDecay: options.weightDecay)
        var average: ExponentialMovingAverage? = try options.emaDecay > 0
            ? (ema.map { $0.decay == options.emaDecay ? $0 : nil } ?? nil) ?? ExponentialMovingAverage(parameters, decay: options.emaDecay)
            : nil
        var startStep = 0
        var history: [JSON] = []
        if options.resume, let path = options.checkpoint, Files.exists(path) {
            (startStep, history) = try resumeRun(from: path, options: options, optimizer: optimizer, ema: &average)
        }
        self.optimizer = optimizer
        self.ema = average

        let lrSchedule = options.schedule
        let count = valuesPerImage
        let scale = 2 / ((config.dataRange?.high ?? 1) - (config.dataRange?.low ?? 0)), low = config.dataRange?.low ?? 0
        let logEvery = max(1, min(100, options.steps / 20))
        let augmentScratch = try options.augmentation.isIdentity ? nil : Storage(count: count)
        var intervalLoss = 0.0, intervalCount = 0, lastLoss = Double.nan
        defer { unet.eval() }
        unet.train()

        for step in startStep..<options.steps {
            let rng = RandomGenerator(seed: mixSeed(options.seed, UInt64(step), 1))
            unet.setGenerator(rng)
            // the batch: positions [step·B, (step+1)·B) of the concatenated epoch permutations
            var indices: [Int] = []
            indices.reserveCapacity(batchSize)
            var epochCache: (Int, [Int]) = (-1, [])
            for position in (step * batchSize)..<((step + 1) * batchSize) {
                let epoch = position / data.count
                if epochCache.0 != epoch {
                    epochCache = (epoch, RandomGenerator(seed: mixSeed(options.seed, UInt64(epoch), 2)).permutation(data.count))
                }
                indices.append(epochCache.1[position % data.count])
            }
            // x₀ in [−1, 1], augmented; timesteps, noise, labels with CFG dropout
            let x0 = try Tensor(uninitialized: [batchSize, config.unet.inChannels, config.unet.imageSize, config.unet.imageSize])
            for (b, index) in indices.enumerated() {
                let src = data.images + index * count, dst = x0.data + b * count
                for i in 0..<count { dst[i] = (src[i] - low) * scale - 1 }
                if let scratch = augmentScratch { augment(dst, options.augmentation, rng: rng, scratch: scratch.pointer) }
            }
            let timesteps = (0..<batchSize).map { _ in rng.int(below: config.timesteps) }
            let noise = try Tensor(uninitialized: x0.shape)
            rng.fillNormal(noise.data, noise.count)
            var classLabels: [Int]? = nil
            if isConditional, let labels {
                classLabels = indices.map { rng.uniform() < options.pUncond ? nullClass : Int(labels[$0]) }
            }
            let noisy = try Tensor(uninitialized: x0.shape), target = try Tensor(uninitialized: x0.shape)
            for b in 0..<batchSize {
                let o = b * count
                self.schedule.addNoise(x0: x0.data + o, noise: noise.data + o, t: timesteps[b], into: noisy.data + o, count: count)
                self.schedule.target(config.prediction, x0: x0.data + o, noise: noise.data + o, t: timesteps[b], into: target.data + o, count: count)
            }

            let prediction = try unet.forward(noisy, timesteps: timesteps.map { Float($0) }, labels: classLabels)
            let loss: Tensor
            if let gamma = options.minSNRGamma {
                let w = try Tensor(timesteps.map { self.schedule.minSNRWeight($0, gamma: gamma, prediction: config.prediction) }, shape: [batchSize])
                loss = try mseLoss(prediction, target, sampleWeights: w)
            } else {
                loss = try mseLoss(prediction, target)
            }
            let value = Double(loss.item)
            guard value.isFinite else {
                unet.zeroGrad()
                throw MedSynthError.runtime("the training loss became \(value) at step \(step + 1); lower the learning rate"
                    + (options.checkpoint.map { ". The last good checkpoint is kept at '\($0)'" } ?? ""))
            }
            unet.zeroGrad()
            try loss.backward(cancel: progress.cancel)
            if options.gradClip > 0 { GradientClipping.clipGlobalNorm(parameters, maxNorm: options.gradClip) }
            optimizer.learningRate = lrSchedule.learningRate(base: options.learningRate, step: step)
            try optimizer.step()
            unet.zeroGrad()
            average?.update()
            trainedSteps += 1

            lastLoss = value
            intervalLoss += value
            intervalCount += 1
            if (step + 1) % logEvery == 0 || step + 1 == options.steps {
                history.append(.object([("step", .number(Double(step + 1))), ("loss", .number(intervalLoss / Double(intervalCount))),
                                        ("lr", .number(Double(optimizer.learningRate)))]))
                intervalLoss = 0
                intervalCount = 0
            }
            if let path = options.checkpoint, (step + 1) % options.checkpointEvery == 0 || step + 1 == options.steps {
                try writeTrainingCheckpoint(path, step: step + 1, options: options, history: history)
            }
            try progress.report(step + 1, options.steps, .object([
                ("phase", .string("train")), ("step", .number(Double(step + 1))), ("loss", .number(value)),
                ("lr", .number(Double(optimizer.learningRate))),
            ]))
        }
        return .object([("steps", .number(Double(options.steps))), ("trained_steps", .number(Double(trainedSteps))),
                        ("final_loss", .number(lastLoss)), ("history", .array(history))])
    }

    /// Applies a random draw of the augmentation to one image in place (`scratch` holds a copy).
    package func augment(_ image: UnsafeMutablePointer<Float>, _ a: Augmentation, rng: RandomGenerator,
                 scratch: UnsafeMutablePointer<Float>) {
        let u = config.unet
        let flipH = a.horizontalFlip && rng.uniform() < 0.5
        let flipV = a.verticalFlip && rng.uniform() < 0.5
        let dx = a.translate * (2 * rng.uniform() - 1), dy = a.translate * (2 * rng.uniform() - 1)
        let angle = a.rotate * (2 * rng.uniform() - 1)
        scratch.update(from: image, count: valuesPerImage)
        AugmentKernel.apply(scratch, image, channels: u.inChannels, height: u.imageSize, width: u.imageSize,
                            flipH: flipH, flipV: flipV, shiftX: dx, shiftY: dy, degrees: angle)
    }

    /// A forward and backward pass on one noisy image (evaluation mode), to check the memory a
    /// training step will need before it starts.
    package func preflight(batchSize: Int) throws {
        let u = config.unet
        unet.eval()
        let perImage = try MemoryBudget.peakBytes {
            let x = try Tensor(zeros: [1, u.inChannels, u.imageSize, u.imageSize])
            try mean(try unet.forward(x, timesteps: [0], labels: isConditional ? [0] : nil)).backward()
        }
        unet.zeroGrad()
        try MemoryBudget.check(bytes: perImage * batchSize * 5 / 4 + unet.parameterCount * 4 * 5,
                               what: "training a \(u.imageSize)x\(u.imageSize) diffusion model with batch size \(batchSize)")
    }

    // MARK: - checkpoints

    package func writeTrainingCheckpoint(_ path: String, step: Int, options: DiffusionTrainingOptions, history: [JSON]) throws {
        let run = JSON.object([("step", .number(Double(step))), ("options", options.resumeKey), ("history", .array(history))])
        try SafetensorsFile(metadata: metadata(extra: [("training", run.serialized)]),
                            entries: stateEntries(includeTraining: true)).write(to: path)
    }

    package func resumeRun(from path: String, options: DiffusionTrainingOptions, optimizer: AdamW,
                   ema: inout ExponentialMovingAverage?) throws -> (Int, [JSON]) {
        let file = try SafetensorsFile.read(path)
        guard file.metadata("medsynth_kind") == Self.kind, let runText = file.metadata("training"),
              let configText = file.metadata("config") else {
            throw MedSynthError.io("'\(path)' is not a medsynth diffusion training checkpoint")
        }
        let run = try JSON.parse(runText, source: "the training metadata of '\(path)'")
        try require(run["options"] == options.resumeKey,
                    "checkpoint '\(path)' was written by a run with other options (\(run["options"]?.serialized ?? "?")); resume needs the same steps, batch_size, seed and lr")
        let saved = try JSON.parse(configText, source: "the config metadata of '\(path)'")
        try require(saved["image_size"] == configJSON["image_size"] && saved["num_classes"] == configJSON["num_classes"]
                    && saved["base_channels"] == configJSON["base_channels"], "checkpoint '\(path)' holds a different model")
        do {
            try restore(file, emaDecay: options.emaDecay)
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.io("'\(path)': \(m)")
        }
        if let restored = self.ema { ema = restored }
        var byName: [String: SafetensorsEntry] = [:]
        for e in file.entries { byName[e.name] = e }
        try optimizer.loadState { byName[$0] }
        if let r = try saved.doubleArray("data_range"), r.count == 2 { config.dataRange = (Float(r[0]), Float(r[1])) }
        trainedSteps = (try saved.int("trained_steps")) ?? 0
        return (try run.int("step") ?? 0, run["history"]?.array ?? [])
    }
}
