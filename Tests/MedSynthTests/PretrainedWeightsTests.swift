// Loading weights into classifiers (Training/WeightLoading.swift) and what the model zoo needs
// from the core: initialisation distributions, named Sequential children, the state-dict layout
// without data, safetensors sizes computed before writing.

import Testing
@testable import MedSynth
@testable import MedSynthCore

private func classifier(_ arch: String, classes: Int, channels: Int, size: Int = 32, seed: UInt64 = 0,
                        aux: Bool = false) throws -> ImageClassifier {
    var config = ClassifierConfig(architecture: arch, numClasses: classes, inChannels: channels, imageSize: size, seed: seed)
    config.auxLogits = aux
    return try ImageClassifier(config: config)
}

private func values(_ c: ImageClassifier) throws -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: try c.model.stateEntries().filter { $0.dtype == .F32 }.map { ($0.name, try $0.floats()) })
}

@Suite struct PretrainedWeightsTests {
    @Test func oneChannelSumsTheRGBFiltersAndTheHeadIsReplaced() throws {
        let source = try classifier("resnet18", classes: 10, channels: 3, seed: 1)
        let file = SafetensorsFile(entries: source.model.stateEntries())
        let target = try classifier("resnet18", classes: 4, channels: 1, seed: 2)
        let fresh = try values(target)
        let report = try target.loadWeights(file, source: "imagenet.safetensors", mode: .pretrained)
        #expect(report.adapted == ["conv1.weight"])
        #expect(report.replaced == ["fc.weight", "fc.bias"])
        let (src, dst) = (try values(source), try values(target))
        let rgb = try #require(src["conv1.weight"]), gray = try #require(dst["conv1.weight"])
        #expect(gray.count == 64 * 49)
        for o in 0..<64 {
            for t in 0..<49 {
                let sum = rgb[(o * 3) * 49 + t] + rgb[(o * 3 + 1) * 49 + t] + rgb[(o * 3 + 2) * 49 + t]
                #expect(abs(gray[o * 49 + t] - sum) <= 1e-6 * max(1, abs(sum)))
            }
        }
        #expect(dst["layer4.1.conv2.weight"] == src["layer4.1.conv2.weight"])
        #expect(dst["fc.weight"] == fresh["fc.weight"] && dst["fc.bias"] == fresh["fc.bias"])
        // ImageNet normalisation, averaged over RGB for the summed filters
        #expect(target.normalizationFitted)
        #expect(abs(target.config.mean[0] - (0.485 + 0.456 + 0.406) / 3) < 1e-6)
        #expect(abs(target.config.std[0] - (0.229 + 0.224 + 0.225) / 3) < 1e-6)
        #expect(target.headParameters.map { $0.0 } == ["fc.weight", "fc.bias"])
        #expect(target.backboneParameters.count == 60)
    }

    @Test func moreChannelsRepeatAndScaleTheFilters() throws {
        let source = try classifier("densenet121", classes: 5, channels: 3, seed: 3)
        let target = try classifier("densenet121", classes: 2, channels: 4, seed: 4)
        try target.loadWeights(SafetensorsFile(entries: source.model.stateEntries()), source: "w", mode: .pretrained)
        let rgb = try #require(values(source)["features.conv0.weight"]), w = try #require(values(target)["features.conv0.weight"])
        for o in 0..<64 {
            for c in 0..<4 {
                for t in 0..<49 {
                    let expected = rgb[(o * 3 + c % 3) * 49 + t] * 0.75
                    #expect(abs(w[(o * 4 + c) * 49 + t] - expected) <= 1e-6 * max(1, abs(expected)))
                }
            }
        }
        #expect(target.config.mean == [0.485, 0.456, 0.406, 0.485])
    }

    @Test func aMismatchListsEveryNameAndChangesNothing() throws {
        let target = try classifier("resnet18", classes: 2, channels: 1, seed: 5)
        let before = try values(target)
        var entries = try classifier("resnet18", classes: 2, channels: 1, seed: 6).model.stateEntries()
        entries.removeAll { $0.name == "layer1.0.conv1.weight" }
        entries.append(SafetensorsEntry(name: "extra.weight", tensor: try Tensor(zeros: [3])))
        let i = try #require(entries.firstIndex { $0.name == "layer2.0.bn1.bias" })
        entries[i] = SafetensorsEntry(name: "layer2.0.bn1.bias", tensor: try Tensor(zeros: [5]))
        for mode in [WeightLoadMode.strict, .pretrained] {
            expectInvalidArgument("'w.safetensors' does not fit resnet18 (2 classes, 1 input channel)",
                                  "1 missing: layer1.0.conv1.weight", "1 unexpected: extra.weight",
                                  "1 with the wrong shape: layer2.0.bn1.bias (file [5], model [128])") {
                _ = try target.loadWeights(SafetensorsFile(entries: entries), source: "w.safetensors", mode: mode)
            }
        }
        #expect(try values(target) == before)
        // non-strict: missing and unexpected names are reported; the wrong shape is still an error
        entries[i] = SafetensorsEntry(name: "layer2.0.bn1.bias", tensor: try Tensor(zeros: [128]))
        let report = try target.loadWeights(SafetensorsFile(entries: entries), source: "w", mode: .nonStrict)
        #expect(report.missing == ["layer1.0.conv1.weight"] && report.unexpected == ["extra.weight"])
        #expect(try values(target)["layer1.0.conv1.weight"] == before["layer1.0.conv1.weight"])
        #expect(try values(target)["layer2.0.bn1.bias"] == [Float](repeating: 0, count: 128))
    }

