// A class-conditional denoising diffusion model: the U-Net, its noise schedule, the EMA of its
// weights and everything needed to continue training; sampling with DDPM, DDIM or DPM-Solver++
// and classifier-free guidance.
//
// Randomness is derived, never carried: step k of a run draws from a generator seeded by
// (seed, k), epoch e's data order from (seed, e), and sample i's noise from (sampling seed, i).
// So a run resumed from any checkpoint continues exactly as the uninterrupted run would, and the
// same seed gives the same images whatever the batch size (bit for bit at the same batch size; the
// linear layers' sgemm may round edge tiles differently when the batch changes).

import MedSynthCore

import Glibc

/// Mixes integers into a generator seed (SplitMix64's finaliser).
@inline(__always)
package func mixSeed(_ a: UInt64, _ b: UInt64, _ c: UInt64 = 0) -> UInt64 {
    var z = a &+ 0x9E37_79B9_7F4A_7C15 &* (b &+ 1) &+ 0xBF58_476D_1CE4_E5B9 &* (c &+ 1)
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

public final class DiffusionModel {
    public internal(set) var config: DiffusionConfig
    public let unet: UNet
    public let schedule: NoiseSchedule
    /// Averaged weights (nil until a run with EMA trains).
    public internal(set) var ema: ExponentialMovingAverage?
    /// Optimiser steps taken over the model's life.
    public internal(set) var trainedSteps = 0
    package var optimizer: AdamW?
    /// Engine memory one image needs in a sampling step (measured once).
    package var samplingBytesPerImage: Int? = nil

    public init(config: DiffusionConfig) throws {
        try config.validate()
        self.config = config
        schedule = try NoiseSchedule(config.schedule, steps: config.timesteps, betaStart: config.betaStart, betaEnd: config.betaEnd)
        unet = try UNet(config.unet, rng: RandomGenerator(seed: config.seed))
        unet.eval()
    }

    public var valuesPerImage: Int { config.unet.inChannels * config.unet.imageSize * config.unet.imageSize }
    public var isConditional: Bool { config.unet.numClasses > 0 }
    package var nullClass: Int { config.unet.numClasses }

    public var configJSON: JSON {
        config.json(extra: [("parameters", .number(Double(unet.parameterCount))),
                            ("trained_steps", .number(Double(trainedSteps))),
                            ("ema_updates", .number(Double(ema?.updates ?? 0)))])
    }

    // MARK: - data

    package func checkData(_ set: ImageSet, needLabels: Bool) throws {
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
    package static func measureRange(_ set: ImageSet) -> (Float, Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<(set.count * set.valuesPerImage) { lo = min(lo, set.images[i]); hi = max(hi, set.images[i]) }
        return hi > lo ? (lo, hi) : (lo, lo + 1)
    }

    // MARK: - saving

    package static let kind = "medsynth.diffusion"

    package func stateEntries(includeTraining: Bool) -> [SafetensorsEntry] {
        var entries = unet.stateEntries()
        if let ema {
            let names = unet.namedParameters().map { $0.0 }
            entries += zip(names, ema.shadow).map { SafetensorsEntry(name: "ema." + $0.0, tensor: $0.1) }
        }
        if includeTraining, let optimizer { entries += optimizer.stateEntries() }
        return entries
    }

    package func metadata(extra: [(String, String)] = []) -> [(String, String)] {
        [("format", "pt"), ("medsynth_kind", Self.kind), ("medsynth_version", medsynthVersion),
         ("config", configJSON.serialized), ("ema_decay", String(ema?.decay ?? 0))] + extra
    }

    /// Weights (torch_ref's key names; EMA weights under `ema.`), configuration in the metadata.
    public func save(to path: String) throws {
        try SafetensorsFile(metadata: metadata(), entries: stateEntries(includeTraining: false)).write(to: path)
    }

    public static func load(from path: String) throws -> DiffusionModel {
        let file = try SafetensorsFile.read(path)
        guard file.metadata("medsynth_kind") == kind, let text = file.metadata("config") else {
            throw MedSynthError.io("'\(path)' is not a medsynth diffusion checkpoint (no diffusion config in its metadata)")
        }
        let json = try JSON.parse(text, source: "the config metadata of '\(path)'")
        var stripped: [(String, JSON)] = []
        for (k, v) in json.object ?? [] where !["parameters", "trained_steps", "ema_updates"].contains(k) { stripped.append((k, v)) }
        let model: DiffusionModel
        do {
            model = try DiffusionModel(config: try DiffusionConfig(json: .object(stripped)))
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.invalidArgument("the config metadata of '\(path)': \(m)")   // name the file
        }
        do {
            try model.restore(file, emaDecay: Float(file.metadata("ema_decay") ?? "0") ?? 0)
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.io("'\(path)': \(m)")
        }
        model.trainedSteps = (try? json.int("trained_steps")).flatMap { $0 } ?? 0
        return model
    }

    /// Loads weights (and EMA weights, when present) from a checkpoint file.
    package func restore(_ file: SafetensorsFile, emaDecay: Float) throws {
        let modelKeys = Set(unet.stateEntries().map { $0.name })
        let names = unet.namedParameters().map { $0.0 }
        let emaKeys = Set(names.map { "ema." + $0 })
        // nothing in the file may go unread: the model, its EMA weights (all or none) and, in a
        // training checkpoint, the optimiser's state
        let training = file.metadata("training") != nil
        let extra = file.entries.map { $0.name }.filter {
            !modelKeys.contains($0) && !emaKeys.contains($0) && !(training && $0.hasPrefix("optimizer."))
        }.sorted()
        try require(extra.isEmpty, "the checkpoint holds tensors this model does not have: \(extra.prefix(5).joined(separator: ", "))")
        let emaPresent = emaKeys.filter { file[$0] != nil }.count
        try require(emaPresent == 0 || emaPresent == emaKeys.count,
                    "the checkpoint holds \(emaPresent) of the \(emaKeys.count) EMA tensors; it is incomplete")
        try unet.loadState(file.entries.filter { modelKeys.contains($0.name) })
        if emaPresent > 0 {
            let average = try ExponentialMovingAverage(unet.parameters, decay: emaDecay > 0 ? emaDecay : 0.999)
            try average.loadState(prefix: "ema") { key in
                // the EMA's own keys are indices; map them to the parameter names saved here
                if key == "ema.updates" { return nil }
                guard let index = Int(key.dropFirst(4)), index < names.count else { return nil }
                return file["ema." + names[index]]
            }
            ema = average
        }
        if let configText = file.metadata("config"), let json = try? JSON.parse(configText),
           let updates = (try? json.int("ema_updates")).flatMap({ $0 }) {
            ema?.updates = updates
        }
    }
}
