// safetensors (huggingface/safetensors): [u64 LE header length N][N bytes of JSON header][data].
// Header: {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}, ...}; offsets relative to the data section, little-endian,
// row-major. The reader enforces every rule of the reference implementation
// (safetensors/src/tensor.rs, `read_metadata` and `Metadata::validate`): N ≤ 100,000,000, the
// header valid UTF-8 JSON starting with '{', no duplicate names, known dtypes, shapes whose
// element count × dtype size equals end − begin without overflow, tensors tiling the data section
// from 0 without gaps or overlaps, and the file ending exactly where the last tensor does.
// The writer follows the reference: tensors sorted by (dtype rank descending, name), header
// padded with spaces to a multiple of 8 so every tensor is aligned.
//
// Integrity: files the engine writes carry `medsynth_sha256` in their metadata, the SHA-256 of the
// data section; a reader verifies it when present, so a flipped bit in a weight is an error
// naming the file instead of a silently different model.

public enum SafetensorsDType: String, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, C64
    case F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ

    public var size: Int {
        switch self {
        case .F64, .I64, .U64, .C64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: return 1
        }
    }

    /// Position in the reference's `Dtype` enum ("in increasing alignment order"); its writer
    /// orders tensors by this, descending, then by name.
    public var referenceRank: Int {
        let order: [SafetensorsDType] = [.BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ,
                                         .I16, .U16, .F16, .BF16, .I32, .U32, .F32, .C64, .F64, .I64, .U64]
        return order.firstIndex(of: self) ?? 0
    }

    /// The reference's sub-byte dtypes (F4, F6_*): valid files, but no whole-byte element.
    package static let unsupported: Set<String> = ["F4", "F6_E2M3", "F6_E3M2"]
}

/// One tensor of a header: where its bytes lie in the data section.
public struct SafetensorsTensorInfo: Equatable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// [begin, end) relative to the start of the data section.
    public var begin: Int
    public var end: Int
}

/// A validated header: what a reader needs to find every tensor, without reading the data.
public struct SafetensorsHeader {
    public var metadata: [(String, String)]
    /// Tensors in the order of their data (by offset).
    public var tensors: [SafetensorsTensorInfo]
    /// Byte offset of the data section in the file (8 + header length).
    public var dataStart: Int
    public var fileSize: Int

    public static let maxHeaderBytes = 100_000_000
    public static let integrityKey = "medsynth_sha256"

    public func metadata(_ key: String) -> String? { metadata.first { $0.0 == key }?.1 }

