// The eight torchvision CNNs (Models/): exactness against torchvision without torch. Each model
// is built with 4 classes, given torchvision's deterministic fixture weights (rebuilt here from the
// splitmix64 rules of the fixtures' README, written as safetensors with torchvision's names by the
// engine's writer and loaded strictly), and run on the two fixture inputs in evaluation mode; its
// logits must match torchvision's (Tests/Fixtures/torchvision_fixtures.json) to 1e-4 of their size. The state
// dict must list torchvision's names, shapes and dtypes in torchvision's order, with its entry and
// parameter counts. Also: the smallest input each model takes, and GoogLeNet's auxiliary heads.

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

/// n values in [0, 1) from splitmix64 of (k << 32) + i, the fixtures' generator:
///   z = (k << 32) + i + 0x9E3779B97F4A7C15; z = (z ^ z >> 30)·0xBF58476D1CE4E5B9;
///   z = (z ^ z >> 27)·0x94D049BB133111EB; z ^= z >> 31; u = (z >> 11)·2⁻⁵³.
func splitmixUniform(_ n: Int, key k: UInt64, _ body: (Int, Double) -> Void) {
    for i in 0..<n {
        var z = (k << 32) &+ UInt64(i) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        body(i, Double(z >> 11) * 0x1p-53)
    }
}

/// The fixture weights: entry k of the list gets u = uniform(numel, k) and, in float64 then float32,
///   num_batches_tracked 0 (I64); running_mean 0.1(2u−1); running_var 1 + 0.5u;
///   1-D weight 1 + 0.1(2u−1); other 1-D 0.05(2u−1); ≥2-D √(6/fan_in)(2u−1), fan_in = ∏ shape[1...].
func fixtureWeights(_ keys: [StateKey]) throws -> [SafetensorsEntry] {
    try keys.enumerated().map { k, key in
        if key.dtype == .I64 { return SafetensorsEntry(name: key.name, int64: 0) }
        let n = key.shape.reduce(1, *)
        let t = try Tensor(uninitialized: key.shape)
        let p = t.data
        let value: (Double) -> Double
        if key.name.hasSuffix(".running_mean") {
            value = { 0.1 * (2 * $0 - 1) }
        } else if key.name.hasSuffix(".running_var") {
            value = { 1 + 0.5 * $0 }
        } else if key.shape.count == 1 {
            value = key.name.hasSuffix(".weight") ? { 1 + 0.1 * (2 * $0 - 1) } : { 0.05 * (2 * $0 - 1) }
        } else {
            let bound = (6 / Double(key.shape.dropFirst().reduce(1, *))).squareRoot()
            value = { bound * (2 * $0 - 1) }
        }
        splitmixUniform(n, key: UInt64(k)) { i, u in p[i] = Float(value(u)) }
        return SafetensorsEntry(name: key.name, tensor: t)
    }
}

/// The two fixture images: uniform(2·3·64·64, 1 000 000) as [2, 3, 64, 64].
func fixtureInput() throws -> Tensor {
    let x = try Tensor(uninitialized: [2, 3, 64, 64])
    let p = x.data
    splitmixUniform(x.count, key: 1_000_000) { i, u in p[i] = Float(u) }
    return x
}

private func classifier(_ arch: String, classes: Int = 4, channels: Int = 3, size: Int = 64, aux: Bool = false,
                        seed: UInt64 = 0) throws -> ImageClassifier {
    var config = ClassifierConfig(architecture: arch, numClasses: classes, inChannels: channels, imageSize: size, seed: seed)
    config.auxLogits = aux
    return try ImageClassifier(config: config)
}

private let zoo = ["resnet18", "resnet50", "vgg16", "vgg19", "alexnet", "densenet121", "mobilenet_v2", "googlenet"]

@Suite(.serialized) struct TorchvisionZooTests {
    @Test(arguments: zoo)
    func logitsMatchTorchvision(_ arch: String) throws {
        let fixture = try TorchvisionFixtures.model(arch)
        let keys = fixture.stateKeys()
        #expect(keys.count == fixture.stateDictEntries)
        let clf = try classifier(arch)
        // torchvision's state dict: names, order, shapes, dtypes, counts
        let layout = clf.model.stateLayout().map { StateKey(name: $0.name, shape: $0.shape, dtype: $0.dtype) }
        #expect(layout.count == fixture.stateDictEntries)
        #expect(clf.model.parameterCount == fixture.parameters)
        for (i, (ours, theirs)) in zip(layout, keys).enumerated() where ours != theirs {
            Issue.record("entry \(i): ours \(ours), torchvision \(theirs)")
            break
        }
        // the fixture weights through a safetensors file, loaded strictly
        try withTemporaryDirectory { dir in
            let path = dir + "/\(arch).safetensors"
            try SafetensorsFile(entries: fixtureWeights(keys)).write(to: path)
            let report = try clf.loadWeights(from: path, mode: .strict)
            #expect(report.missing.isEmpty && report.unexpected.isEmpty)
        }
        clf.model.eval()
        let logits = try withoutGrad { try clf.model(fixtureInput()) }
        #expect(logits.shape == [2, 4])
        let expected = fixture.logits.flatMap { $0 }
        let scale = expected.map { abs($0) }.max() ?? 1
        var worst: Float = 0
        for (a, b) in zip(logits.scalars, expected) { worst = max(worst, abs(a - b) / scale) }
        print("fixture \(arch): max |logit − torchvision| / max |logit| = \(worst)")
        #expect(worst <= 1e-4, "\(arch): logits \(logits.scalars) vs torchvision \(expected)")
        // what it saves is the same state dict, bit for bit
        let saved = try SafetensorsFile.parse(try SafetensorsFile(entries: clf.model.stateEntries()).serialized())
        let original = Dictionary(uniqueKeysWithValues: try fixtureWeights(keys).map { ($0.name, $0.bytes) })
        #expect(saved.entries.allSatisfy { original[$0.name] == $0.bytes })
    }