    @Test func googLeNetPretrainedIgnoresAuxHeadsAndNormalisesAsTransformInput() throws {
        let source = try classifier("googlenet", classes: 7, channels: 3, seed: 7, aux: true)
        let target = try classifier("googlenet", classes: 3, channels: 3, seed: 8)
        let report = try target.loadWeights(SafetensorsFile(entries: source.model.stateEntries()), source: "g", mode: .pretrained)
        #expect(report.unexpected.count == 20 && report.unexpected.allSatisfy { $0.hasPrefix("aux") })
        #expect(report.replaced == ["fc.weight", "fc.bias"])
        #expect(target.config.mean == [0.5, 0.5, 0.5] && target.config.std == [0.5, 0.5, 0.5])
        // the other way: a file without aux heads into a model with them keeps the aux heads' init
        let withAux = try classifier("googlenet", classes: 3, channels: 3, seed: 9, aux: true)
        let r2 = try withAux.loadWeights(SafetensorsFile(entries: target.model.stateEntries()), source: "g", mode: .pretrained)
        #expect(r2.replaced.count == 20 - 2)   // aux entries without the two BN counters (tolerated as missing)
    }

    @Test func stateLayoutIsTheStateDictWithoutData() throws {
        for arch in ["simple_cnn", "mobilenet_v2", "googlenet"] {
            let c = try classifier(arch, classes: 3, channels: 2, aux: arch == "googlenet")
            let entries = c.model.stateEntries()
            let layout = c.model.stateLayout()
            #expect(layout.map { $0.name } == entries.map { $0.name })
            #expect(layout.map { $0.shape } == entries.map { $0.shape })
            #expect(layout.map { $0.dtype } == entries.map { $0.dtype })
            let metadata = [("format", "pt")]
            #expect(try SafetensorsFile.serializedCount(metadata: metadata, layout: layout)
                    == (try SafetensorsFile(metadata: metadata, entries: entries).serialized()).count)
        }
    }

    @Test func namedSequentialChildren() throws {
        let s = Sequential(named: [("conv", try Conv2d(1, 2, kernelSize: 1, rng: RandomGenerator(seed: 0))), ("act", ReLU())])
        s.append(ReLU(), name: "last")
        s.append(ReLU())
        #expect(s.children.map { $0.0 } == ["conv", "act", "last", "3"])
        #expect(s.stateLayout().map { $0.name } == ["conv.weight", "conv.bias"])
        let y = try s(Tensor([-1, 2], shape: [1, 1, 1, 2]))
        #expect(y.shape == [1, 2, 1, 2])
    }

    @Test func initialisationDistributions() throws {
        // kaiming normal, fan_out: std √(2/fan_out); large tensors are filled in parallel chunks
        // whose values depend on the seed only
        for shape in [[64, 32, 3, 3], [512, 256, 3, 3]] {
            let t = try Tensor(uninitialized: shape)
            Initializer.kaimingNormal(t, fan: Initializer.fans(t).fanOut, RandomGenerator(seed: 1))
            let n = Double(t.count)
            let mean = t.scalars.reduce(0) { $0 + Double($1) } / n
            let std = (t.scalars.reduce(0) { $0 + Double($1) * Double($1) } / n - mean * mean).squareRoot()
            let expected = (2 / Double(shape[0] * 9)).squareRoot()
            #expect(abs(mean) < 4 * expected / n.squareRoot())
            #expect(abs(std / expected - 1) < 0.02, "\(shape): std \(std) vs \(expected)")
            let again = try Tensor(uninitialized: shape)
            Initializer.kaimingNormal(again, fan: Initializer.fans(t).fanOut, RandomGenerator(seed: 1))
            #expect(again.scalars == t.scalars)
        }
        #expect(try Initializer.fans(Tensor(zeros: [96, 1, 3, 3])) == (9, 864))    // depthwise
        #expect(try Initializer.fans(Tensor(zeros: [10, 20])) == (20, 10))
        // truncated normal: every value inside the bounds, the shape of a normal within them
        let t = try Tensor(uninitialized: [200_000])
        Initializer.truncatedNormal(t, std: 1, a: -0.5, b: 1, RandomGenerator(seed: 2))
        #expect(t.scalars.allSatisfy { $0 >= -0.5 && $0 <= 1 })
        let inside = t.scalars.filter { $0 < 0 }.count
        // P(−0.5 < z < 0) / P(−0.5 < z < 1) = 0.1915 / 0.5328
        #expect(abs(Double(inside) / 200_000 - 0.1915 / 0.5328) < 0.01)
        let small = try Tensor(uninitialized: [1000])
        Initializer.truncatedNormal(small, std: 0.01, RandomGenerator(seed: 3))
        #expect(small.scalars.allSatisfy { abs($0) < 0.06 })
    }

    @Test func naturalOrderOfNames() {
        let names = ["features.12.conv.0", "features.2.conv.1", "features.2.conv.0", "classifier.1", "features.2"]
        #expect(names.sorted(by: ImageClassifier.naturalOrder)
                == ["classifier.1", "features.2", "features.2.conv.0", "features.2.conv.1", "features.12.conv.0"])
    }
}