    /// Validates the header held in `prefix` (the file's first 8 + N bytes, or more) for a file of
    /// `fileSize` bytes. Errors are `.invalidArgument` describing the rule broken.
    public static func parse(_ prefix: UnsafeRawBufferPointer, fileSize: Int) throws -> SafetensorsHeader {
        func bad(_ m: String) -> MedSynthError { .invalidArgument(m) }
        guard fileSize >= 8, prefix.count >= 8 else { throw bad("file is \(fileSize) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(prefix[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes) else { throw bad("header length \(n) exceeds 100,000,000 bytes") }
        let headerEnd = 8 + Int(n)
        guard headerEnd <= fileSize else { throw bad("header length \(n) runs past the end of the file (\(fileSize) bytes)") }
        guard headerEnd <= prefix.count else { throw bad("header is truncated") }
        let headerBytes = UnsafeRawBufferPointer(rebasing: prefix[8..<headerEnd])
        guard headerBytes.first == UInt8(ascii: "{") else { throw bad("header does not start with '{'") }
        guard let text = String(validating: headerBytes, as: UTF8.self) else { throw bad("header is not valid UTF-8") }
        let header: JSON
        do { header = try JSON.parse(text) } catch MedSynthError.invalidArgument(let m) { throw bad("header: \(m)") }
        guard let pairs = header.object else { throw bad("header is not a JSON object") }
        let dataLength = fileSize - headerEnd

        var metadata: [(String, String)] = []
        var tensors: [SafetensorsTensorInfo] = []
        var names = Set<String>()
        for (name, value) in pairs {
            guard names.insert(name).inserted else { throw bad("duplicate tensor name '\(name)'") }
            if name == "__metadata__" {
                if value == .null { continue }
                guard let m = value.object else { throw bad("__metadata__ must be an object of strings") }
                for (k, v) in m {
                    guard let s = v.string else { throw bad("__metadata__ value for '\(k)' is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            guard value.object != nil else { throw bad("tensor '\(name)' is not an object") }
            guard let dtypeName = value["dtype"]?.string else { throw bad("tensor '\(name)' has no dtype") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                if SafetensorsDType.unsupported.contains(dtypeName) {
                    throw bad("tensor '\(name)' has dtype \(dtypeName), a sub-byte type this reader does not support")
                }
                throw bad("tensor '\(name)' has unknown dtype '\(dtypeName)'")
            }
            guard let shapeJSON = value["shape"]?.array else { throw bad("tensor '\(name)' has no shape") }
            let shape = shapeJSON.compactMap { $0.int }
            guard shape.count == shapeJSON.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("tensor '\(name)' has an invalid shape (not a list of non-negative integers)")
            }
            guard let offsets = value["data_offsets"]?.array, offsets.count == 2,
                  let begin = offsets[0].int, let end = offsets[1].int, begin >= 0, end >= 0 else {
                throw bad("tensor '\(name)' has invalid data_offsets (need [begin, end], non-negative integers)")
            }
            guard end >= begin else { throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] with end before begin") }
            guard let numel = checkedElementCount(shape) else { throw bad("tensor '\(name)': the element count of shape \(shape) overflows") }
            let (bytes, overflow) = numel.multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw bad("tensor '\(name)': the byte count of shape \(shape) overflows") }
            guard bytes == end - begin else {
                throw bad("tensor '\(name)': shape \(shape) of \(dtype) needs \(bytes) bytes, its data_offsets give \(end - begin)")
            }
            guard end <= dataLength else {
                throw bad("tensor '\(name)' data [\(begin), \(end)) lies outside the data section (\(dataLength) bytes)")
            }
            tensors.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        // tensors must tile the data section exactly (the reference sorts by offsets, then checks)
        tensors.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        for t in tensors {
            guard t.begin == position else {
                throw bad(t.begin < position ? "tensor '\(t.name)' overlaps another tensor" : "gap in the data section before tensor '\(t.name)'")
            }
            position = t.end
        }
        guard position == dataLength else { throw bad("\(dataLength - position) trailing bytes after the last tensor") }
        return SafetensorsHeader(metadata: metadata, tensors: tensors, dataStart: headerEnd, fileSize: fileSize)
    }

    /// Reads and validates the header of the file at `path`, without reading its data.
    public static func read(_ path: String) throws -> SafetensorsHeader {
        let file = try Files.OpenFile(path)
        defer { file.close() }
        var prefix = try file.read(count: min(8, file.size), at: 0)
        if prefix.count == 8 {
            var n: UInt64 = 0
            for i in 0..<8 { n |= UInt64(prefix[i]) << (8 * UInt64(i)) }
            if n <= UInt64(maxHeaderBytes) && 8 + Int(n) <= file.size { prefix += try file.read(count: Int(n), at: 8) }
        }
        do {
            return try prefix.withUnsafeBytes { try parse($0, fileSize: file.size) }
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.io("'\(path)' is not a valid safetensors file: \(m)")
        }
    }

    // MARK: - writing (the one writer: files, images in caller memory, SafetensorsFile)

    /// Bytes a tensor of `shape` and `dtype` takes; −1 when the shape is invalid or overflows
    /// (which `writeOrder` then reports).
    package static func byteCount(_ shape: [Int], _ dtype: SafetensorsDType) -> Int {
        guard shape.allSatisfy({ $0 >= 0 }), let n = checkedElementCount(shape) else { return -1 }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: dtype.size)
        return overflow ? -1 : bytes
    }

    /// Checks names and byte counts of tensors to be written; returns the order to write them in
    /// (the reference's: dtype rank descending, then name).
    package static func writeOrder(_ tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], count: Int)]) throws -> [Int] {
        var seen = Set<String>()
        for t in tensors {
            try require(!t.name.isEmpty, "tensor names must not be empty")
            try require(t.name != "__metadata__", "'__metadata__' is reserved and cannot name a tensor")
            try require(seen.insert(t.name).inserted, "duplicate tensor name '\(t.name)'")
            guard let numel = checkedElementCount(t.shape), t.shape.allSatisfy({ $0 >= 0 }) else {
                throw MedSynthError.invalidArgument("tensor '\(t.name)' has an invalid shape \(t.shape)")
            }
            let (bytes, overflow) = numel.multipliedReportingOverflow(by: t.dtype.size)
            try require(!overflow && bytes == t.count, "tensor '\(t.name)': shape \(t.shape) of \(t.dtype) needs \(overflow ? -1 : bytes) bytes, got \(t.count)")
        }
        return tensors.indices.sorted {
            (tensors[$0].dtype.referenceRank, tensors[$1].name) > (tensors[$1].dtype.referenceRank, tensors[$0].name)
        }
    }

    /// The length-prefixed header of a file of `tensors` (checked by `writeOrder`), padded with
    /// spaces to a multiple of 8 so every tensor is aligned, and the order of their data. With
    /// `integrity`, `digest(order)` (the SHA-256 of the data in that order) joins the metadata as
    /// `medsynth_sha256`, which the caller's metadata must then not hold.
    package static func header(metadata: [(String, String)], tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], count: Int)],
                               integrity: Bool, digest: ([Int]) -> String) throws -> (bytes: [UInt8], order: [Int], dataBytes: Int) {
        for (k, _) in metadata { try require(k != integrityKey || !integrity, "metadata key '\(integrityKey)' is written by the engine") }
        let order = try writeOrder(tensors)
        let meta = integrity ? metadata + [(integrityKey, digest(order))] : metadata
        var pairs: [(String, JSON)] = []
        if !meta.isEmpty { pairs.append(("__metadata__", .object(meta.map { ($0.0, .string($0.1)) }))) }
        var offset = 0
        for i in order {
            let t = tensors[i]
            pairs.append((t.name, .object([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + t.count))])),
            ])))
            offset += t.count
        }
        var header = Array(JSON.object(pairs).serialized.utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        let n = UInt64(header.count)
        return ((0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + header, order, offset)
    }

    /// Bytes of the file `header` would describe, without hashing any data.
    package static func fileSize(metadata: [(String, String)], tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], count: Int)],
                                 integrity: Bool) throws -> Int {
        let h = try header(metadata: metadata, tensors: tensors, integrity: integrity) { _ in String(repeating: "0", count: 64) }
        return h.bytes.count + h.dataBytes
    }

    /// Copies the header and then tensor `i`'s bytes (given by `bytes(i, body)`) in the header's
    /// order into `buffer`, which must hold exactly the file.
    package static func assemble(_ header: (bytes: [UInt8], order: [Int], dataBytes: Int), into buffer: UnsafeMutableRawBufferPointer,
                                 bytes: (Int, (UnsafeRawBufferPointer) -> Void) -> Void) throws {
        try require(buffer.count == header.bytes.count + header.dataBytes,
                    "the buffer holds \(buffer.count) bytes, the file needs \(header.bytes.count + header.dataBytes)")
        guard let base = buffer.baseAddress else { return }
        header.bytes.withUnsafeBytes { if let src = $0.baseAddress { base.copyMemory(from: src, byteCount: $0.count) } }
        var position = header.bytes.count
        for i in header.order {
            bytes(i) { raw in
                if let src = raw.baseAddress { (base + position).copyMemory(from: src, byteCount: raw.count) }
                position += raw.count
            }
        }
    }

    /// The header of a file of tensors held in caller memory (see `header`).
    package static func header(metadata: [(String, String)], tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer)],
                               integrity: Bool) throws -> (bytes: [UInt8], order: [Int], dataBytes: Int) {
        try header(metadata: metadata, tensors: tensors.map { ($0.name, $0.dtype, $0.shape, $0.bytes.count) }, integrity: integrity) { order in
            var hash = SHA256()
            for i in order { hash.update(tensors[i].bytes) }
            return hash.hexDigest()
        }
    }

    /// Writes tensors held in caller memory as a safetensors file, atomically. With `integrity`,
    /// the metadata gains `medsynth_sha256` (the SHA-256 of the data section).
    public static func write(to path: String, metadata: [(String, String)],
                             tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer)],
                             integrity: Bool) throws {
        let h = try header(metadata: metadata, tensors: tensors, integrity: integrity)
        try h.bytes.withUnsafeBytes { head in
            try Files.writeAtomically(path, [head] + h.order.map { tensors[$0].bytes })
        }
    }

    /// Writes tensors held in caller memory as a safetensors file into `buffer` (size: `fileSize`).
    public static func write(into buffer: UnsafeMutableRawBufferPointer, metadata: [(String, String)],
                             tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer)],
                             integrity: Bool) throws {
        let h = try header(metadata: metadata, tensors: tensors, integrity: integrity)
        try assemble(h, into: buffer) { i, body in body(tensors[i].bytes) }
    }

    /// Checks the data section against `medsynth_sha256` when the metadata holds it.
    public func verifyIntegrity(_ data: UnsafeRawBufferPointer) throws {
        guard let expected = metadata(Self.integrityKey) else { return }
        let actual = SHA256.hex(data)
        guard actual == expected.lowercased() else {
            throw MedSynthError.invalidArgument(
                "the data does not match its \(Self.integrityKey) (stored \(expected.prefix(16))..., computed \(actual.prefix(16))...): the file is corrupt")
        }
    }
}

