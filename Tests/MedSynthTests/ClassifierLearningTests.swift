// The engine's own proof that it learns (Training/): simple_cnn on generated shapes reaches high
// held-out accuracy; training is bit-reproducible; a resumed run equals an uninterrupted one;
// early stopping restores the best weights; bad inputs throw the right errors; cancellation
// leaves a usable model. Shapes are small so the suite stays fast in a debug build.

import Testing
@testable import MedSynth
@testable import MedSynthCore

/// A generated shapes set held in arrays (the ImageSet borrows them inside `with`).
struct Shapes {
    var images: [Float]
    var labels: [Int64]
    let count: Int, size: Int

    init(nPerClass: Int, classes: Int, size: Int, seed: UInt64) throws {
        count = nPerClass * classes
        self.size = size
        var images = [Float](repeating: 0, count: count * size * size)
        var labels = [Int64](repeating: 0, count: count)
        try images.withUnsafeMutableBufferPointer { i in
            try labels.withUnsafeMutableBufferPointer { l in
                try ShapesDataset.generate(nPerClass: nPerClass, numClasses: classes, size: size, channels: 1, seed: seed,
                                           images: i.baseAddress!, labels: l.baseAddress!)
            }
        }
        self.images = images
        self.labels = labels
    }

    /// `body` with an ImageSet over these arrays; `height`/`width` may be overridden to describe
    /// the same pixels wrongly (for error tests).
    func with<R>(height: Int? = nil, width: Int? = nil, labelled: Bool = true, _ body: (ImageSet) throws -> R) rethrows -> R {
        try images.withUnsafeBufferPointer { i in
            try labels.withUnsafeBufferPointer { l in
                let h = height ?? size, w = width ?? size
                return try body(ImageSet(images: i.baseAddress!, count: min(count, images.count / max(1, h * w)), channels: 1,
                                         height: h, width: w, labels: labelled ? l.baseAddress! : nil))
            }
        }
    }
}

private func classifier(classes: Int = 3, size: Int, seed: UInt64 = 0) throws -> ImageClassifier {
    try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: classes, inChannels: 1, imageSize: size, seed: seed))
}

private func options(epochs: Int, batchSize: Int = 16, lr: Float = 3e-3, seed: UInt64 = 0) -> ClassifierTrainingOptions {
    var o = ClassifierTrainingOptions()
    o.epochs = epochs
    o.batchSize = batchSize
    o.learningRate = lr
    o.seed = Int(seed)
    return o
}

/// Every state-dict tensor's bytes, by name.
private func weightBits(_ c: ImageClassifier) -> [String: [UInt8]] {
    Dictionary(uniqueKeysWithValues: c.model.stateEntries().map { ($0.name, $0.bytes) })
}

private func trainLosses(_ history: JSON) -> [Double] { history["epochs"]?.array?.compactMap { $0["train_loss"]?.double } ?? [] }

@Suite(.serialized) struct ClassifierLearningTests {
    @Test func simpleCNNLearnsShapes() throws {
        // 3 classes (disc, square, triangle), 20×20 pixels, 60 training images per class, 5 epochs of
        // AdamW at 3e-3; evaluated on 50 held-out images per class drawn with another seed. Chance is 1/3.
        let train = try Shapes(nPerClass: 60, classes: 3, size: 20, seed: 1)
        let test = try Shapes(nPerClass: 50, classes: 3, size: 20, seed: 999)
        let clf = try classifier(size: 20)
        let history = try train.with { try clf.fit($0, options: options(epochs: 5, batchSize: 32)) }
        let losses = trainLosses(history)
        #expect(losses.count == 5)
        #expect(losses.allSatisfy { $0.isFinite })
        // the loss fell: from about ln 3 = 1.1 to well below it
        #expect(losses.last! < 0.5 * losses.first!, "\(losses)")
        #expect(losses.last! < 0.4, "\(losses)")
        #expect(history["stopped_early"] == .bool(false))
        let (loss, accuracy) = try test.with { try clf.evaluate($0) }
        #expect(accuracy >= 0.85, "held-out accuracy \(accuracy), loss \(loss)")
        #expect(!clf.model.isTraining)

        // predicted probabilities: rows sum to 1 and their argmax agrees with evaluate's accuracy
        var probabilities = [Float](repeating: 0, count: test.count * 3)
        try test.with(labelled: false) { set in
            try probabilities.withUnsafeMutableBufferPointer { try clf.predictProbabilities(set, batchSize: 7, into: $0.baseAddress!) }
        }
        var correct = 0
        for i in 0..<test.count {
            let row = Array(probabilities[(3 * i)..<(3 * i + 3)])
            #expect(abs(row.reduce(0, +) - 1) < 1e-5)
            if row.firstIndex(of: row.max()!) == Int(test.labels[i]) { correct += 1 }
        }
        #expect(abs(Double(correct) / Double(test.count) - accuracy) < 1e-9)

        // saved and reloaded: the same predictions, bit for bit (at the same batch size: sgemm's
        // edge tiles may round differently when the batch, its M dimension, changes)
        try withTemporaryDirectory { dir in
            try clf.save(to: dir + "/model.safetensors")
            let loaded = try ImageClassifier.load(from: dir + "/model.safetensors")
            #expect(loaded.config == clf.config)
            #expect(weightBits(loaded) == weightBits(clf))
            var again = [Float](repeating: 0, count: test.count * 3)
            try test.with(labelled: false) { set in
                try again.withUnsafeMutableBufferPointer { try loaded.predictProbabilities(set, batchSize: 7, into: $0.baseAddress!) }
            }
            #expect(again == probabilities)
        }
    }

