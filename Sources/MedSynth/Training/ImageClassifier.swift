// An image classifier: an architecture from the registry with its input normalisation; inference,
// evaluation and saving here, training in ClassifierTraining.swift (through the shared Trainer).

import MedSynthCore

import Glibc

public final class ImageClassifier {
    public internal(set) var config: ClassifierConfig
    public let model: Layer
    public let architecture: ClassifierArchitecture
    /// False until the first `fit` has measured the input mean and standard deviation.
    public internal(set) var normalizationFitted = false
    /// Engine memory one image needs in an inference pass (measured once).
    package var inferenceBytesPerImage: Int? = nil

    public init(config: ClassifierConfig) throws {
        var config = config
        config.resolve()
        try config.validate()
        self.config = config
        architecture = try ClassifierArchitecture.named(config.architecture)
        model = try architecture.build(ArchitectureOptions(inChannels: config.inChannels, numClasses: config.numClasses,
                                                       auxLogits: config.auxLogits),
                                   RandomGenerator(seed: config.seed, stream: .initialisation, index: 0))
        model.eval()
    }

    /// The head's parameters (the architecture's `head` modules), torchvision-named: what a
    /// fine-tuning run trains at the full learning rate or alone (frozen backbone).
    public var headParameters: [(String, Tensor)] { model.namedParameters().filter { architecture.isHead($0.0) } }
    /// Every other parameter: the (pretrained) feature extractor.
    public var backboneParameters: [(String, Tensor)] { model.namedParameters().filter { !architecture.isHead($0.0) } }

    /// What the model is now (output only, never accepted as configuration).
    public var stateJSON: JSON {
        .object([("parameters", .number(Double(model.parameterCount))), ("normalization_fitted", .bool(normalizationFitted)),
                 ("head_parameters", .array(headParameters.map { .string($0.0) }))])
    }

    /// The resolved configuration with the model's state under "state".
    public var configJSON: JSON {
        guard case .object(let pairs) = config.json else { return config.json }
        return .object(pairs + [("state", stateJSON)])
    }

    // MARK: - input checks

    package func check(_ set: ImageSet, what: String, needLabels: Bool) throws {
        try require(set.count >= 1, "\(what) is empty")
        try require(set.channels == config.inChannels,
                    "\(what) has \(set.channels) channel(s) but the model takes \(config.inChannels)")
        try require(set.height == config.imageSize && set.width == config.imageSize,
                    "\(what) images are \(set.height)x\(set.width) but the model takes \(config.imageSize)x\(config.imageSize); resize them first")
        try requireFinite(set.images, set.count * set.valuesPerImage, what)
        if needLabels {
            guard let labels = set.labels else { throw MedSynthError.invalidArgument("\(what) needs labels") }
            for i in 0..<set.count where labels[i] < 0 || labels[i] >= Int64(config.numClasses) {
                throw MedSynthError.invalidArgument("\(what) label \(labels[i]) at index \(i) is outside [0, \(config.numClasses))")
            }
        }
    }

    /// Copies images `indices` of `set` into a normalised batch tensor, each first changed by a
    /// random draw of `augmentation` (from the generator (rng's seed, image position)) when given.
    package func batch(_ set: ImageSet, _ indices: ArraySlice<Int>, augmentation: Augmentation? = nil,
                       rng: RandomGenerator? = nil) throws -> Tensor {
        let x = try Tensor(uninitialized: [indices.count, set.channels, set.height, set.width])
        let plane = set.height * set.width, count = set.valuesPerImage
        let (mean, std) = (config.mean, config.std)
        let dst = x.data, src = set.images, idx = Array(indices)
        // one generator per image, derived from the step's: the result does not depend on threads
        let seeds = rng.map { r in idx.map { _ in r.nextUInt64() } }
        let augment = augmentation.flatMap { $0.isIdentity ? nil : $0 }
        parallelRanges(idx.count, grain: max(1, 65536 / max(1, count))) { lo, hi in
            let scratch = augment == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { scratch?.deallocate() }
            for b in lo..<hi {
                let d = dst + b * count
                d.update(from: src + idx[b] * count, count: count)
                if let augment, let scratch, let seeds {
                    augment.apply(d, channels: set.channels, height: set.height, width: set.width,
                                  rng: RandomGenerator(seed: seeds[b]), scratch: scratch)
                }
                for c in 0..<set.channels {
                    let p = d + c * plane
                    let (m, inv) = (mean[c], 1 / std[c])
                    for i in 0..<plane { p[i] = (p[i] - m) * inv }
                }
            }
        }
        return x
    }

    package func fitNormalization(_ set: ImageSet) {
        let plane = set.height * set.width
        for c in 0..<set.channels {
            var sum = 0.0, sumSquares = 0.0
            for n in 0..<set.count {
                let p = set.images + n * set.valuesPerImage + c * plane
                let s = Double(Reduce.sum(p, plane))
                sum += s
                sumSquares += Double(Reduce.centredSumOfSquares(p, plane, mean: Float(s / Double(plane)))) + s * s / Double(plane)
            }
            let count = Double(set.count * plane)
            let mean = sum / count
            let variance = max(0, sumSquares / count - mean * mean)
            config.mean[c] = Float(mean)
            config.std[c] = Float(max(variance.squareRoot(), 1e-6))
        }
        normalizationFitted = true
    }

    // MARK: - prediction

