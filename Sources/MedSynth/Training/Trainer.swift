// The one training loop every model uses: batches in a seeded order, the task's loss, backward,
// gradient clipping, the optimiser and its schedule, the EMA of the weights, a stop on a
// non-finite loss or weights, a memory check before the first step, per-epoch evaluation with
// early stopping, atomic checkpoints and exact resume, progress and cancellation.
//
// Reproducibility: step k draws everything random (noise, augmentation, dropout) from the
// generator (seed, trainingStep, k) and epoch e's data order from (seed, dataOrder, e), so no
// generator state is carried and a run resumed from any checkpoint continues exactly as the
// uninterrupted run would. Cancellation is honoured between steps and inside backward; the
// optimiser never applies a partial step, so the model stays usable.

import MedSynthCore

/// How a run trains, in steps: what the model-specific options (epochs, steps, warmup in epochs)
/// come down to.
public struct TrainerSettings {
    public enum OptimizerKind { case adamw, sgd(momentum: Float) }

    public var totalSteps: Int
    public var batchSize: Int
    /// A final batch of one image is folded into the next epoch (batch norm cannot train on one).
    public var dropSingletonBatch = false
    /// Batches are consecutive windows of the epochs' orders laid end to end, always `batchSize`
    /// images even when the set is smaller (diffusion: each copy gets its own noise and timestep);
    /// otherwise each epoch is cut into batches and the last one may be smaller (classifiers).
    public var wrapBatches = false
    public var optimizer: OptimizerKind = .adamw
    public var learningRate: Float
    public var weightDecay: Float
    public var schedule: LRSchedule
    public var gradClip: Float
    /// One learning-rate multiplier per parameter of the network (nil: all 1); a parameter with 0
    /// is frozen: left out of the optimiser, so it keeps its value and has no optimiser state.
    public var learningRateScales: [Float]? = nil
    /// 0: no EMA.
    public var emaDecay: Float = 0
    public var seed: UInt64
    /// Epochs without improvement of the monitored value before stopping; 0: never.
    public var earlyStoppingPatience = 0
    public var restoreBest = true
    public var checkpoint: String? = nil
    /// Steps between checkpoints (also written at every epoch end when `checkpointAtEpochs`).
    public var checkpointEvery = Int.max
    public var checkpointAtEpochs = false
    public var resume = false
    /// The options that must match for a checkpoint to be resumed.
    public var resumeKey: JSON = .null
    /// Steps between entries of the loss log.
    public var logEvery = 1

    public init(totalSteps: Int, batchSize: Int, learningRate: Float, weightDecay: Float, schedule: LRSchedule,
                gradClip: Float, seed: UInt64) {
        self.totalSteps = totalSteps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.gradClip = gradClip
        self.seed = seed
    }

    /// Steps in one pass over `count` images.
    public func stepsPerEpoch(_ count: Int) -> Int {
        if wrapBatches { return max(1, (count + batchSize - 1) / batchSize) }
        let b = min(batchSize, count)
        var steps = (count + b - 1) / b
        if dropSingletonBatch && count % b == 1 && steps > 1 { steps -= 1 }
        return steps
    }
}

/// What a run leaves behind besides the weights: the optimiser (for later checkpoints) and the EMA.
public struct TrainerOutcome {
    public let result: JSON
    public let optimizer: Optimizer
    public let ema: ExponentialMovingAverage?
    public let stepsTaken: Int
}

