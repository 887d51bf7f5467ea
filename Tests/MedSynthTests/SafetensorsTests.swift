// safetensors reader and writer (IO/Safetensors.swift): round trips, the reference writer's order
// and alignment, a file checked byte for byte, every malformed file rejected, dtype conversions.

import Testing
@testable import MedSynth
@testable import MedSynthCore

/// A safetensors file from a header text and a data section: [u64 LE length][header][data].
private func rawFile(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    var out = [UInt8]()
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64(i)))) }
    return out + h + data
}

/// A header entry: "name":{"dtype":...,"shape":[...],"data_offsets":[b,e]}.
private func tensorJSON(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
    #""\#(name)":{"dtype":"\#(dtype)","shape":[\#(shape.map(String.init).joined(separator: ","))],"data_offsets":[\#(begin),\#(end)]}"#
}

private func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

private func floatBytes(_ values: [Float]) -> [UInt8] { littleEndian(values.map { $0.bitPattern }) }

@Suite struct SafetensorsTests {
    // MARK: - round trips

    static let metadata = [("format", "pt"), ("config", #"{"a":[1,2]}"#), ("ünïcode", "välue ✓")]

    static func sampleEntries() throws -> [SafetensorsEntry] {
        [
            SafetensorsEntry(name: "w", tensor: try Tensor([1, -2, 3.5, 0, -0.25, 1e-30], shape: [2, 3])),
            SafetensorsEntry(name: "n", int64: 7),
            SafetensorsEntry(name: "big", dtype: .I64, shape: [2], bytes: littleEndian([Int64.min, Int64(1) << 40])),
            // F16 1, −2, 65504
            SafetensorsEntry(name: "h", dtype: .F16, shape: [3], bytes: littleEndian([UInt16(0x3C00), 0xC000, 0x7BFF])),
            // BF16 1, −5
            SafetensorsEntry(name: "b", dtype: .BF16, shape: [2, 1], bytes: littleEndian([UInt16(0x3F80), 0xC0A0])),
            SafetensorsEntry(name: "u", dtype: .U8, shape: [5], bytes: [0, 1, 127, 128, 255]),
            SafetensorsEntry(name: "empty", dtype: .F32, shape: [0, 3], bytes: []),
        ]
    }

    @Test func roundTripKeepsDtypesShapesBytesAndMetadata() throws {
        let file = try SafetensorsFile(metadata: Self.metadata, entries: Self.sampleEntries())
        let parsed = try SafetensorsFile.parse(try file.serialized())
        // the metadata as given, then the integrity hash
        #expect(parsed.metadata.map { $0.0 } == Self.metadata.map { $0.0 } + ["medsynth_sha256"])
        #expect(Array(parsed.metadata.map { $0.1 }.dropLast()) == Self.metadata.map { $0.1 })
        #expect(parsed.metadata("config") == #"{"a":[1,2]}"#)
        #expect(try parsed.entries.count == Self.sampleEntries().count)
        for e in try Self.sampleEntries() {
            let p = try #require(parsed[e.name], "missing \(e.name)")
            #expect(p.dtype == e.dtype && p.shape == e.shape && p.bytes == e.bytes, "\(e.name)")
        }
        #expect(try parsed["w"]?.floats() == [1, -2, 3.5, 0, -0.25, 1e-30])
        #expect(try parsed["n"]?.shape == [] && parsed["n"]?.floats() == [7])
        #expect(try parsed["h"]?.floats() == [1, -2, 65504])
        #expect(try parsed["b"]?.floats() == [1, -5])
        #expect(try parsed["u"]?.floats() == [0, 1, 127, 128, 255])
    }

    @Test func writeAndReadAFile() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/model.safetensors"
            try SafetensorsFile(metadata: Self.metadata, entries: Self.sampleEntries()).write(to: path)
            let read = try SafetensorsFile.read(path)
            #expect(read.metadata("format") == "pt")
            #expect(try read["w"]?.bytes == Self.sampleEntries()[0].bytes)
            #expect(try Files.read(path) == (try SafetensorsFile(metadata: Self.metadata, entries: Self.sampleEntries()).serialized()))
        }
    }

