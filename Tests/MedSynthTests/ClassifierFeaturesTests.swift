// Pooled features (Training/ClassifierFeatures.swift): the head applied to them gives exactly the
// model's probabilities, batching does not change them (beyond rounding), and bad buffers are errors.

import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct ClassifierFeaturesTests {
    @Test func headOfFeaturesGivesThePredictedProbabilities() throws {
        let n = 7, size = 16, classes = 3
        let classifier = try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: classes, inChannels: 1,
                                                                      imageSize: size, seed: 3))
        let rng = RandomGenerator(seed: 11)
        let images = (0..<(n * size * size)).map { _ in rng.uniform() }
        let d = try classifier.featureSize()
        #expect(d == 128)
        var features = [Float](repeating: .nan, count: n * d), again = features
        var probs = [Float](repeating: .nan, count: n * classes)
        try images.withUnsafeBufferPointer { buffer in
            let set = ImageSet(images: buffer.baseAddress!, count: n, channels: 1, height: size, width: size)
            try features.withUnsafeMutableBufferPointer { try classifier.features(set, batchSize: 3, into: $0.baseAddress!) }
            try again.withUnsafeMutableBufferPointer { try classifier.features(set, batchSize: 64, into: $0.baseAddress!) }
            try probs.withUnsafeMutableBufferPointer { try classifier.predictProbabilities(set, into: $0.baseAddress!) }
        }
        // small maps choose their convolution by batch size (Winograd across the batch wants enough
        // images), so batches agree to rounding, not bit for bit
        let scale = features.map { abs($0) }.max() ?? 1
        #expect(zip(features, again).allSatisfy { abs($0 - $1) <= 1e-5 * scale }, "features depend on the batch they were computed in")
        #expect(features.contains { $0 > 0 } && features.allSatisfy { $0 >= 0 }, "simple_cnn's pooled ReLU features are non-negative and not all zero")
        let head = try #require(classifier.head)
        let fromFeatures = try withoutGrad { try softmax(try linear(Tensor(features, shape: [n, d]), head.weight, head.bias), dim: 1) }
        for i in 0..<(n * classes) {
            #expect(abs(fromFeatures.data[i] - probs[i]) < 1e-6, "probability \(i): head(features) \(fromFeatures.data[i]) vs model \(probs[i])")
        }
        #expect(head.inputTap == nil, "the tap must be removed after use")
    }

    @Test func wrongImageSizeIsAnError() throws {
        let classifier = try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: 2, inChannels: 1,
                                                                      imageSize: 16, seed: 0))
        let images = [Float](repeating: 0, count: 2 * 8 * 8)
        var out = [Float](repeating: 0, count: 2 * 128)
        try images.withUnsafeBufferPointer { buffer in
            let set = ImageSet(images: buffer.baseAddress!, count: 2, channels: 1, height: 8, width: 8)
            #expect(throws: MedSynthError.self) {
                try out.withUnsafeMutableBufferPointer { try classifier.features(set, into: $0.baseAddress!) }
            }
        }
    }
}