public enum Trainer {
    /// Trains `task.network` under `settings`. `ema` continues an existing average when its decay
    /// matches. Returns the history ({"steps", "final_loss", "log": [...], "epochs": [...],
    /// "best_epoch", "stopped_early"}) with the optimiser and EMA.
    public static func run(_ task: TrainingTask, _ settings: TrainerSettings, ema existingEMA: ExponentialMovingAverage? = nil,
                           progress: Progress = .silent) throws -> TrainerOutcome {
        let network = task.network
        let parameters = network.parameters
        let count = task.trainingCount
        try require(count >= 1, "the training set is empty")
        let batchSize = settings.wrapBatches ? settings.batchSize : min(settings.batchSize, count)
        let stepsPerEpoch = settings.stepsPerEpoch(count)
        try preflight(task, batchSize: batchSize, emaCopies: settings.emaDecay > 0 ? 1 : 0)

        let scales = settings.learningRateScales ?? Array(repeating: 1, count: parameters.count)
        try require(scales.count == parameters.count, "learning-rate scales: \(scales.count) values for \(parameters.count) parameters")
        let trained = parameters.indices.filter { scales[$0] > 0 }
        try require(!trained.isEmpty, "every parameter is frozen: nothing to train")
        let trainedParameters = trained.map { parameters[$0] }
        let optimizer: Optimizer
        switch settings.optimizer {
        case .adamw: optimizer = AdamW(trainedParameters, learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        case .sgd(let momentum):
            optimizer = SGD(trainedParameters, learningRate: settings.learningRate, momentum: momentum,
                            weightDecay: settings.weightDecay)
        }
        optimizer.learningRateScales = trained.map { scales[$0] }
        var ema: ExponentialMovingAverage? = nil
        if settings.emaDecay > 0 {
            ema = try existingEMA.flatMap { $0.decay == settings.emaDecay ? $0 : nil } ?? ExponentialMovingAverage(parameters, decay: settings.emaDecay)
        }

        var state = RunState()
        if settings.resume {
            guard let path = settings.checkpoint, Files.exists(path) else {
                throw MedSynthError.invalidArgument("resume is set but the checkpoint '\(settings.checkpoint ?? "")' does not exist; "
                    + "train without resume to start from scratch")
            }
            state = try TrainerCheckpoint.resume(task, from: path, settings: settings, optimizer: optimizer, ema: &ema)
        }
        let startStep = state.step

        defer { network.eval() }
        network.train()
        var lastLoss = Double.nan
        while state.step < settings.totalSteps && !state.stoppedEarly {
            let step = state.step
            let (epoch, epochEnds, indices) = settings.wrapBatches
                ? state.windowBatch(step: step, batchSize: batchSize, count: count, seed: settings.seed)
                : state.epochBatch(step: step, batchSize: batchSize, stepsPerEpoch: stepsPerEpoch, count: count, seed: settings.seed)

            let rng = RandomGenerator(seed: settings.seed, stream: .trainingStep, index: step)
            network.setGenerator(rng)
            let batch = try task.batchLoss(indices, rng: rng)
            let value = Double(batch.loss.item)
            guard value.isFinite else {
                network.zeroGrad()
                throw MedSynthError.runtime("the training loss became \(value) at step \(step + 1) (epoch \(epoch + 1)); "
                    + "lower the learning rate" + keptCheckpoint(settings))
            }
            network.zeroGrad()
            try batch.loss.backward(cancel: progress.cancel)
            if settings.gradClip > 0 { GradientClipping.clipGlobalNorm(trainedParameters, maxNorm: settings.gradClip) }
            optimizer.learningRate = settings.schedule.learningRate(base: settings.learningRate, step: step)
            try optimizer.step()
            network.zeroGrad()
            ema?.update()
            state.step += 1
            lastLoss = value
            state.record(loss: value, count: batch.count, correct: batch.correct)

            if state.step % settings.logEvery == 0 || state.step == settings.totalSteps {
                try requireFiniteWeights(parameters, settings: settings, step: state.step)
                state.log.append(.object([("step", .number(Double(state.step))), ("loss", .number(state.interval.mean)),
                                          ("lr", .number(Double(optimizer.learningRate)))]))
                state.interval = Accumulator()
            }
            if epochEnds { try endEpoch(task, epoch: epoch, state: &state, settings: settings, optimizer: optimizer) }
            if let path = settings.checkpoint,
               state.step % settings.checkpointEvery == 0 || state.step == settings.totalSteps || state.stoppedEarly
                || (epochEnds && settings.checkpointAtEpochs) {
                try TrainerCheckpoint.write(task, to: path, state: state, settings: settings, optimizer: optimizer, ema: ema)
            }
            try progress.report(state.step, settings.totalSteps, .object([
                ("phase", .string("train")), ("step", .number(Double(state.step))), ("epoch", .number(Double(epoch + 1))),
                ("loss", .number(value)), ("lr", .number(Double(optimizer.learningRate))),
            ]))
            if epochEnds, case .object(let record)? = state.epochs.last {
                try progress.report(state.step, settings.totalSteps,
                                    .object([("phase", .string("epoch")), ("step", .number(Double(state.step)))] + record))
            }
        }
        if let best = state.best, !best.state.isEmpty, settings.restoreBest && settings.earlyStoppingPatience > 0 {
            try network.loadState(best.state)
        }
        try requireFiniteWeights(parameters, settings: settings, step: state.step)
        let result = JSON.object([
            ("steps", .number(Double(state.step))), ("final_loss", .number(lastLoss)),
            ("log", .array(state.log)), ("epochs", .array(state.epochs)),
            ("best_epoch", .number(Double(state.best?.epoch ?? 0))), ("stopped_early", .bool(state.stoppedEarly)),
        ])
        return TrainerOutcome(result: result, optimizer: optimizer, ema: ema, stepsTaken: state.step - startStep)
    }

    /// The end of an epoch: its record (training loss and accuracy, the task's metrics), the best
    /// epoch so far and early stopping.
    static func endEpoch(_ task: TrainingTask, epoch: Int, state: inout RunState, settings: TrainerSettings,
                         optimizer: Optimizer) throws {
        var record: [(String, JSON)] = [("epoch", .number(Double(epoch + 1))), ("train_loss", .number(state.epoch.mean))]
        if let accuracy = state.epoch.accuracy { record.append(("train_accuracy", .number(accuracy))) }
        record.append(("lr", .number(Double(optimizer.learningRate))))
        let (metrics, monitored) = try task.evaluateEpoch()
        task.network.train()
        record += metrics
        state.epochs.append(.object(record))
        let value = monitored ?? state.epoch.mean
        state.epoch = Accumulator()
        if let b = state.best, value >= b.value {
            state.epochsWithoutImprovement += 1
        } else {
            let keep = settings.restoreBest && settings.earlyStoppingPatience > 0
            state.best = (value, epoch + 1, keep ? task.network.stateEntries() : [])
            state.epochsWithoutImprovement = 0
        }
        state.stoppedEarly = settings.earlyStoppingPatience > 0 && state.epochsWithoutImprovement >= settings.earlyStoppingPatience
    }

    /// Runs the task's probe forward and backward (evaluation mode: nothing changes) to measure the
    /// memory one image needs, so an impossible batch size is a MemoryError before training.
    static func preflight(_ task: TrainingTask, batchSize: Int, emaCopies: Int) throws {
        let probe = min(2, task.trainingCount)
        let network = task.network
        network.eval()
        let perImage = try MemoryBudget.peakBytes { try task.probeLoss(count: probe).backward() } / probe
        network.zeroGrad()
        // weights, gradients, two optimiser moments and the EMA copy
        let parameterBytes = network.parameterCount * 4 * (4 + emaCopies)
        try MemoryBudget.check(bytes: perImage * batchSize * 5 / 4 + parameterBytes, what: "\(task.summary) with batch size \(batchSize)")
    }

    /// Weights that became NaN or infinite (a learning rate or weight decay far too large) stop
    /// training with a message instead of leaving a silently broken model.
    static func requireFiniteWeights(_ parameters: [Tensor], settings: TrainerSettings, step: Int) throws {
        for p in parameters where !Reduce.allFinite(p.data, p.count) {
            throw MedSynthError.runtime("the weights became NaN or infinite by step \(step); lower the learning rate "
                + "(\(settings.learningRate)) or the weight decay (\(settings.weightDecay))" + keptCheckpoint(settings))
        }
    }

    static func keptCheckpoint(_ settings: TrainerSettings) -> String {
        settings.checkpoint.map { ". The last good checkpoint is kept at '\($0)'" } ?? ""
    }
}

/// A running mean of losses (and accuracy, for classifiers).
struct Accumulator {
    var lossSum = 0.0, count = 0, correct = 0, classifies = false
    var mean: Double { count > 0 ? lossSum / Double(count) : .nan }
    var accuracy: Double? { classifies && count > 0 ? Double(correct) / Double(count) : nil }