    @Test func writerOrdersByDtypeSizeThenNameAndAlignsEveryTensor() throws {
        let entries = [
            SafetensorsEntry(name: "u", dtype: .U8, shape: [3], bytes: [1, 2, 3]),
            SafetensorsEntry(name: "h", dtype: .F16, shape: [1], bytes: [0, 0x3C]),
            SafetensorsEntry(name: "f2", tensor: try Tensor([2], shape: [1])),
            SafetensorsEntry(name: "f1", tensor: try Tensor([1, 1], shape: [2])),
            SafetensorsEntry(name: "i", int64: 5),
            SafetensorsEntry(name: "bh", dtype: .BF16, shape: [1], bytes: [0x80, 0x3F]),
        ]
        let bytes = try SafetensorsFile(metadata: [("k", "v")], entries: entries).serialized()
        let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        #expect(n % 8 == 0, "header length \(n) is not a multiple of 8")
        let header = try JSON.parse(bytes: Array(bytes[8..<(8 + n)]))
        // 8-byte dtypes first, then 4, 2, 1; names ascending within a size
        #expect(header.object?.map { $0.0 } == ["__metadata__", "i", "f1", "f2", "bh", "h", "u"])
        // offsets tile the data: i [0,8), f1 [8,16), f2 [16,20), bh [20,22), h [22,24), u [24,27)
        let expected: [(String, [Int])] = [("i", [0, 8]), ("f1", [8, 16]), ("f2", [16, 20]), ("bh", [20, 22]), ("h", [22, 24]),
                                           ("u", [24, 27])]
        for (name, offsets) in expected {
            #expect(try header[name]?.intArray("data_offsets") == offsets, "\(name)")
        }
        // each tensor starts at an absolute file offset that is a multiple of its dtype size
        for e in entries {
            let begin = try #require(try header[e.name]?.intArray("data_offsets")?.first)
            #expect((8 + n + begin) % e.dtype.size == 0, "\(e.name)")
        }
        #expect(bytes.count == 8 + n + 27)
        // the padding is spaces after the closing brace
        let text = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        let trimmed = text.reversed().drop(while: { $0 == " " })
        #expect(trimmed.first == "}")
        #expect(text.count - trimmed.count < 8)
    }

