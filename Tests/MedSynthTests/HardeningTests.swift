// Failures that must be errors, never an abort: allocations the system refuses, checkpoints that
// are not what they say (dtype relabelled, non-finite weights, incomplete or extra tensors).

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct AllocationFailureTests {
    /// 2^40 floats (4 TiB) on a machine of tens of GiB: posix_memalign refuses it (Linux's default
    /// heuristic overcommit rejects requests beyond RAM + swap), and the engine throws.
    static let impossible = 1 << 40

    @Test func refusedAllocationsThrowOutOfMemoryNamingTheSize() throws {
        for attempt in 0..<3 {   // and again: nothing was left in a broken state
            guard let error = thrownError({ _ = try Storage(count: Self.impossible) }) else {
                Issue.record("a 4 TiB allocation succeeded (attempt \(attempt))")
                return
            }
            guard case .outOfMemory(let message) = error else { Issue.record("expected .outOfMemory, got \(error)"); return }
            #expect(message.contains("\(Self.impossible * 4) bytes"))
        }
        // ordinary allocations still work afterwards
        #expect(try Tensor(zeros: [4]).scalars == [0, 0, 0, 0])
    }

    @Test func allocatingInitialisersAndLayersPropagateIt() throws {
        for make in [{ _ = try Tensor(zeros: [1 << 20, 1 << 20]) }, { _ = try Tensor(uninitialized: [1 << 21, 1 << 19]) },
                     { _ = try Tensor(repeating: 1, shape: [1 << 40]) },
                     { _ = try Linear(1 << 20, 1 << 20, rng: RandomGenerator(seed: 1)) }] as [() throws -> Void] {
            guard case .outOfMemory? = thrownError(make) else { Issue.record("expected .outOfMemory"); continue }
        }
    }

    @Test func overflowingShapesAreInvalidArguments() {
        expectInvalidArgument("too many elements") { _ = try Tensor(zeros: [1 << 40, 1 << 40]) }
        expectInvalidArgument("negative extent") { _ = try Tensor(uninitialized: [-1, 4]) }
        expectInvalidArgument("needs 6 values, got 2") { _ = try Tensor([1, 2], shape: [2, 3]) }
    }
}

@Suite struct CheckpointIntegrityTests {
    static func model() throws -> Sequential {
        let rng = RandomGenerator(seed: 3)
        return Sequential([try Linear(3, 2, rng: rng), try BatchNorm(2)])
    }

    static func state(_ m: Module) -> [SafetensorsEntry] { m.stateEntries() }

    @Test func f32RelabelledAsAnotherDtypeIsRejected() throws {
        let m = try Self.model()
        var entries = Self.state(m)
        let i = entries.firstIndex { $0.name == "0.weight" }!
        entries[i].dtype = .I32   // same byte count: read as integers before
        expectInvalidArgument("'0.weight'", "dtype I32", "expected F32") { try m.loadState(entries) }
    }

