// A class-conditional denoising diffusion model: the U-Net, its noise schedule, the EMA of its
// weights and everything needed to continue training; training (DiffusionTraining.swift, through
// the shared Trainer) and sampling with DDPM, DDIM or DPM-Solver++ and classifier-free guidance
// (DiffusionSampling.swift).
//
// Randomness is derived, never carried (see SeedStream): a run resumed from any checkpoint
// continues exactly as the uninterrupted run would, and the same seed gives the same images
// whatever the batch size (bit for bit at the same batch size; the linear layers' sgemm may round
// edge tiles differently when the batch changes).

import MedSynthCore

public final class DiffusionModel {
    public internal(set) var config: DiffusionConfig
    public let unet: UNet
    public let schedule: NoiseSchedule
    /// Averaged weights (nil until a run with EMA trains).
    public internal(set) var ema: ExponentialMovingAverage?
    /// Optimiser steps taken over the model's life.
    public internal(set) var trainedSteps = 0
    var optimizer: Optimizer?
    /// Engine memory one image needs in a sampling step (measured once).
    var samplingBytesPerImage: Int? = nil

    public init(config: DiffusionConfig) throws {
        try config.validate()
        self.config = config
        schedule = try NoiseSchedule(config.schedule, steps: config.timesteps, betaStart: config.betaStart, betaEnd: config.betaEnd)
        unet = try UNet(config.unet, rng: RandomGenerator(seed: config.seed, stream: .initialisation, index: 0))
        unet.eval()
    }

    public var valuesPerImage: Int { config.unet.inChannels * config.unet.imageSize * config.unet.imageSize }
    public var isConditional: Bool { config.unet.numClasses > 0 }
    var nullClass: Int { config.unet.numClasses }

    /// What the model is now (output only, never accepted as configuration).
    public var stateJSON: JSON {
        .object([("parameters", .number(Double(unet.parameterCount))), ("trained_steps", .number(Double(trainedSteps))),
                 ("ema_updates", .number(Double(ema?.updates ?? 0))), ("ema_decay", .number(Double(ema?.decay ?? 0)))])
    }

    /// The resolved configuration with the model's state under "state".
    public var configJSON: JSON {
        guard case .object(let pairs) = config.json else { return config.json }
        return .object(pairs + [("state", stateJSON)])
    }

    // MARK: - data

    func checkData(_ set: ImageSet, needLabels: Bool) throws {
        let u = config.unet
        try require(set.count >= 1, "the training set is empty")
        try require(set.channels == u.inChannels, "images have \(set.channels) channel(s), the model takes \(u.inChannels)")
        try require(set.height == u.imageSize && set.width == u.imageSize,
                    "images are \(set.height)x\(set.width), the model takes \(u.imageSize)x\(u.imageSize); resize them first")
        try requireFinite(set.images, set.count * set.valuesPerImage, "the training images")
        if needLabels {
            guard let labels = set.labels else { throw MedSynthError.invalidArgument("a class-conditional model needs labels") }
            for i in 0..<set.count where labels[i] < 0 || labels[i] >= Int64(u.numClasses) {
                throw MedSynthError.invalidArgument("label \(labels[i]) at index \(i) is outside [0, \(u.numClasses))")
            }
        }
    }

    /// The min and max of the data, the range mapped to [−1, 1].
    static func measureRange(_ set: ImageSet) -> (Float, Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<(set.count * set.valuesPerImage) { lo = min(lo, set.images[i]); hi = max(hi, set.images[i]) }
        return hi > lo ? (lo, hi) : (lo, lo + 1)
    }

    // MARK: - saving

    static let kind = "medsynth.diffusion"

    func metadata() -> [(String, String)] {
        [("format", "pt"), ("medsynth_kind", Self.kind), ("medsynth_version", medsynthVersion),
         ("config", config.json.serialized), ("state", stateJSON.serialized)]
    }