    @Test func exactBytesOfATinyFile() throws {
        // One F32 tensor "a" = [1, −2]. Header (54 bytes, counted by hand):
        //   {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}
        //   1 + 3 ("a") + 1 + 1 + 7 ("dtype") + 1 + 5 ("F32") + 1 + 7 ("shape") + 1 + 3 ([2]) + 1
        //   + 14 ("data_offsets") + 1 + 5 ([0,8]) + 1 + 1 = 54, padded with 2 spaces to 56 = 0x38.
        // Data: 1.0f = 0x3F800000 → 00 00 80 3F; −2.0f = 0xC0000000 → 00 00 00 C0 (little-endian).
        let file = try SafetensorsFile(entries: [SafetensorsEntry(name: "a", tensor: try Tensor([1, -2], shape: [2]))])
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let expected: [UInt8] = [0x38, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8) + [0x20, 0x20]
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]
        let bytes = try file.serialized(integrity: false)
        #expect(bytes.count == 72)
        #expect(bytes == expected)
        // and the reader takes these exact bytes back
        let parsed = try SafetensorsFile.parse(expected)
        #expect(try parsed.entries.count == 1 && parsed["a"]?.floats() == [1, -2] && parsed.metadata.isEmpty)
    }

    @Test func emptyFileHasAnEightByteHeader() throws {
        // "{}" padded to 8 bytes, no data
        let bytes = try SafetensorsFile(entries: []).serialized(integrity: false)
        #expect(bytes == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        #expect(try SafetensorsFile.parse(bytes).entries.isEmpty)
    }

    // MARK: - malformed files

    @Test func malformedFilesAreRejected() {
        let a4 = tensorJSON("a", "F32", [1], 0, 4)
        let eight = [UInt8](repeating: 0, count: 8)
        var huge: [UInt8] = littleEndian([UInt64(100_000_001)])
        huge += Array("{}".utf8)
        let cases: [(String, [UInt8], [String])] = [
            ("shorter than the length field", [1, 2, 3], ["shorter than the 8-byte header length"]),
            ("header length beyond the file", littleEndian([UInt64(1000)]) + Array("{}".utf8), ["runs past the end of the file"]),
            ("header length > 100 MB", huge, ["exceeds 100,000,000"]),
            ("header length 2^64 − 1", littleEndian([UInt64.max]) + Array("{}".utf8), ["exceeds 100,000,000"]),
            ("header not an object", rawFile("[1,2,3]"), ["does not start with '{'"]),
            ("header not JSON", rawFile("{\"a\":"), ["invalid JSON"]),
            ("header not UTF-8", littleEndian([UInt64(3)]) + [0x7B, 0xFF, 0x7D], ["UTF-8"]),
            ("unknown dtype", rawFile("{\(tensorJSON("a", "F8", [4], 0, 4))}", eight.prefix(4).map { $0 }), ["unknown dtype 'F8'"]),
            ("no dtype", rawFile(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), ["has no dtype"]),
            ("no shape", rawFile(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, [0, 0, 0, 0]), ["has no shape"]),
            ("shape/byte-count mismatch", rawFile("{\(tensorJSON("a", "F32", [3], 0, 8))}", eight),
             ["'a'", "needs 12 bytes", "give 8"]),
            ("shape overflowing Int", rawFile("{\(tensorJSON("a", "F32", [1 << 40, 1 << 40], 0, 8))}", eight), ["overflows"]),
            ("negative shape", rawFile("{\(tensorJSON("a", "F32", [-1], 0, 4))}", [0, 0, 0, 0]), ["'a' has an invalid shape"]),
            ("negative shape, positive product", rawFile("{\(tensorJSON("a", "F32", [-1, -1], 0, 4))}", [0, 0, 0, 0]),
             ["invalid shape"]),
            ("fractional shape", rawFile(#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), ["invalid shape"]),
            ("offsets outside the data", rawFile("{\(tensorJSON("a", "F32", [4], 0, 16))}", eight), ["outside the data section (8 bytes)"]),
            ("offsets reversed", rawFile("{\(tensorJSON("a", "F32", [0], 4, 0))}", eight), ["end before begin"]),
            ("negative offset", rawFile("{\(tensorJSON("a", "F32", [1], -4, 0))}", eight), ["invalid data_offsets"]),
            ("one offset", rawFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#, [0, 0, 0, 0]), ["invalid data_offsets"]),
            ("overlapping tensors", rawFile("{\(tensorJSON("a", "F32", [2], 0, 8)),\(tensorJSON("b", "F32", [2], 4, 12))}",
                                            [UInt8](repeating: 0, count: 12)), ["'b' overlaps another tensor"]),
            ("identical ranges", rawFile("{\(a4),\(tensorJSON("b", "F32", [1], 0, 4))}", [0, 0, 0, 0]), ["overlaps"]),
            ("gap", rawFile("{\(a4),\(tensorJSON("b", "F32", [1], 8, 12))}", [UInt8](repeating: 0, count: 12)),
             ["gap in the data section before tensor 'b'"]),
            ("gap at the start", rawFile("{\(tensorJSON("a", "F32", [1], 4, 8))}", eight), ["gap", "'a'"]),
            ("trailing bytes", rawFile("{\(a4)}", eight), ["4 trailing bytes"]),
            ("data but no tensors", rawFile("{}", [1]), ["1 trailing bytes"]),
            ("duplicate names", rawFile("{\(a4),\(tensorJSON("a", "F32", [1], 4, 8))}", eight), ["duplicate tensor name 'a'"]),
            ("metadata not an object", rawFile(#"{"__metadata__":[1]}"#), ["__metadata__ must be an object"]),
            ("metadata value not a string", rawFile(#"{"__metadata__":{"k":1}}"#), ["value for 'k' is not a string"]),
            ("tensor not an object", rawFile(#"{"a":[1]}"#), ["'a' is not an object"]),
            ("sub-byte dtype", rawFile("{\(tensorJSON("a", "F4", [2], 0, 1))}", [0]), ["F4", "sub-byte"]),
            ("header length not a multiple of anything, JSON cut", littleEndian([UInt64(3)]) + Array("{\"a".utf8), ["invalid JSON"]),
        ]
        for (what, bytes, fragments) in cases {
            #expect((try? SafetensorsFile.parse(bytes)) == nil, "\(what) was accepted")
            guard let error = thrownError({ _ = try SafetensorsFile.parse(bytes) }) else { continue }
            guard case .invalidArgument(let message) = error else { Issue.record("\(what): \(error)"); continue }
            for f in fragments where !message.contains(f) { Issue.record("\(what): '\(message)' lacks '\(f)'") }
        }
    }

    @Test func zeroSizedTensorsAreAccepted() throws {
        // two empty tensors at the same offset and a 4-byte one tile [0, 4)
        let bytes = rawFile("{\(tensorJSON("e1", "F32", [0], 0, 0)),\(tensorJSON("e2", "I64", [2, 0], 0, 0)),"
                            + "\(tensorJSON("a", "F32", [1], 0, 4))}", [0, 0, 0x80, 0x3F])
        let file = try SafetensorsFile.parse(bytes)
        #expect(file["e2"]?.shape == [2, 0] && file["e2"]?.bytes == [])
        #expect(try file["a"]?.floats() == [1])
    }

    @Test func readingNamesThePath() throws {
        try withTemporaryDirectory { dir in
            let missing = dir + "/does-not-exist.safetensors"
            expectIOError("cannot open '\(missing)'", "No such file") { _ = try SafetensorsFile.read(missing) }
            let bad = dir + "/bad.safetensors"
            try Files.writeAtomically(bad, bytes: rawFile("{\(tensorJSON("a", "F32", [1], 0, 4))}", [0, 0, 0, 0, 9]))
            expectIOError("'\(bad)' is not a valid safetensors file", "1 trailing bytes") { _ = try SafetensorsFile.read(bad) }
            // a directory is not a file
            expectIOError("'\(dir)' is not a regular file") { _ = try SafetensorsFile.read(dir) }
        }
    }

    @Test func writerRejectsInvalidEntries() throws {
        let a = try SafetensorsEntry(name: "a", tensor: try Tensor([1], shape: [1]))
        expectInvalidArgument("duplicate tensor name 'a'") { _ = try SafetensorsFile(entries: [a, a]).serialized() }
        expectInvalidArgument("'__metadata__' is reserved") {
            _ = try SafetensorsFile(entries: [SafetensorsEntry(name: "__metadata__", tensor: try Tensor([1], shape: [1]))]).serialized()
        }
        expectInvalidArgument("'b'", "needs 8 bytes, got 4") {
            _ = try SafetensorsFile(entries: [SafetensorsEntry(name: "b", dtype: .F32, shape: [2], bytes: [0, 0, 0, 0])]).serialized()
        }
    }

    // MARK: - conversions

    @Test func floatsConvertsFromEveryDtype() throws {
        // F16: 0x3C00 = 1, 0xC000 = −2, 0x3555 = 1 + 0x155/1024 = 0.333251953125 (×2^−2), 0x7BFF = 65504 (largest),
        // 0x0001 = 2^−24 (smallest subnormal), 0xFC00 = −inf, 0x8000 = −0
        let f16 = SafetensorsEntry(name: "h", dtype: .F16, shape: [7],
                                   bytes: littleEndian([UInt16(0x3C00), 0xC000, 0x3555, 0x7BFF, 0x0001, 0xFC00, 0x8000]))
        let h = try f16.floats()
        #expect(Array(h[0..<5]) == [1, -2, 0.333251953125, 65504, 0x1p-24])
        #expect(h[5] == -.infinity && h[6] == 0 && h[6].sign == .minus)
        // BF16 is the upper half of an F32: 0x3F80 → 0x3F800000 = 1, 0xC0A0 → −5, 0x4049 → 3.140625, 0x7F80 → inf
        let bf16 = SafetensorsEntry(name: "b", dtype: .BF16, shape: [4], bytes: littleEndian([UInt16(0x3F80), 0xC0A0, 0x4049, 0x7F80]))
        #expect(try bf16.floats() == [1, -5, 3.140625, .infinity])
        // F64: 2.5 = 0x4004000000000000; 0.1 rounds to the nearest float 0x3DCCCCCD; 1e40 overflows to inf
        let f64 = SafetensorsEntry(name: "d", dtype: .F64, shape: [3], bytes: littleEndian([2.5, 0.1, -1e40].map { $0.bitPattern }))
        let d = try f64.floats()
        #expect(d[0] == 2.5 && d[1].bitPattern == 0x3DCC_CCCD && d[2] == -.infinity)
        // I64: −3, 2^40 (exact in float), Int64.max rounds to 2^63
        let i64 = SafetensorsEntry(name: "i", dtype: .I64, shape: [3], bytes: littleEndian([Int64(-3), 1 << 40, .max]))
        #expect(try i64.floats() == [-3, 1_099_511_627_776, 0x1p63])
        // the other integer types
        #expect(try SafetensorsEntry(name: "x", dtype: .I32, shape: [2], bytes: littleEndian([Int32(-7), .max])).floats() == [-7, 2_147_483_648])
        #expect(try SafetensorsEntry(name: "x", dtype: .I16, shape: [1], bytes: littleEndian([Int16(-300)])).floats() == [-300])
        #expect(try SafetensorsEntry(name: "x", dtype: .I8, shape: [2], bytes: [0xFF, 0x7F]).floats() == [-1, 127])
        #expect(try SafetensorsEntry(name: "x", dtype: .U16, shape: [1], bytes: littleEndian([UInt16(65535)])).floats() == [65535])
        #expect(try SafetensorsEntry(name: "x", dtype: .U32, shape: [1], bytes: littleEndian([UInt32(16_777_217)])).floats() == [16_777_216])
        #expect(try SafetensorsEntry(name: "x", dtype: .BOOL, shape: [2], bytes: [0, 1]).floats() == [0, 1])
    }

    @Test func int64ScalarReadsOnlyOneI64() {
        // 2^24 + 1 = 16777217 has no float32: int64Scalar() keeps it exactly
        #expect(SafetensorsEntry(name: "n", int64: 16_777_217).int64Scalar() == 16_777_217)
        #expect(SafetensorsEntry(name: "n", int64: .min).int64Scalar() == .min)
        // counters are saved as I64 (as torch does); other dtypes are not counters
        #expect(SafetensorsEntry(name: "n", dtype: .I32, shape: [1], bytes: littleEndian([Int32(-5)])).int64Scalar() == nil)
        #expect(SafetensorsEntry(name: "n", dtype: .F32, shape: [], bytes: floatBytes([12])).int64Scalar() == nil)
        #expect(SafetensorsEntry(name: "n", dtype: .I64, shape: [2], bytes: littleEndian([Int64(1), 2])).int64Scalar() == nil)
        #expect(SafetensorsEntry(name: "n", dtype: .I64, shape: [], bytes: [1, 2]).int64Scalar() == nil)
    }

    @Test func dtypeSizes() {
        let sizes = SafetensorsDType.allCases.map { ($0.rawValue, $0.size) }
        #expect(sizes.map { $0.0 } == ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "C64",
                                        "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"])
        #expect(sizes.map { $0.1 } == [8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 8, 1, 1, 1, 1, 1])
    }

    // MARK: - integrity and dtypes

    @Test func sha256MatchesTheStandardsVectors() {
        func hex(_ text: String) -> String { Array(text.utf8).withUnsafeBytes { SHA256.hex($0) } }
        // FIPS 180-4 examples, and a message longer than one block
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256()
        let a = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { h.update(a) }   // one million 'a', fed in pieces that straddle blocks
        #expect(h.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func integrityHashIsWrittenAndVerified() throws {
        let file = SafetensorsFile(metadata: [("k", "v")], entries: [SafetensorsEntry(name: "w", tensor: try Tensor([1, 2, 3], shape: [3]))])
        var bytes = try file.serialized()
        let parsed = try SafetensorsFile.parse(bytes)
        #expect(parsed.metadata("medsynth_sha256")?.count == 64 && parsed.metadata("k") == "v")
        // without the hash: no key
        #expect(try SafetensorsFile.parse(try file.serialized(integrity: false)).metadata("medsynth_sha256") == nil)
        // one flipped bit in the data (the last byte of w[2]) no longer matches
        bytes[bytes.count - 1] ^= 0x01
        expectInvalidArgument("medsynth_sha256", "corrupt") { _ = try SafetensorsFile.parse(bytes) }
    }

    /// The one writer behind every path: a file of caller memory, the same bytes as an image in a
    /// buffer, and SafetensorsFile's own bytes; sizes known before any data is touched.
    @Test func filesImagesAndSerializedBytesAreTheSameBytes() throws {
        let w: [Float] = [1, -2, 3.5], n: [Int64] = [7]
        let metadata = [("format", "pt")]
        try withTemporaryDirectory { dir in
            try w.withUnsafeBytes { wb in
                try n.withUnsafeBytes { nb in
                    let tensors = [(name: "w", dtype: SafetensorsDType.F32, shape: [3], bytes: wb), (name: "n", dtype: .I64, shape: [], bytes: nb)]
                    for integrity in [false, true] {
                        let path = dir + "/f\(integrity).safetensors"
                        try SafetensorsHeader.write(to: path, metadata: metadata, tensors: tensors, integrity: integrity)
                        let size = try SafetensorsHeader.fileSize(metadata: metadata, tensors: tensors.map { ($0.name, $0.dtype, $0.shape, $0.bytes.count) },
                                                                  integrity: integrity)
                        var image = [UInt8](repeating: 0, count: size)
                        try image.withUnsafeMutableBytes {
                            try SafetensorsHeader.write(into: $0, metadata: metadata, tensors: tensors, integrity: integrity)
                        }
                        #expect(try Files.read(path) == image)
                        let file = SafetensorsFile(metadata: metadata, entries: [SafetensorsEntry(name: "w", tensor: try Tensor(w, shape: [3])),
                                                                                 SafetensorsEntry(name: "n", int64: 7)])
                        #expect(try file.serialized(integrity: integrity) == image)
                        #expect(try SafetensorsFile.serializedCount(metadata: metadata, layout: file.entries.map { ($0.name, $0.dtype, $0.shape) },
                                                                    integrity: integrity) == size)
                        // a buffer of another size is refused, naming both sizes
                        var short = [UInt8](repeating: 0, count: size - 1)
                        expectInvalidArgument("holds \(size - 1) bytes", "needs \(size)") {
                            try short.withUnsafeMutableBytes { try file.serialize(into: $0, integrity: integrity) }
                        }
                    }
                    // the engine writes the hash itself: metadata bringing one is refused when it does
                    expectInvalidArgument("medsynth_sha256") {
                        try SafetensorsHeader.write(to: dir + "/x.safetensors", metadata: [("medsynth_sha256", "0")], tensors: tensors, integrity: true)
                    }
                }
            }
        }
    }

    @Test func headerIsReadWithoutTheData() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/h.safetensors"
            try SafetensorsFile(entries: [SafetensorsEntry(name: "b", tensor: try Tensor([1, 2], shape: [2])),
                                          SafetensorsEntry(name: "a", int64: 5)]).write(to: path)
            let header = try SafetensorsHeader.read(path)
            #expect(header.tensors.map { $0.name } == ["a", "b"])   // data order: I64 first (larger dtype)
            #expect(header.tensors[1].begin == 8 && header.tensors[1].end == 16 && header.tensors[1].dtype == .F32)
            #expect(header.fileSize == header.dataStart + 16)
        }
    }

    @Test func everyReferenceDtypeWithWholeBytesParses() throws {
        for dtype in SafetensorsDType.allCases {
            let bytes = rawFile("{\(tensorJSON("t", dtype.rawValue, [2], 0, 2 * dtype.size))}", [UInt8](repeating: 1, count: 2 * dtype.size))
            #expect(try SafetensorsFile.parse(bytes)["t"]?.dtype == dtype)
        }
        // null metadata is the reference's "no metadata"
        #expect(try SafetensorsFile.parse(rawFile(#"{"__metadata__":null}"#)).metadata.isEmpty)
    }
}