    @Test func nonFiniteWeightsAreRejectedAndTheModelIsUnchanged() throws {
        let m = try Self.model()
        let original = Self.state(m)
        var entries = original
        // a valid first tensor, then a NaN in a later one: the first must not stay loaded
        let w = entries.firstIndex { $0.name == "0.weight" }!, b = entries.firstIndex { $0.name == "1.running_var" }!
        entries[w].bytes = [UInt8](repeating: 0, count: entries[w].bytes.count)
        entries[b].bytes.replaceSubrange(4..<8, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) })
        expectInvalidArgument("'1.running_var'", "non-finite", "index 1") { try m.loadState(entries) }
        #expect(Self.state(m).map { $0.bytes } == original.map { $0.bytes })
        entries[b] = original[b]
        entries[b].bytes.replaceSubrange(0..<4, with: withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { Array($0) })
        expectInvalidArgument("'1.running_var'", "non-finite") { try m.loadState(entries) }
    }

    @Test func countersMustBeOneNonNegativeI64() throws {
        let m = try Self.model()
        var entries = Self.state(m)
        let i = entries.firstIndex { $0.name == "1.num_batches_tracked" }!
        entries[i] = SafetensorsEntry(name: "1.num_batches_tracked", dtype: .F64, shape: [], bytes: [UInt8](repeating: 0, count: 8))
        expectInvalidArgument("'1.num_batches_tracked'", "I64") { try m.loadState(entries) }
        entries[i] = SafetensorsEntry(name: "1.num_batches_tracked", int64: -1)
        expectInvalidArgument("non-negative") { try m.loadState(entries) }
    }

    @Test func incompleteAndExtraTensorSetsAreRejected() throws {
        let m = try Self.model()
        let entries = Self.state(m)
        expectInvalidArgument("no tensor '0.bias'") { try m.loadState(entries.filter { $0.name != "0.bias" }) }
        expectInvalidArgument("tensors the model does not", "stray") {
            try m.loadState(entries + [SafetensorsEntry(name: "stray", int64: 1)])
        }
        expectInvalidArgument("'0.bias' twice") { try m.loadState(entries + entries.filter { $0.name == "0.bias" }) }
        expectInvalidArgument("no tensor") { try m.checkState(Array(entries.dropLast(2)), what: "the state") }
        try m.checkState(entries, what: "the state")
    }

    @Test func classifierFilesWithStrayOrCorruptTensorsFailNamingTheFile() throws {
        try withTemporaryDirectory { dir in
            let config = try ClassifierConfig(json: try JSON.parse(#"{"architecture": "simple_cnn", "num_classes": 2, "in_channels": 1, "image_size": 16}"#))
            let classifier = try ImageClassifier(config: config)
            let path = dir + "/c.safetensors"
            try classifier.save(to: path)
            var file = try SafetensorsFile.read(path)
            file.entries.append(SafetensorsEntry(name: "extra.weight", tensor: try Tensor([1], shape: [1])))
            let stray = dir + "/stray.safetensors"
            try file.write(to: stray)
            expectIOError("'\(stray)'", "extra.weight") { _ = try ImageClassifier.load(from: stray) }
            // flip one data byte of the saved file: the integrity hash catches it
            var bytes = try Files.read(path)
            bytes[bytes.count - 3] ^= 0x40
            let flipped = dir + "/flipped.safetensors"
            try Files.writeAtomically(flipped, bytes: bytes)
            expectIOError("'\(flipped)'", "medsynth_sha256") { _ = try ImageClassifier.load(from: flipped) }
            // the untouched file loads to the same weights
            let back = try ImageClassifier.load(from: path)
            #expect(back.model.stateEntries().map { $0.bytes } == classifier.model.stateEntries().map { $0.bytes })
        }
    }
}

@Suite struct PathTests {
    /// Paths also reach the engine inside JSON options, past the C boundary's check: a NUL byte
    /// would end the C string early and read or write another file.
    @Test func pathsWithNULBytesAreRefusedByTheEngineToo() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/m\0.safetensors"
            expectInvalidArgument("NUL byte", "m\\0.safetensors") { _ = try Files.read(path) }
            expectInvalidArgument("NUL byte") { try Files.writeAtomically(path, bytes: [1]) }
            expectInvalidArgument("NUL byte") { try SafetensorsFile(entries: []).write(to: path) }
            #expect(!Files.exists(dir + "\0"))   // the folder exists; the path given does not
            expectInvalidArgument("empty") { _ = try Files.read("") }
        }
    }
}