    /// Softmax probabilities [n, numClasses] into `out`.
    public func predictProbabilities(_ set: ImageSet, batchSize: Int = 64, into out: UnsafeMutablePointer<Float>,
                                     progress: Progress = .silent) throws {
        try check(set, what: "input", needLabels: false)
        try require(batchSize >= 1, "batch_size must be at least 1")
        try checkInferenceMemory(set, batchSize: batchSize)
        model.eval()
        let k = config.numClasses
        var start = 0
        try withoutGrad {
            while start < set.count {
                let end = min(set.count, start + batchSize)
                let x = try batch(set, Array(start..<end)[...])
                let p = try softmax(try model(x), dim: 1)
                (out + start * k).update(from: p.data, count: (end - start) * k)
                start = end
                try progress.report(start, set.count, .object([("phase", .string("predict"))]))
            }
        }
    }

    /// Mean cross-entropy and accuracy on a labelled set (evaluation mode).
    public func evaluate(_ set: ImageSet, batchSize: Int = 64, weights: Tensor? = nil) throws -> (loss: Double, accuracy: Double) {
        try check(set, what: "validation set", needLabels: true)
        try checkInferenceMemory(set, batchSize: batchSize)
        model.eval()
        var lossSum = 0.0, correct = 0
        guard let labels = set.labels else { throw MedSynthError.invalidArgument("validation set needs labels") }
        try withoutGrad {
            var start = 0
            while start < set.count {
                let end = min(set.count, start + batchSize)
                let logits = try model(batch(set, Array(start..<end)[...]))
                let targets = (start..<end).map { Int(labels[$0]) }
                let loss = try crossEntropy(logits: logits, targets: targets, weight: weights, reduction: .sum)
                lossSum += Double(loss.item)
                correct += Self.correctCount(logits, targets)
                start = end
            }
        }
        return (lossSum / Double(set.count), Double(correct) / Double(set.count))
    }

    /// Measures (once) what one image costs in inference and checks `batchSize` of them fit.
    package func checkInferenceMemory(_ set: ImageSet, batchSize: Int) throws {
        if inferenceBytesPerImage == nil {
            model.eval()
            inferenceBytesPerImage = try MemoryBudget.peakBytes {
                _ = try withoutGrad { try model(batch(set, [0][...])) }
            }
        }
        try MemoryBudget.check(bytes: (inferenceBytesPerImage ?? 0) * min(batchSize, set.count) * 5 / 4,
                               what: "\(config.architecture) inference with batch size \(batchSize)")
    }

    package static func correctCount(_ logits: Tensor, _ targets: [Int]) -> Int {
        let k = logits.shape[1]
        var correct = 0
        for (i, t) in targets.enumerated() {
            let row = logits.data + i * k
            var best = 0
            for j in 1..<k where row[j] > row[best] { best = j }
            if best == t { correct += 1 }
        }
        return correct
    }

    // MARK: - saving

    package static let kind = "medsynth.classifier"

    package func metadata() -> [(String, String)] {
        [("format", "pt"), ("medsynth_kind", Self.kind), ("medsynth_version", medsynthVersion),
         ("config", config.json.serialized), ("state", stateJSON.serialized)]
    }

    /// Weights with torch's state-dict keys (loadable by torch with the matching architecture),
    /// configuration in the metadata.
    public func save(to path: String) throws {
        try SafetensorsFile(metadata: metadata(), entries: model.stateEntries()).write(to: path)
    }

    /// The configuration a checkpoint describes (also from files of medsynth 0.1.0, whose
    /// configuration held the state).
    static func savedConfig(_ file: SafetensorsFile, path: String) throws -> (config: ClassifierConfig, normalizationFitted: Bool) {
        guard file.metadata("medsynth_kind") == kind, let text = file.metadata("config") else {
            throw MedSynthError.io("'\(path)' is not a medsynth classifier checkpoint (no classifier config in its metadata); plain weights such as a torchvision state dict are loaded into a built classifier with load_state_dict")
        }
        var json = try JSON.parse(text, source: "the config metadata of '\(path)'")
        var state = try file.metadata("state").map { try JSON.parse($0, source: "the state metadata of '\(path)'") } ?? .object([])
        if file.metadata("state") == nil, case .object(let pairs) = json {
            let legacy: Set<String> = ["parameters", "normalization_fitted", "head_parameters"]
            json = .object(pairs.filter { !legacy.contains($0.0) })
            state = .object(pairs.filter { legacy.contains($0.0) })
        }
        for key in ["architecture", "num_classes", "in_channels", "image_size", "mean", "std", "class_names"] where json[key] == nil {
            throw MedSynthError.io("'\(path)': its classifier config has no '\(key)'")
        }
        do {
            return (try ClassifierConfig(json: json), try state.bool("normalization_fitted") ?? true)
        } catch let e as MedSynthError {
            throw MedSynthError.io("'\(path)': \(e)")
        }
    }

    public static func load(from path: String) throws -> ImageClassifier {
        let file = try SafetensorsFile.read(path)
        let saved = try savedConfig(file, path: path)
        let classifier = try TrainerCheckpoint.naming(path) { try ImageClassifier(config: saved.config) }
        classifier.normalizationFitted = saved.normalizationFitted
        try TrainerCheckpoint.loadNetwork(classifier.model, from: file, path: path)
        return classifier
    }
}