    @Test func sameSeedTwiceGivesBitIdenticalWeights() throws {
        let train = try Shapes(nPerClass: 20, classes: 3, size: 16, seed: 2)
        func run(seed: UInt64) throws -> ([String: [UInt8]], JSON) {
            let clf = try classifier(size: 16)
            let history = try train.with { try clf.fit($0, options: options(epochs: 2, seed: seed)) }
            return (weightBits(clf), history)
        }
        let (a, ha) = try run(seed: 0)
        let (b, hb) = try run(seed: 0)
        #expect(a == b)
        #expect(ha == hb)
        // another training seed shuffles differently: different weights
        let (c, _) = try run(seed: 1)
        #expect(a != c)
    }

    @Test func resumedRunEqualsUninterruptedRun() throws {
        let train = try Shapes(nPerClass: 20, classes: 3, size: 16, seed: 3)
        let validation = try Shapes(nPerClass: 8, classes: 3, size: 16, seed: 4)
        try withTemporaryDirectory { dir in
            func opts(_ checkpoint: String, resume: Bool = false) -> ClassifierTrainingOptions {
                var o = options(epochs: 3, seed: 5)
                o.checkpoint = checkpoint
                o.resume = resume
                o.schedule = "cosine"       // the schedule depends on the global step: resuming must get it right
                o.optimizer = "adamw"
                return o
            }
            func fit(_ clf: ImageClassifier, _ o: ClassifierTrainingOptions, progress: Progress = .silent) throws -> JSON {
                try train.with { t in try validation.with { v in try clf.fit(t, validation: v, options: o, progress: progress) } }
            }
            // uninterrupted: 3 epochs (60 images, batch 16 → 4 steps per epoch, 12 steps)
            let a = try classifier(size: 16)
            let historyA = try fit(a, opts(dir + "/a.safetensors"))

            // interrupted: cancelled after the 2nd step of epoch 3 (the checkpoint holds epoch 2)
            let token = CancelToken()
            let stopper = Progress(report: { done, _, info in
                if info["phase"] == .string("train") && done == 10 { token.cancel() }
                try token.check()
            }, cancel: token)
            let b = try classifier(size: 16)
            #expect(thrownError { _ = try fit(b, opts(dir + "/b.safetensors"), progress: stopper) } == .cancelled)
            let saved = try SafetensorsFile.read(dir + "/b.safetensors")
            #expect(try JSON.parse(saved.metadata("training") ?? "").int("step") == 8)
            #expect(saved["optimizer.adamw.step"]?.int64Scalar() == 8)

            // resumed by a fresh classifier (as a new process would): epoch 3 only
            let c = try classifier(size: 16)
            var steps: [Int] = []
            let recorder = Progress(report: { done, _, info in if info["phase"] == .string("train") { steps.append(done) } })
            let historyC = try fit(c, opts(dir + "/b.safetensors", resume: true), progress: recorder)
            #expect(steps == [9, 10, 11, 12])
            #expect(weightBits(c) == weightBits(a))
            #expect(historyC == historyA)
            #expect(c.config.mean == a.config.mean && c.config.std == a.config.std)
            // and the run is not trivially equal: the interrupted model differs from both
            #expect(weightBits(b) != weightBits(a))
        }
    }

