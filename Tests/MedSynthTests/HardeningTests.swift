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
