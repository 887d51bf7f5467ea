// Modules and the simple_cnn model (Layers/Module.swift, Models/SimpleCNN.swift): torch state-dict
// keys, load round trips, strict loading, train/eval propagation, parameter counts.

import Testing
@testable import MedSynth
@testable import MedSynthCore

private func simpleCNN(seed: UInt64, classes: Int = 4, channels: Int = 1) throws -> Layer {
    try SimpleCNN.make(inChannels: channels, numClasses: classes, rng: RandomGenerator(seed: seed))
}

private func bits(_ entries: [SafetensorsEntry]) -> [String: [UInt8]] {
    Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.bytes) })
}

@Suite struct ModuleTests {
    @Test func simpleCNNStateDictHasTorchKeys() throws {
        // torch: nn.Sequential features (conv 0, bn 1, relu 2, pool 3, conv 4, bn 5, relu 6, pool 7,
        // conv 8, bn 9, relu 10), avgpool (no state), classifier Sequential (dropout 0, linear 1).
        // Per BatchNorm: weight, bias (parameters), then running_mean, running_var, num_batches_tracked.
        let expected: [(String, SafetensorsDType, [Int])] = [
            ("features.0.weight", .F32, [32, 1, 3, 3]),
            ("features.1.weight", .F32, [32]), ("features.1.bias", .F32, [32]),
            ("features.1.running_mean", .F32, [32]), ("features.1.running_var", .F32, [32]),
            ("features.1.num_batches_tracked", .I64, []),
            ("features.4.weight", .F32, [64, 32, 3, 3]),
            ("features.5.weight", .F32, [64]), ("features.5.bias", .F32, [64]),
            ("features.5.running_mean", .F32, [64]), ("features.5.running_var", .F32, [64]),
            ("features.5.num_batches_tracked", .I64, []),
            ("features.8.weight", .F32, [128, 64, 3, 3]),
            ("features.9.weight", .F32, [128]), ("features.9.bias", .F32, [128]),
            ("features.9.running_mean", .F32, [128]), ("features.9.running_var", .F32, [128]),
            ("features.9.num_batches_tracked", .I64, []),
            ("classifier.1.weight", .F32, [4, 128]), ("classifier.1.bias", .F32, [4]),
        ]
        let entries = try simpleCNN(seed: 0).stateEntries()
        #expect(entries.map { $0.name } == expected.map { $0.0 })
        for (e, (name, dtype, shape)) in zip(entries, expected) {
            #expect(e.dtype == dtype && e.shape == shape, "\(name): \(e.dtype) \(e.shape)")
            #expect(e.bytes.count == e.elementCount * dtype.size)
        }
        // a fresh BatchNorm: γ 1, β 0, mean 0, variance 1, nothing tracked (8 zero bytes)
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(try byName["features.1.weight"]?.floats() == [Float](repeating: 1, count: 32))
        #expect(try byName["features.1.running_var"]?.floats() == [Float](repeating: 1, count: 32))
        #expect(byName["features.1.num_batches_tracked"]?.bytes == [UInt8](repeating: 0, count: 8))
        // parameters (no buffers) in the same order
        #expect(try simpleCNN(seed: 0).namedParameters().map { $0.0 } == [
            "features.0.weight", "features.1.weight", "features.1.bias", "features.4.weight", "features.5.weight",
            "features.5.bias", "features.8.weight", "features.9.weight", "features.9.bias", "classifier.1.weight",
            "classifier.1.bias",
        ])
        #expect(try simpleCNN(seed: 0).namedBuffers().count == 6)
    }

    @Test func parameterCountsByHand() throws {
        // 4 classes, 1 input channel:
        //   conv 1→32 (3×3, no bias)  32·1·9   =    288    BN 32: 2·32  =  64
        //   conv 32→64                64·32·9  = 18 432    BN 64: 2·64  = 128
        //   conv 64→128               128·64·9 = 73 728    BN 128: 2·128 = 256
        //   linear 128→4              128·4 + 4 =   516
        //   total 288 + 64 + 18 432 + 128 + 73 728 + 256 + 516 = 93 412
        #expect(try simpleCNN(seed: 0).parameterCount == 93_412)
        // 3 channels adds 32·2·9 = 576; 10 classes adds 6·129 = 774
        #expect(try simpleCNN(seed: 0, classes: 4, channels: 3).parameterCount == 93_988)
        #expect(try simpleCNN(seed: 0, classes: 10, channels: 1).parameterCount == 94_186)
        // parameters all require gradients; buffers do not
        let m = try simpleCNN(seed: 0)
        #expect(m.parameters.allSatisfy { $0.requiresGrad })
        #expect(m.namedBuffers().allSatisfy { !$0.1.requiresGrad })
    }

    @Test func loadRoundTripCopiesEveryTensorAndTheCounter() throws {
        let a = try simpleCNN(seed: 1), b = try simpleCNN(seed: 2)
        // one training-mode forward: running statistics move and num_batches_tracked becomes 1
        a.train()
        _ = try a(randomTensor([3, 1, 12, 12], seed: 5, requiresGrad: false))
        a.eval()
        #expect(bits(a.stateEntries()) != bits(b.stateEntries()))
        // through the bytes of a file, as checkpoints go
        let file = try SafetensorsFile.parse(try SafetensorsFile(entries: a.stateEntries()).serialized())
        try b.loadState(file.entries)
        #expect(bits(b.stateEntries()) == bits(a.stateEntries()))
        #expect(file["features.5.num_batches_tracked"]?.int64Scalar() == 1)
        #expect((b.modules().compactMap { $0 as? BatchNorm }).map { $0.batchesTracked } == [1, 1, 1])
        // same outputs in evaluation mode
        b.eval()
        let x = try randomTensor([2, 1, 10, 10], seed: 6, requiresGrad: false)
        #expect(try a(x).scalars == (try b(x).scalars))
        // a large counter survives exactly
        var entries = a.stateEntries()
        if let i = entries.firstIndex(where: { $0.name == "features.9.num_batches_tracked" }) {
            entries[i] = SafetensorsEntry(name: entries[i].name, int64: 1 << 40)
        }
        try b.loadState(entries)
        #expect((b.modules().compactMap { $0 as? BatchNorm }).last?.batchesTracked == 1 << 40)
    }

    @Test func strictLoadingRejectsUnknownKeysWrongShapesAndMissingKeys() throws {
        let m = try simpleCNN(seed: 3)
        let good = m.stateEntries()
        // unknown key: strict rejects it by name, non-strict ignores it
        let extra = try good + [SafetensorsEntry(name: "features.99.weight", tensor: try Tensor([1], shape: [1]))]
        expectInvalidArgument("checkpoint has tensors the model does not: features.99.weight") { try m.loadState(extra) }
        try m.loadState(extra, strict: false)
        // wrong shape names the key and both shapes
        var wrong = good
        wrong[0] = try SafetensorsEntry(name: "features.0.weight", tensor: Tensor(zeros: [32, 1, 3, 2]))
        expectInvalidArgument("'features.0.weight' has shape [32, 1, 3, 2], the model expects [32, 1, 3, 3]") { try m.loadState(wrong) }
        // a missing tensor names the key (strict or not)
        let missing = good.filter { $0.name != "classifier.1.bias" }
        expectInvalidArgument("checkpoint has no tensor 'classifier.1.bias'") { try m.loadState(missing) }
        expectInvalidArgument("checkpoint has no tensor 'classifier.1.bias'") { try m.loadState(missing, strict: false) }
        // torch tolerates a missing num_batches_tracked (old checkpoints)
        try m.loadState(good.filter { !$0.name.hasSuffix("num_batches_tracked") })
        // a counter that is not one integer is refused
        var badCounter = good
        if let i = badCounter.firstIndex(where: { $0.name == "features.1.num_batches_tracked" }) {
            badCounter[i] = try SafetensorsEntry(name: "features.1.num_batches_tracked", tensor: try Tensor([1, 2], shape: [2]))
        }
        expectInvalidArgument("'features.1.num_batches_tracked' must hold one non-negative I64 integer") { try m.loadState(badCounter) }
    }

    @Test func loadingRefusesOtherDtypes() throws {
        // the engine's checkpoints hold F32 weights: an F16 tensor is not one of them (convert
        // foreign weights explicitly, e.g. with medsynth.io.read_safetensors)
        let m = Sequential([try Linear(2, 1, rng: RandomGenerator(seed: 0))])
        let before = m.parameters.map { $0.scalars }
        let half: (UInt16) -> [UInt8] = { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        expectInvalidArgument("'0.weight'", "dtype F16, expected F32") {
            try m.loadState([
                SafetensorsEntry(name: "0.weight", dtype: .F16, shape: [1, 2], bytes: half(0x3C00) + half(0xC000)),   // 1, −2
                SafetensorsEntry(name: "0.bias", dtype: .F16, shape: [1], bytes: half(0x3800)),                      // 0.5
            ])
        }
        #expect(m.parameters.map { $0.scalars } == before)
    }

    @Test func trainAndEvalPropagate() throws {
        let m = try simpleCNN(seed: 4)
        #expect(m.modules().count == 17)   // the model, features + its 11 layers, avgpool, classifier + its 2
        m.eval()
        #expect(m.modules().allSatisfy { !$0.isTraining })
        m.train()
        #expect(m.modules().allSatisfy { $0.isTraining })
        m.train(false)
        #expect(m.modules().allSatisfy { !$0.isTraining })

        // evaluation: deterministic, no BatchNorm statistics updated
        let x = try randomTensor([4, 1, 8, 8], seed: 7, requiresGrad: false)
        let before = bits(m.stateEntries())
        let y1 = try m(x).scalars, y2 = try m(x).scalars
        #expect(y1 == y2)
        #expect(bits(m.stateEntries()) == before)
        // training: dropout draws new masks and BatchNorm tracks the batch
        m.train()
        let t1 = try m(x).scalars, t2 = try m(x).scalars
        #expect(t1 != t2)
        #expect((m.modules().compactMap { $0 as? BatchNorm }).map { $0.batchesTracked } == [2, 2, 2])
        #expect(bits(m.stateEntries()) != before)
    }

    @Test func zeroGradAndSequentialNaming() throws {
        let s = Sequential([try Linear(3, 2, rng: RandomGenerator(seed: 0)), ReLU(), try Linear(2, 1, rng: RandomGenerator(seed: 1))])
        #expect(s.stateEntries().map { $0.name } == ["0.weight", "0.bias", "2.weight", "2.bias"])
        let loss = try sum(try s(randomTensor([5, 3], seed: 8, requiresGrad: false)))
        try loss.backward()
        #expect(s.parameters.allSatisfy { $0.grad != nil })
        s.zeroGrad()
        #expect(s.parameters.allSatisfy { $0.grad == nil })
        // a layer that does not implement forward says so instead of passing its input through
        let x = try Tensor([1, 2], shape: [2])
        #expect(throws: MedSynthError.self) { try Layer()(x) }
    }
}