/// The one checkpoint path (TrainerCheckpoint) applies every check to everything a file holds:
/// the network, the optimiser's state, the EMA and the best epoch's weights.
@Suite(.serialized) struct TrainingCheckpointChecksTests {
    static func classifier() throws -> ImageClassifier {
        try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: 2, inChannels: 1, imageSize: 12, seed: 1))
    }

    static func options(_ checkpoint: String, epochs: Int, resume: Bool = false) -> ClassifierTrainingOptions {
        var o = ClassifierTrainingOptions()
        o.epochs = epochs
        o.batchSize = 8
        o.seed = 2
        o.earlyStoppingPatience = 5      // keeps the best epoch's weights in the checkpoint
        o.checkpoint = checkpoint
        o.resume = resume
        return o
    }

    /// A copy of `file` with `edit` applied, written to `path` (with a fresh integrity hash).
    static func mutant(_ file: SafetensorsFile, _ path: String, _ edit: (inout [SafetensorsEntry]) -> Void) throws -> String {
        var copy = file
        edit(&copy.entries)
        try copy.write(to: path)
        return path
    }

    static func poison(_ entries: inout [SafetensorsEntry], _ name: String) {
        guard let i = entries.firstIndex(where: { $0.name == name }) else { Issue.record("no tensor '\(name)'"); return }
        entries[i].bytes.replaceSubrange(0..<4, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) })
    }

    @Test func resumeChecksEveryTensorOfTheCheckpointNamingFileAndTensor() throws {
        let train = try Shapes(nPerClass: 8, classes: 2, size: 12, seed: 3)
        let validation = try Shapes(nPerClass: 4, classes: 2, size: 12, seed: 4)
        try withTemporaryDirectory { dir in
            let path = dir + "/run.safetensors"
            _ = try train.with { t in try validation.with { v in try Self.classifier().fit(t, validation: v, options: Self.options(path, epochs: 1)) } }
            let file = try SafetensorsFile.read(path)
            #expect(file.entries.contains { $0.name.hasPrefix("best.") } && file.entries.contains { $0.name.hasPrefix("optimizer.") })
            func resume(_ p: String) throws {
                _ = try train.with { t in try validation.with { v in try Self.classifier().fit(t, validation: v, options: Self.options(p, epochs: 2, resume: true)) } }
            }
            let stray = try Self.mutant(file, dir + "/stray.safetensors") { $0.append(SafetensorsEntry(name: "stray.weight", int64: 1)) }
            expectIOError("'\(stray)'", "stray.weight") { try resume(stray) }
            let best = try Self.mutant(file, dir + "/best.safetensors") { Self.poison(&$0, "best.features.0.weight") }
            expectIOError("'\(best)'", "best epoch", "features.0.weight", "non-finite") { try resume(best) }
            let moment = file.entries.first { $0.name.hasPrefix("optimizer.") && $0.dtype == .F32 }?.name ?? "optimizer"
            let optimizer = try Self.mutant(file, dir + "/optimizer.safetensors") { Self.poison(&$0, moment) }
            expectIOError("'\(optimizer)'", moment, "non-finite") { try resume(optimizer) }
            let weight = try Self.mutant(file, dir + "/weight.safetensors") { Self.poison(&$0, "classifier.1.weight") }
            expectIOError("'\(weight)'", "classifier.1.weight", "non-finite") { try resume(weight) }
            // the untouched checkpoint resumes, and a training checkpoint loads as a model
            try resume(path)
            _ = try ImageClassifier.load(from: path)
        }
    }

    @Test func savedDiffusionModelsBringTheirWholeFiniteEMA() throws {
        let config = DiffusionConfig(unet: UNetConfig(imageSize: 8, baseChannels: 4, channelMultipliers: [1], normGroups: 2))
        let data = try Shapes(nPerClass: 4, classes: 2, size: 8, seed: 3)
        var options = DiffusionTrainingOptions()
        options.steps = 2
        options.batchSize = 4
        options.emaDecay = 0.9
        let model = try DiffusionModel(config: config)
        _ = try data.with(labelled: false) { try model.fit($0, options: options) }
        try withTemporaryDirectory { dir in
            let path = dir + "/d.safetensors"
            try model.save(to: path)
            let file = try SafetensorsFile.read(path)
            let emaName = try #require(file.entries.first { $0.name.hasPrefix("ema.") }?.name)
            let nan = try Self.mutant(file, dir + "/nan.safetensors") { Self.poison(&$0, emaName) }
            expectIOError("'\(nan)'", emaName, "non-finite") { _ = try DiffusionModel.load(from: nan) }
            let partial = try Self.mutant(file, dir + "/partial.safetensors") { $0.removeAll { $0.name == emaName } }
            expectIOError("'\(partial)'", emaName) { _ = try DiffusionModel.load(from: partial) }
            let stray = try Self.mutant(file, dir + "/stray.safetensors") { $0.append(SafetensorsEntry(name: "optimizer.adamw.step", int64: 1)) }
            expectIOError("'\(stray)'", "optimizer.adamw.step") { _ = try DiffusionModel.load(from: stray) }
            #expect(try DiffusionModel.load(from: path).ema?.updates == 2)
        }
    }

    @Test func pretrainedWeightsOfOtherFloatDtypesLoadAndNonFiniteOnesChangeNothing() throws {
        let source = try Self.classifier(), target = try Self.classifier()
        let other = try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: 2, inChannels: 1, imageSize: 12, seed: 9))
        // F64 entries (as a float64 state dict saves them) load as their F32 values
        let f64 = try source.model.stateEntries().map { e -> SafetensorsEntry in
            guard e.dtype == .F32 else { return e }
            return SafetensorsEntry(name: e.name, dtype: .F64, shape: e.shape, bytes: try e.floats().map(Double.init).withUnsafeBytes { Array($0) })
        }
        try target.loadWeights(SafetensorsFile(entries: f64), source: "f64", mode: .strict)
        #expect(target.model.stateEntries().map { $0.bytes } == source.model.stateEntries().map { $0.bytes })
        // a NaN in a late tensor: refused naming it, and the earlier tensors are not left loaded
        var poisoned = source.model.stateEntries()
        Self.poison(&poisoned, "classifier.1.weight")
        let before = other.model.stateEntries().map { $0.bytes }
        expectInvalidArgument("classifier.1.weight", "non-finite") {
            try other.loadWeights(SafetensorsFile(entries: poisoned), source: "poisoned", mode: .strict)
        }
        #expect(other.model.stateEntries().map { $0.bytes } == before)
    }
}