    /// Writes the weights (torch_ref's key names) as `options.weights` asks — both sets (EMA under
    /// `ema.`), the EMA weights under the plain names (a file a module of the same layout loads
    /// with strict=True), or the raw weights alone — with the configuration in the metadata.
    public func save(to path: String, options: DiffusionSaveOptions = DiffusionSaveOptions()) throws {
        try options.validate()
        var entries: [SafetensorsEntry]
        switch options.weights {
        case .both:
            entries = unet.stateEntries()
            if let ema { entries += TrainerCheckpoint.emaEntries(ema, of: unet) }
        case .raw:
            entries = unet.stateEntries()
        case .ema:
            guard let ema else {
                throw MedSynthError.invalidArgument("this model has no EMA weights (trained with ema_decay=0 or loaded without them); "
                    + "save with weights='raw'")
            }
            ema.swap()
            defer { ema.swap() }
            entries = unet.stateEntries()
        }
        try SafetensorsFile(metadata: metadata() + [(Self.weightsKey, options.weights.rawValue)], entries: entries).write(to: path)
    }

    /// Metadata key naming which weights a saved file holds ("both" when absent).
    static let weightsKey = "medsynth_weights"

    /// The configuration and state a checkpoint describes (also from files of medsynth 0.1.0, whose
    /// configuration held the state).
    static func savedConfig(_ file: SafetensorsFile, path: String) throws
        -> (config: DiffusionConfig, trainedSteps: Int, emaUpdates: Int, emaDecay: Float) {
        guard file.metadata("medsynth_kind") == kind, let text = file.metadata("config") else {
            throw MedSynthError.io("'\(path)' is not a medsynth diffusion checkpoint (no diffusion config in its metadata)")
        }
        var json = try JSON.parse(text, source: "the config metadata of '\(path)'")
        var state = try file.metadata("state").map { try JSON.parse($0, source: "the state metadata of '\(path)'") } ?? .object([])
        if file.metadata("state") == nil, case .object(let pairs) = json {
            let legacy: Set<String> = ["parameters", "trained_steps", "ema_updates"]
            json = .object(pairs.filter { !legacy.contains($0.0) })
            state = .object(pairs.filter { legacy.contains($0.0) } + [("ema_decay", .number(Double(file.metadata("ema_decay") ?? "0") ?? 0))])
        }
        // files written before v prediction became the default hold ε-prediction weights; every
        // medsynth file names its prediction, but one without the key keeps that old meaning
        if case .object(let pairs) = json, !pairs.contains(where: { $0.0 == "prediction" }) {
            json = .object(pairs + [("prediction", .string(PredictionType.epsilon.rawValue))])
        }
        let config: DiffusionConfig
        do { config = try DiffusionConfig(json: json) } catch let e as MedSynthError { throw MedSynthError.io("'\(path)': \(e)") }
        return try TrainerCheckpoint.naming(path) {
            let steps = try state.int("trained_steps") ?? 0, updates = try state.int("ema_updates") ?? 0
            let decay = try state.double("ema_decay") ?? 0
            try require(steps >= 0 && updates >= 0 && decay >= 0 && decay < 1,
                        "its training state is out of range (trained_steps \(steps), ema_updates \(updates), ema_decay \(decay))")
            return (config, steps, updates, Float(decay))
        }
    }

    public static func load(from path: String) throws -> DiffusionModel {
        let file = try SafetensorsFile.read(path)
        let saved = try savedConfig(file, path: path)
        let model = try TrainerCheckpoint.naming(path) { try DiffusionModel(config: saved.config) }
        try TrainerCheckpoint.loadNetwork(model.unet, from: file, path: path, savedEMA: true)
        // a model saved with its EMA must bring all of it: a partial set would sample differently;
        // a file of one set ("ema" or "raw") holds it under the plain names and no EMA
        let weights = file.metadata(weightsKey) ?? SavedWeights.both.rawValue
        guard let held = SavedWeights(rawValue: weights) else {
            throw MedSynthError.io("'\(path)': unknown \(weightsKey) '\(weights)' in its metadata")
        }
        if held == .both && (saved.emaDecay > 0 || file.entries.contains(where: { $0.name.hasPrefix("ema.") })) {
            let average = try ExponentialMovingAverage(model.unet.parameters, decay: saved.emaDecay > 0 ? saved.emaDecay : 0.999)
            try TrainerCheckpoint.loadEMA(average, of: model.unet, from: file, path: path)
            average.updates = saved.emaUpdates
            model.ema = average
        }
        model.trainedSteps = saved.trainedSteps
        return model
    }
}