    @Test func googLeNetAuxiliaryHeadsHaveTorchvisionsKeys() throws {
        let fixture = try TorchvisionFixtures.model("googlenet")
        let clf = try classifier("googlenet", aux: true)
        let layout = clf.model.stateLayout().map { StateKey(name: $0.name, shape: $0.shape, dtype: $0.dtype) }
        #expect(layout == fixture.stateKeys(aux: true))
        #expect(clf.model.parameterCount == fixture.keyListParameters)
        #expect(clf.headParameters.map { $0.0 }.allSatisfy { $0.hasPrefix("fc.") || $0.hasPrefix("aux") })
        #expect(clf.headParameters.count == 2 + 2 * 7)   // fc; per aux: conv.conv, conv.bn (weight, bias), fc1 and fc2 (weight, bias)

        // training mode: two auxiliary logits; evaluation: none, and the same main logits as without aux
        let x = try randomTensor([2, 3, 32, 32], seed: 5, requiresGrad: false)
        clf.model.train()
        let y = try clf.model(x)
        let aux = try #require(clf.model as? AuxiliaryLogits)
        #expect(aux.auxiliaryLogits.map { $0.shape } == [[2, 4], [2, 4]])
        // the auxiliary losses reach the auxiliary heads
        var loss = try crossEntropy(logits: y, targets: [0, 1])
        for a in aux.auxiliaryLogits { loss = try add(loss, mul(try crossEntropy(logits: a, targets: [0, 1]), aux.auxiliaryLossWeight)) }
        try loss.backward()
        let grads = Dictionary(uniqueKeysWithValues: clf.model.namedParameters().map { ($0.0, $0.1.grad) })
        #expect(grads["aux1.fc2.weight"].flatMap { $0 } != nil && grads["aux2.conv.conv.weight"].flatMap { $0 } != nil)
        clf.model.eval()
        _ = try withoutGrad { try clf.model(x) }
        #expect(aux.auxiliaryLogits.isEmpty)
    }

    @Test func googLeNetAuxiliaryLossTrainsTheAuxiliaryHeads() throws {
        // one training step: the aux heads' weights move only if the loop adds their losses
        let clf = try classifier("googlenet", classes: 2, channels: 1, size: 16, aux: true)
        var images = [Float](repeating: 0, count: 4 * 16 * 16)
        for i in images.indices { images[i] = Float(i % 7) / 7 }
        var labels: [Int64] = [0, 1, 0, 1]
        let before = try #require(clf.model.namedParameters().first { $0.0 == "aux1.fc1.weight" }?.1.scalars)
        var options = ClassifierTrainingOptions()
        options.epochs = 1
        options.batchSize = 4
        try images.withUnsafeBufferPointer { i in
            try labels.withUnsafeMutableBufferPointer { l in
                _ = try clf.fit(ImageSet(images: i.baseAddress!, count: 4, channels: 1, height: 16, width: 16,
                                         labels: UnsafePointer(l.baseAddress!)), options: options)
            }
        }
        let after = try #require(clf.model.namedParameters().first { $0.0 == "aux1.fc1.weight" }?.1.scalars)
        #expect(before != after)
        // and aux_logits is only for GoogLeNet
        expectInvalidArgument("aux_logits") { _ = try classifier("resnet18", aux: true) }
    }

    @Test(arguments: zoo)
    func smallestInputAndJustBelow(_ arch: String) throws {
        let minSize = try ClassifierArchitecture.named(arch).minImageSize
        let clf = try classifier(arch, classes: 3, channels: 1, size: minSize)
        let y = try withoutGrad { try clf.model(Tensor(zeros: [2, 1, minSize, minSize])) }
        #expect(y.shape == [2, 3])
        #expect(y.scalars.allSatisfy { $0.isFinite })
        expectInvalidArgument("\(arch) needs images of at least \(minSize)x\(minSize)") {
            _ = try classifier(arch, classes: 3, channels: 1, size: minSize - 1)
        }
        if minSize > 1 {
            // the layers themselves refuse the smaller input too (it is a true minimum)
            #expect(thrownError { _ = try withoutGrad { try clf.model(Tensor(zeros: [1, 1, minSize - 1, minSize - 1])) } } != nil)
        }
    }
}