    @Test func earlyStoppingStopsAndRestoresTheBestWeights() throws {
        // The validation labels are shifted ((y + 1) mod 3), so the better the model learns the
        // training set, the worse the validation loss: the best epoch comes early and training stops
        // `patience` epochs later.
        let train = try Shapes(nPerClass: 20, classes: 3, size: 16, seed: 6)
        var validation = try Shapes(nPerClass: 10, classes: 3, size: 16, seed: 7)
        validation.labels = validation.labels.map { ($0 + 1) % 3 }
        func run(restoreBest: Bool) throws -> (ImageClassifier, JSON) {
            let clf = try classifier(size: 16)
            var o = options(epochs: 10, seed: 8)
            o.earlyStoppingPatience = 2
            o.restoreBest = restoreBest
            let history = try train.with { t in try validation.with { v in try clf.fit(t, validation: v, options: o) } }
            return (clf, history)
        }
        let (clf, history) = try run(restoreBest: true)
        let epochs = try #require(history["epochs"]?.array)
        let best = try #require(try history.int("best_epoch"))
        let valLosses = epochs.compactMap { $0["val_loss"]?.double }
        #expect(history["stopped_early"] == .bool(true))
        #expect(epochs.count < 10)
        #expect(epochs.count == best + 2, "best epoch \(best), \(epochs.count) epochs run")
        #expect(valLosses.min() == valLosses[best - 1])
        // the model holds the best epoch's weights: evaluating it reproduces that epoch's val_loss
        let restored = try validation.with { try clf.evaluate($0) }
        #expect(restored.loss == valLosses[best - 1], "\(restored.loss) vs \(valLosses)")

        // without restore_best the last epoch's weights stay
        let (last, lastHistory) = try run(restoreBest: false)
        #expect(lastHistory["stopped_early"] == .bool(true))
        let lastLosses = lastHistory["epochs"]?.array?.compactMap { $0["val_loss"]?.double } ?? []
        #expect(lastLosses == valLosses)
        #expect(try validation.with { try last.evaluate($0) }.loss == lastLosses.last)
        #expect(lastLosses.last != valLosses[best - 1])
    }