public struct SafetensorsEntry {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Little-endian raw bytes, numel × dtype size.
    public var bytes: [UInt8]

    public init(name: String, dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// An F32 entry holding `tensor`'s values.
    public init(name: String, tensor: Tensor) {
        let bytes = UnsafeRawBufferPointer(start: tensor.data, count: tensor.count * 4)
        self.init(name: name, dtype: .F32, shape: tensor.shape, bytes: Array(bytes))
    }

    /// An I64 scalar (e.g. BatchNorm's num_batches_tracked).
    public init(name: String, int64 value: Int64) {
        self.init(name: name, dtype: .I64, shape: [], bytes: withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The value of a one-element I64 entry (step counters, BatchNorm's num_batches_tracked, as
    /// torch saves them); nil for any other dtype or size.
    public func int64Scalar() -> Int64? {
        guard dtype == .I64, elementCount == 1, bytes.count == 8 else { return nil }
        return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }

    /// The values converted to float32 (from any float or integer dtype; C64 and the FP8 types have
    /// no float32 reading here and throw).
    public func floats() throws -> [Float] {
        let n = elementCount
        try require(bytes.count == n * dtype.size, "tensor '\(name)' has \(bytes.count) bytes for \(n) elements of \(dtype.rawValue)")
        var out = [Float](repeating: 0, count: n)
        try bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                switch dtype {
                case .F32: out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
                case .F64: out[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian))
                case .F16:
                    #if arch(x86_64) || arch(arm64)
                    out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian))
                    #endif
                case .BF16: out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian) << 16)
                case .I64: out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
                case .I32: out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                case .I16: out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
                case .I8: out[i] = Float(raw.load(fromByteOffset: i, as: Int8.self))
                case .U64: out[i] = Float(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                case .U32: out[i] = Float(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                case .U16: out[i] = Float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                case .U8, .BOOL: out[i] = Float(raw.load(fromByteOffset: i, as: UInt8.self))
                case .C64, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ:
                    throw MedSynthError.invalidArgument("tensor '\(name)' of dtype \(dtype.rawValue) has no float32 reading")
                }
            }
        }
        return out
    }

    /// The entry as F32 (converted from any float or integer dtype `floats` reads).
    public func asF32() throws -> SafetensorsEntry {
        if dtype == .F32 { return self }
        return SafetensorsEntry(name: name, dtype: .F32, shape: shape, bytes: try floats().withUnsafeBytes { Array($0) })
    }

    /// The values of an F32 entry of `shape`, all finite: what every float parameter, buffer and
    /// optimiser state of the engine must be. Errors name the tensor.
    public func finiteFloats(shape expected: [Int]) throws -> [Float] {
        try require(dtype == .F32, "checkpoint tensor '\(name)' has dtype \(dtype.rawValue), expected F32")
        try require(shape == expected, "checkpoint tensor '\(name)' has shape \(shape), the model expects \(expected)")
        let n = elementCount
        try require(bytes.count == n * 4, "checkpoint tensor '\(name)' has \(bytes.count) bytes for \(n) floats")
        var out = [Float](repeating: 0, count: n)
        var finite = true
        bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                let v = Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
                out[i] = v
                finite = finite && v.isFinite
            }
        }
        if !finite {
            let bad = out.firstIndex { !$0.isFinite } ?? 0
            throw MedSynthError.invalidArgument("checkpoint tensor '\(name)' holds a non-finite value (\(out[bad]) at index \(bad))")
        }
        return out
    }
}