    var json: JSON {
        .object([("loss_sum", .number(lossSum)), ("count", .number(Double(count))), ("correct", .number(Double(correct))),
                 ("classifies", .bool(classifies))])
    }

    init() {}

    init(json: JSON?) throws {
        guard let json else { return }
        lossSum = try json.double("loss_sum") ?? 0
        count = try json.int("count") ?? 0
        correct = try json.int("correct") ?? 0
        classifies = try json.bool("classifies") ?? false
    }
}

/// Everything about a run in progress that a checkpoint must hold to resume it exactly.
struct RunState {
    var step = 0
    var log: [JSON] = []
    var epochs: [JSON] = []
    /// Accumulators of the current log interval and epoch.
    var interval = Accumulator(), epoch = Accumulator()
    var best: (value: Double, epoch: Int, state: [SafetensorsEntry])? = nil
    var epochsWithoutImprovement = 0
    var stoppedEarly = false
    private var cachedOrder: (epoch: Int, order: [Int]) = (-1, [])

    /// Step `step`'s images when each epoch is cut into batches (the last may be smaller).
    mutating func epochBatch(step: Int, batchSize: Int, stepsPerEpoch: Int, count: Int, seed: UInt64)
        -> (epoch: Int, endsEpoch: Bool, indices: [Int]) {
        let epoch = step / stepsPerEpoch, position = step % stepsPerEpoch
        let order = self.order(epoch: epoch, count: count, seed: seed)
        let lo = position * batchSize
        let hi = position == stepsPerEpoch - 1 ? count : lo + batchSize
        return (epoch, position == stepsPerEpoch - 1, Array(order[lo..<hi]))
    }

