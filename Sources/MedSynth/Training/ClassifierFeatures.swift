// Pooled features of a classifier: the vector its head (the last linear layer) reads, e.g. 512
// values for ResNet-18, 4096 for VGG and AlexNet, 128 for simple_cnn. They are the feature space
// of Fréchet distances, KID, precision/recall and nearest-neighbour audits of synthetic images
// (torchmetrics and clean-fid use Inception's pool3 features the same way).

import MedSynthCore

extension ImageClassifier {
    /// The head: the model's last `Linear` in registration order. Every architecture of the
    /// registry ends in one after its pooled feature vector (GoogLeNet registers its auxiliary
    /// classifiers before `fc`; VGG and AlexNet's `classifier.6` follows two hidden layers).
    package var head: Linear? { model.modules().last { $0 is Linear } as? Linear }

    /// Length of the feature vector (the head's input).
    public func featureSize() throws -> Int {
        guard let head else { throw MedSynthError.runtime("\(config.architecture) has no linear head to take features from") }
        return head.weight.shape[1]
    }

    /// The head's input for every image of `set`, [n, featureSize] into `out`, evaluation mode,
    /// in batches (the same normalisation as prediction).
    public func features(_ set: ImageSet, batchSize: Int = 64, into out: UnsafeMutablePointer<Float>,
                         progress: Progress = .silent) throws {
        try check(set, what: "input", needLabels: false)
        try require(batchSize >= 1, "batch_size must be at least 1")
        guard let head else { throw MedSynthError.runtime("\(config.architecture) has no linear head to take features from") }
        let d = try featureSize()
        try checkInferenceMemory(set, batchSize: batchSize)
        model.eval()
        var captured: Tensor? = nil
        head.inputTap = { captured = $0 }
        defer { head.inputTap = nil }
        var start = 0
        try withoutGrad {
            while start < set.count {
                let end = min(set.count, start + batchSize)
                captured = nil
                _ = try model(batch(set, Array(start..<end)[...]))
                guard let f = captured, f.shape == [end - start, d] else {
                    throw MedSynthError.runtime("\(config.architecture)'s head did not receive [\(end - start), \(d)] features")
                }
                (out + start * d).update(from: f.data, count: (end - start) * d)
                start = end
                try progress.report(start, set.count, .object([("phase", .string("features"))]))
            }
        }
    }
}