    @Test func invalidInputsThrowTheRightErrors() throws {
        let data = try Shapes(nPerClass: 4, classes: 3, size: 16, seed: 9)
        let clf = try classifier(size: 16)
        let before = weightBits(clf)
        for lr in [Float.nan, .infinity, 0, -1e-3] {
            var o = options(epochs: 1)
            o.learningRate = lr
            expectInvalidArgument("lr must be in (0, 10)") { try data.with { _ = try clf.fit($0, options: o) } }
        }
        var zeroEpochs = options(epochs: 1)
        zeroEpochs.epochs = 0
        expectInvalidArgument("epochs must be between 1 and 100000") { try data.with { _ = try clf.fit($0, options: zeroEpochs) } }
        var weights = options(epochs: 1)
        weights.classWeights = [1, 2]
        expectInvalidArgument("class_weights needs 3 values, got 2") { try data.with { _ = try clf.fit($0, options: weights) } }

        // NaN and infinite pixels
        for bad in [Float.nan, .infinity] {
            var poisoned = data
            poisoned.images[37] = bad
            expectInvalidArgument("training set contains NaN or infinite values") {
                try poisoned.with { _ = try clf.fit($0, options: options(epochs: 1)) }
            }
        }
        // labels outside [0, 3)
        for label: Int64 in [3, -1] {
            var mislabelled = data
            mislabelled.labels[5] = label
            expectInvalidArgument("training set label \(label) at index 5 is outside [0, 3)") {
                try mislabelled.with { _ = try clf.fit($0, options: options(epochs: 1)) }
            }
        }
        // unlabelled training data
        expectInvalidArgument("training set needs labels") { try data.with(labelled: false) { _ = try clf.fit($0, options: options(epochs: 1)) } }
        // the wrong image size (the same pixels described as 8×32), for training, validation and prediction
        expectInvalidArgument("training set images are 8x32 but the model takes 16x16; resize them first") {
            try data.with(height: 8, width: 32) { _ = try clf.fit($0, options: options(epochs: 1)) }
        }
        expectInvalidArgument("validation set images are 12x12") {
            try data.with { t in try data.with(height: 12, width: 12) { v in _ = try clf.fit(t, validation: v, options: options(epochs: 1)) } }
        }
        var out = [Float](repeating: 0, count: 1000)
        expectInvalidArgument("input images are 20x20") {
            try data.with(height: 20, width: 20) { s in try out.withUnsafeMutableBufferPointer { try clf.predictProbabilities(s, into: $0.baseAddress!) } }
        }
        // the wrong channel count and an empty set
        data.images.withUnsafeBufferPointer { i in
            data.labels.withUnsafeBufferPointer { l in
                let rgb = ImageSet(images: i.baseAddress!, count: 4, channels: 3, height: 16, width: 16, labels: l.baseAddress!)
                expectInvalidArgument("training set has 3 channel(s) but the model takes 1") { _ = try clf.fit(rgb, options: options(epochs: 1)) }
                let empty = ImageSet(images: i.baseAddress!, count: 0, channels: 1, height: 16, width: 16, labels: l.baseAddress!)
                expectInvalidArgument("training set is empty") { _ = try clf.fit(empty, options: options(epochs: 1)) }
            }
        }
        // nothing was trained by any of these calls
        #expect(weightBits(clf) == before)
        #expect(!clf.normalizationFitted)
        // bad configurations
        expectInvalidArgument("unknown architecture 'resnet1000'") {
            _ = try ImageClassifier(config: ClassifierConfig(architecture: "resnet1000", numClasses: 3, inChannels: 1, imageSize: 16))
        }
        expectInvalidArgument("needs images of at least 8x8") { _ = try classifier(size: 4) }
        expectInvalidArgument("num_classes must be between 2 and 100000, got 1") { _ = try classifier(classes: 1, size: 16) }
    }

    @Test func cancellationStopsTrainingAndLeavesAUsableModel() throws {
        let data = try Shapes(nPerClass: 8, classes: 3, size: 16, seed: 10)
        // cancelled from the progress callback after the 2nd step: two steps were applied
        let clf = try classifier(size: 16)
        let initial = weightBits(clf)
        let token = CancelToken()
        var reports = 0
        let progress = Progress(report: { done, _, _ in
            reports += 1
            if done >= 2 { token.cancel() }
            try token.check()
        }, cancel: token)
        #expect(thrownError { try data.with { _ = try clf.fit($0, options: options(epochs: 5, batchSize: 8), progress: progress) } } == .cancelled)
        #expect(reports == 2)
        #expect(weightBits(clf) != initial)
        #expect(!clf.model.isTraining)
        // the model still predicts: finite probabilities that sum to 1
        var p = [Float](repeating: -1, count: data.count * 3)
        try data.with(labelled: false) { s in try p.withUnsafeMutableBufferPointer { try clf.predictProbabilities(s, into: $0.baseAddress!) } }
        #expect(p.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
        for i in 0..<data.count { #expect(abs(p[3 * i] + p[3 * i + 1] + p[3 * i + 2] - 1) < 1e-5) }

        // a token raised before training: backward stops in the first step, no weight moves
        let fresh = try classifier(size: 16, seed: 3)
        let freshBefore = Dictionary(uniqueKeysWithValues: fresh.model.namedParameters().map { ($0.0, $0.1.scalars) })
        let raised = CancelToken()
        raised.cancel()
        #expect(thrownError { try data.with { _ = try fresh.fit($0, options: options(epochs: 1), progress: Progress(cancel: raised)) } } == .cancelled)
        #expect(Dictionary(uniqueKeysWithValues: fresh.model.namedParameters().map { ($0.0, $0.1.scalars) }) == freshBefore)
        #expect(!fresh.model.isTraining)
        var q = [Float](repeating: -1, count: data.count * 3)
        try data.with(labelled: false) { s in try q.withUnsafeMutableBufferPointer { try fresh.predictProbabilities(s, into: $0.baseAddress!) } }
        #expect(q.allSatisfy { $0.isFinite })
        // and training again afterwards works
        try data.with { _ = try fresh.fit($0, options: options(epochs: 1)) }
    }
}
