// An image classifier: an architecture from the registry, its input normalisation, and the
// training loop (AdamW or SGD, cross-entropy, optional validation with early stopping, atomic
// per-epoch checkpoints that a later run resumes exactly).

import MedSynthCore

import Glibc

public final class ImageClassifier {
    public internal(set) var config: ClassifierConfig
    public let model: Layer
    /// False until the first `fit` has measured the input mean and standard deviation.
    public internal(set) var normalizationFitted = false
    /// Engine memory one image needs in an inference pass (measured once).
    package var inferenceBytesPerImage: Int? = nil

    public init(config: ClassifierConfig) throws {
        try config.validate()
        self.config = config
        let arch = try ClassifierArchitecture.named(config.architecture)
        model = try arch.build(config.inChannels, config.numClasses, RandomGenerator(seed: config.seed))
        model.eval()
    }

    public var configJSON: JSON { config.json(parameters: model.parameterCount, normalizationFitted: normalizationFitted) }

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

    /// Copies images `indices` of `set` into a normalised batch tensor.
    package func batch(_ set: ImageSet, _ indices: ArraySlice<Int>) throws -> Tensor {
        let x = try Tensor(uninitialized: [indices.count, set.channels, set.height, set.width])
        let plane = set.height * set.width
        let (mean, std) = (config.mean, config.std)
        let dst = x.data, src = set.images, idx = Array(indices)
        parallelRanges(idx.count, grain: max(1, 65536 / max(1, set.valuesPerImage))) { lo, hi in
            for b in lo..<hi {
                for c in 0..<set.channels {
                    let s = src + idx[b] * set.valuesPerImage + c * plane, d = dst + b * set.valuesPerImage + c * plane
                    let (m, inv) = (mean[c], 1 / std[c])
                    for i in 0..<plane { d[i] = (s[i] - m) * inv }
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

    package func metadata(extra: [(String, String)] = []) -> [(String, String)] {
        [("format", "pt"), ("medsynth_kind", Self.kind), ("medsynth_version", medsynthVersion),
         ("config", configJSON.serialized)] + extra
    }

    /// Weights with torch's state-dict keys (loadable by torch with the matching architecture),
    /// configuration in the metadata.
    public func save(to path: String) throws {
        try SafetensorsFile(metadata: metadata(), entries: model.stateEntries()).write(to: path)
    }

    public static func load(from path: String) throws -> ImageClassifier {
        let file = try SafetensorsFile.read(path)
        guard file.metadata("medsynth_kind") == kind, let text = file.metadata("config") else {
            throw MedSynthError.io("'\(path)' is not a medsynth classifier checkpoint (no classifier config in its metadata)")
        }
        let json = try JSON.parse(text, source: "the config metadata of '\(path)'")
        let classifier: ImageClassifier
        do {
            classifier = try ImageClassifier(config: try ClassifierConfig(json: json))
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.invalidArgument("the config metadata of '\(path)': \(m)")   // name the file
        }
        classifier.normalizationFitted = (try? json.bool("normalization_fitted")) ?? true
        let modelKeys = Set(classifier.model.stateEntries().map { $0.name })
        // a training checkpoint also holds the optimiser's state and the best epoch's weights
        let training = file.metadata("training") != nil
        try file.requireOnly({ modelKeys.contains($0) || (training && ($0.hasPrefix("optimizer.") || $0.hasPrefix("best."))) }, path: path)
        do {
            try classifier.model.loadState(file.entries.filter { modelKeys.contains($0.name) }, strict: true)
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.io("'\(path)': \(m)")
        }
        return classifier
    }
}