    /// Step `step`'s images as positions [step·B, (step+1)·B) of the epochs' orders laid end to end.
    mutating func windowBatch(step: Int, batchSize: Int, count: Int, seed: UInt64) -> (epoch: Int, endsEpoch: Bool, indices: [Int]) {
        let first = step * batchSize, end = first + batchSize
        var indices: [Int] = []
        indices.reserveCapacity(batchSize)
        for position in first..<end {
            indices.append(order(epoch: position / count, count: count, seed: seed)[position % count])
        }
        // a step whose window reaches past an epoch's last image ends that epoch
        return ((end - 1) / count, end / count > first / count, indices)
    }

    /// The data order of `epoch`, from (seed, dataOrder, epoch).
    mutating func order(epoch: Int, count: Int, seed: UInt64) -> [Int] {
        if cachedOrder.epoch != epoch {
            cachedOrder = (epoch, RandomGenerator(seed: seed, stream: .dataOrder, index: epoch).permutation(count))
        }
        return cachedOrder.order
    }

    mutating func record(loss: Double, count: Int, correct: Int?) {
        for keyPath in [\RunState.interval, \RunState.epoch] {
            self[keyPath: keyPath].lossSum += loss * Double(count)
            self[keyPath: keyPath].count += count
            if let correct {
                self[keyPath: keyPath].correct += correct
                self[keyPath: keyPath].classifies = true
            }
        }
    }
}
