// Training checkpoints: one safetensors file holding the network's weights under their state-dict
// names, the EMA weights under `ema.<name>`, the optimiser's state, the best epoch's weights under
// `best.<name>`, and in its metadata the model's own description (the task's) and the run's state.
// Written atomically (temporary file, fsync, rename), so a crash leaves the previous checkpoint.

import MedSynthCore

enum TrainerCheckpoint {
    static func write(_ task: TrainingTask, to path: String, state: RunState, settings: TrainerSettings, optimizer: Optimizer,
                      ema: ExponentialMovingAverage?) throws {
        let network = task.network
        var entries = network.stateEntries() + optimizer.stateEntries()
        if let ema { entries += emaEntries(ema, of: network) }
        if let best = state.best {
            entries += best.state.map { SafetensorsEntry(name: "best." + $0.name, dtype: $0.dtype, shape: $0.shape, bytes: $0.bytes) }
        }
        let run = JSON.object([
            ("step", .number(Double(state.step))), ("options", settings.resumeKey),
            ("log", .array(state.log)), ("epochs", .array(state.epochs)),
            ("interval", state.interval.json), ("epoch", state.epoch.json),
            ("best_value", state.best.map { .number($0.value) } ?? .null),
            ("best_epoch", .number(Double(state.best?.epoch ?? 0))),
            ("epochs_without_improvement", .number(Double(state.epochsWithoutImprovement))),
            ("stopped_early", .bool(state.stoppedEarly)),
            ("ema_updates", .number(Double(ema?.updates ?? 0))),
        ])
        try SafetensorsFile(metadata: task.checkpointMetadata() + [("training", run.serialized)], entries: entries).write(to: path)
    }

    static func resume(_ task: TrainingTask, from path: String, settings: TrainerSettings, optimizer: Optimizer,
                       ema: inout ExponentialMovingAverage?) throws -> RunState {
        let file = try SafetensorsFile.read(path)
        guard let runText = file.metadata("training") else {
            throw MedSynthError.io("'\(path)' is not a medsynth training checkpoint (no training state in its metadata)")
        }
        return try naming(path) {
            try task.restoreTaskState(from: file, path: path)
            let run = try JSON.parse(runText, source: "the training metadata of '\(path)'")
            try require(run["options"] == settings.resumeKey,
                        "checkpoint '\(path)' was written by a run with other options (\(run["options"]?.serialized ?? "?")); "
                        + "resuming needs the same \(settings.resumeKey.object?.map { $0.0 }.joined(separator: ", ") ?? "options")")
            let network = task.network
            try loadNetwork(network, from: file, path: path)
            var byName: [String: SafetensorsEntry] = [:]
            for e in file.entries { byName[e.name] = e }
            try optimizer.loadState { byName[$0] }
            if let average = ema {
                try loadEMA(average, of: network, from: file, path: path)
                average.updates = try run.int("ema_updates") ?? 0
                try require(average.updates >= 0, "its training state has ema_updates \(average.updates)")
            }

            var state = RunState()
            state.step = try run.int("step") ?? 0
            try require(state.step >= 0 && state.step <= settings.totalSteps, "checkpoint '\(path)' is at step \(state.step), beyond this run's \(settings.totalSteps)")
            state.log = run["log"]?.array ?? []
            state.epochs = run["epochs"]?.array ?? []
            state.interval = try Accumulator(json: run["interval"])
            state.epoch = try Accumulator(json: run["epoch"])
            if let value = try run.double("best_value") {
                let best = file.entries.filter { $0.name.hasPrefix("best.") }.map {
                    SafetensorsEntry(name: String($0.name.dropFirst(5)), dtype: $0.dtype, shape: $0.shape, bytes: $0.bytes)
                }
                // the best epoch's weights are loaded at the end of the run: check them now
                if !best.isEmpty { try network.checkState(best, what: "the best epoch's weights") }
                state.best = (value, try run.int("best_epoch") ?? 0, best)
            }
            state.epochsWithoutImprovement = try run.int("epochs_without_improvement") ?? 0
            state.stoppedEarly = try run.bool("stopped_early") ?? false
            return state
        }
    }

    /// Runs `body`; an invalid-argument error that does not name `path` yet becomes an I/O error
    /// naming it (the file is what is wrong).
    static func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch MedSynthError.invalidArgument(let m) where !m.contains("'\(path)'") {
            throw MedSynthError.io("'\(path)': \(m)")
        }
    }

    /// Loads the network's tensors from `file`, each checked (dtype, shape, finite values; the
    /// network keeps its weights when one fails). Every other tensor must be one something else
    /// reads: in a training checkpoint the optimiser's state, the EMA and the best epoch's weights;
    /// in a saved model its EMA (`savedEMA`). A checkpoint with tensors nobody reads is not what it says.
    static func loadNetwork(_ network: Module, from file: SafetensorsFile, path: String, savedEMA: Bool = false) throws {
        let modelKeys = Set(network.stateLayout().map { $0.name })
        let prefixes = file.metadata("training") != nil ? ["optimizer.", "ema.", "best."] : savedEMA ? ["ema."] : []
        try file.requireOnly({ name in modelKeys.contains(name) || prefixes.contains { name.hasPrefix($0) } }, path: path)
        try naming(path) { try network.loadState(file.entries.filter { modelKeys.contains($0.name) }) }
    }

    /// The EMA weights under `ema.<parameter name>`.
    static func emaEntries(_ ema: ExponentialMovingAverage, of network: Module) -> [SafetensorsEntry] {
        zip(network.namedParameters().map { $0.0 }, ema.shadow).map { SafetensorsEntry(name: "ema." + $0.0, tensor: $0.1) }
    }

    /// Loads every `ema.<parameter name>` tensor; a checkpoint missing any of them is an error.
    static func loadEMA(_ ema: ExponentialMovingAverage, of network: Module, from file: SafetensorsFile, path: String) throws {
        for ((name, _), shadow) in zip(network.namedParameters(), ema.shadow) {
            guard let e = file["ema." + name] else { throw MedSynthError.io("'\(path)' has no EMA tensor 'ema.\(name)'") }
            shadow.data.update(fromArray: try naming(path) { try e.finiteFloats(shape: shadow.shape) })
        }
    }
}