public struct SafetensorsFile {
    public var metadata: [(String, String)]
    public var entries: [SafetensorsEntry]

    public init(metadata: [(String, String)] = [], entries: [SafetensorsEntry]) {
        self.metadata = metadata
        self.entries = entries
    }

    public subscript(name: String) -> SafetensorsEntry? { entries.first { $0.name == name } }
    public func metadata(_ key: String) -> String? { metadata.first { $0.0 == key }?.1 }

    // MARK: - reading

    public static func read(_ path: String) throws -> SafetensorsFile {
        do {
            return try parse(try Files.read(path))
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.io("'\(path)' is not a valid safetensors file: \(m)")
        }
    }

    /// Parses a whole file held in memory (and verifies `medsynth_sha256` when present).
    public static func parse(_ file: [UInt8]) throws -> SafetensorsFile {
        try file.withUnsafeBytes { raw in
            let header = try SafetensorsHeader.parse(raw, fileSize: raw.count)
            let data = UnsafeRawBufferPointer(rebasing: raw[header.dataStart...])
            try header.verifyIntegrity(data)
            let entries = header.tensors.map {
                SafetensorsEntry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: Array(data[$0.begin..<$0.end]))
            }
            return SafetensorsFile(metadata: header.metadata, entries: entries)
        }
    }

    /// Names of tensors that none of `accepted` reads: a checkpoint with tensors nobody loads is
    /// not what it says, so loaders reject them instead of skipping them.
    public func requireOnly(_ accepted: (String) -> Bool, path: String) throws {
        let extra = entries.map { $0.name }.filter { !accepted($0) }.sorted()
        if !extra.isEmpty {
            throw MedSynthError.io("'\(path)' holds tensors this model does not have: \(extra.prefix(5).joined(separator: ", "))\(extra.count > 5 ? ", ..." : "")")
        }
    }

    // MARK: - writing

    /// Bytes of the file these entries make, from names, dtypes and shapes alone (for callers that
    /// size a buffer before asking for the data).
    public static func serializedCount(metadata: [(String, String)] = [],
                                       layout: [(name: String, dtype: SafetensorsDType, shape: [Int])],
                                       integrity: Bool = true) throws -> Int {
        try SafetensorsHeader.fileSize(metadata: metadata.filter { $0.0 != SafetensorsHeader.integrityKey },
                                       tensors: layout.map { ($0.name, $0.dtype, $0.shape, SafetensorsHeader.byteCount($0.shape, $0.dtype)) },
                                       integrity: integrity)
    }

    /// Writes the whole file into `buffer`, which must hold exactly `serializedCount` bytes; with
    /// `integrity`, `medsynth_sha256` joins the metadata (any stale one is dropped either way).
    public func serialize(into buffer: UnsafeMutableRawBufferPointer, integrity: Bool = true) throws {
        let infos = entries.map { (name: $0.name, dtype: $0.dtype, shape: $0.shape, count: $0.bytes.count) }
        let header = try SafetensorsHeader.header(metadata: metadata.filter { $0.0 != SafetensorsHeader.integrityKey },
                                                  tensors: infos, integrity: integrity) { order in
            var hash = SHA256()
            for i in order { hash.update(entries[i].bytes) }
            return hash.hexDigest()
        }
        try SafetensorsHeader.assemble(header, into: buffer) { i, body in entries[i].bytes.withUnsafeBytes(body) }
    }

    /// The whole file; with `integrity`, `medsynth_sha256` joins the metadata.
    public func serialized(integrity: Bool = true) throws -> [UInt8] {
        let count = try SafetensorsHeader.fileSize(metadata: metadata.filter { $0.0 != SafetensorsHeader.integrityKey },
                                                   tensors: entries.map { ($0.name, $0.dtype, $0.shape, $0.bytes.count) },
                                                   integrity: integrity)
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try serialize(into: $0, integrity: integrity) }
        return out
    }

    /// Writes the file atomically, with its integrity hash.
    public func write(to path: String, integrity: Bool = true) throws {
        try Files.writeAtomically(path, bytes: try serialized(integrity: integrity))
    }
}
