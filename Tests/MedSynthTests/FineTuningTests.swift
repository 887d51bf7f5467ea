// Fine-tuning options of classifier training: a frozen backbone keeps every weight bit for bit
// while the head learns; a backbone learning-rate scale s makes AdamW's first update of each
// backbone weight s times the unscaled one (the first Adam step is lr·g/(|g|+eps), independent of
// the gradient's size), while the head's update is unchanged.

import Testing
@testable import MedSynth
@testable import MedSynthCore

private func oneEpoch(_ configure: (inout ClassifierTrainingOptions) -> Void) throws -> (before: [String: [Float]], after: [String: [Float]], head: Set<String>) {
    let n = 8, size = 12
    var images = [Float](repeating: 0, count: n * size * size)
    var labels = [Int64](repeating: 0, count: n)
    try images.withUnsafeMutableBufferPointer { i in
        try labels.withUnsafeMutableBufferPointer { l in
            try ShapesDataset.generate(nPerClass: n / 2, numClasses: 2, size: size, channels: 1, seed: 3,
                                       images: i.baseAddress!, labels: l.baseAddress!)
        }
    }
    let clf = try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: 2, inChannels: 1, imageSize: size, seed: 5))
    let snapshot = { Dictionary(uniqueKeysWithValues: clf.model.namedParameters().map { ($0.0, Array(UnsafeBufferPointer(start: $0.1.data, count: $0.1.count))) }) }
    let before = snapshot()
    var options = ClassifierTrainingOptions()
    options.epochs = 1
    options.batchSize = n          // one step
    options.learningRate = 1e-2
    options.seed = 1
    configure(&options)
    try images.withUnsafeBufferPointer { i in
        try labels.withUnsafeBufferPointer { l in
            _ = try clf.fit(ImageSet(images: i.baseAddress!, count: n, channels: 1, height: size, width: size, labels: l.baseAddress!),
                            options: options)
        }
    }
    return (before, snapshot(), Set(clf.headParameters.map { $0.0 }))
}

@Suite struct FineTuningTests {
    @Test func frozenBackboneKeepsEveryWeightAndTheHeadLearns() throws {
        let run = try oneEpoch { $0.freezeBackbone = true }
        #expect(run.head == ["classifier.1.weight", "classifier.1.bias"])
        for (name, weights) in run.before {
            if run.head.contains(name) {
                #expect(weights != run.after[name], "head parameter \(name) did not change")
            } else {
                #expect(weights == run.after[name], "backbone parameter \(name) changed although frozen")
            }
        }
    }

    @Test func backboneLearningRateScaleScalesTheBackboneUpdateOnly() throws {
        let full = try oneEpoch { _ in }
        let scaled = try oneEpoch { $0.backboneLRScale = 0.1 }
        for (name, start) in full.before {
            let a = full.after[name]!, b = scaled.after[name]!
            let fullStep = zip(a, start).map { Double($0 - $1) }, scaledStep = zip(b, start).map { Double($0 - $1) }
            let norm = { (v: [Double]) in v.map { $0 * $0 }.reduce(0, +).squareRoot() }
            let ratio = norm(scaledStep) / norm(fullStep)
            let expected = full.head.contains(name) ? 1.0 : 0.1
            #expect(abs(ratio - expected) < 1e-3 * expected + 1e-4, "\(name): update ratio \(ratio), expected \(expected)")
        }
    }

    @Test func everyParameterFrozenOrNonPositiveScaleIsAnError() throws {
        var options = ClassifierTrainingOptions()
        options.backboneLRScale = 0
        #expect(throws: MedSynthError.self) { try options.validate() }
        options.backboneLRScale = .nan
        #expect(throws: MedSynthError.self) { try options.validate() }
    }
}
