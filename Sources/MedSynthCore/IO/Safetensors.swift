// safetensors (huggingface/safetensors): [u64 LE header length N][N bytes of JSON header][data].
// Header: {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}, ...}; offsets relative to the data section, little-endian,
// row-major. The reader enforces the format's rules (the reference implementation's checks):
// N ≤ 100 MB, offsets inside the data and tiling it without holes or overlaps, byte counts equal
// to numel × dtype size, file length = 8 + N + data, no duplicate names, known dtypes only.
// The writer follows the reference: tensors sorted by (dtype size descending, name), header
// padded with spaces to a multiple of 8 so every tensor is aligned.

public enum SafetensorsDType: String, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL

    public var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL: return 1
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

    /// The value of a one-element entry as an exact integer (step counters, BatchNorm's
    /// num_batches_tracked): integer dtypes are read exactly, where `floats()` would round beyond
    /// 2^24; float dtypes must hold a finite whole number. Nil otherwise.
    public func int64Scalar() -> Int64? {
        guard elementCount == 1, bytes.count == dtype.size else { return nil }
        func load<T: FixedWidthInteger>(_: T.Type) -> T { bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) } }
        switch dtype {
        case .I64: return load(Int64.self)
        case .I32: return Int64(load(Int32.self))
        case .I16: return Int64(load(Int16.self))
        case .I8: return Int64(Int8(bitPattern: bytes[0]))
        case .U64: return Int64(exactly: load(UInt64.self))
        case .U32: return Int64(load(UInt32.self))
        case .U16: return Int64(load(UInt16.self))
        case .U8, .BOOL: return Int64(bytes[0])
        case .F64: return Int64(exactly: Double(bitPattern: load(UInt64.self)))
        case .F32, .F16, .BF16: return Int64(exactly: floats()[0])
        }
    }

    /// The values converted to float32 (from any float or integer dtype).
    public func floats() -> [Float] {
        let n = elementCount
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
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
                }
            }
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

    public static func parse(_ file: [UInt8]) throws -> SafetensorsFile {
        func bad(_ m: String) -> MedSynthError { .invalidArgument(m) }
        guard file.count >= 8 else { throw bad("file is \(file.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(file[i]) << (8 * UInt64(i)) }
        guard n <= 100_000_000 else { throw bad("header length \(n) exceeds 100,000,000 bytes") }
        guard 8 + Int(n) <= file.count else { throw bad("header length \(n) runs past the end of the file (\(file.count) bytes)") }
        let headerBytes = Array(file[8..<(8 + Int(n))])
        guard headerBytes.first == UInt8(ascii: "{") else { throw bad("header does not start with '{'") }
        let header = try JSON.parse(bytes: headerBytes)
        guard let pairs = header.object else { throw bad("header is not a JSON object") }
        let dataStart = 8 + Int(n), dataLength = file.count - dataStart

        var metadata: [(String, String)] = []
        var entries: [(SafetensorsEntry, Int, Int)] = []
        var names = Set<String>()
        for (name, value) in pairs {
            guard names.insert(name).inserted else { throw bad("duplicate tensor name '\(name)'") }
            if name == "__metadata__" {
                guard let m = value.object else { throw bad("__metadata__ must be an object of strings") }
                for (k, v) in m {
                    guard let s = v.string else { throw bad("__metadata__ value for '\(k)' is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            guard let dtypeName = value["dtype"]?.string else { throw bad("tensor '\(name)' has no dtype") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else { throw bad("tensor '\(name)' has unknown dtype \(dtypeName)") }
            guard let shapeJSON = value["shape"]?.array else { throw bad("tensor '\(name)' has no shape") }
            let shape = shapeJSON.compactMap { $0.int }
            guard shape.count == shapeJSON.count, shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(name)' has an invalid shape") }
            guard let offsets = value["data_offsets"]?.array, offsets.count == 2,
                  let begin = offsets[0].int, let end = offsets[1].int, begin >= 0, end >= begin else {
                throw bad("tensor '\(name)' has invalid data_offsets")
            }
            guard end <= dataLength else { throw bad("tensor '\(name)' data [\(begin), \(end)) lies outside the data section (\(dataLength) bytes)") }
            guard let numel = checkedElementCount(shape), numel.multipliedReportingOverflow(by: dtype.size).partialValue == end - begin,
                  !numel.multipliedReportingOverflow(by: dtype.size).overflow else {
                throw bad("tensor '\(name)': shape \(shape) of \(dtype) needs a different byte count than \(end - begin)")
            }
            let bytes = Array(file[(dataStart + begin)..<(dataStart + end)])
            entries.append((SafetensorsEntry(name: name, dtype: dtype, shape: shape, bytes: bytes), begin, end))
        }
        // tensors must tile the data section exactly
        var position = 0
        for (entry, begin, end) in entries.sorted(by: { ($0.1, $0.2) < ($1.1, $1.2) }) {
            guard begin == position else {
                throw bad(begin < position ? "tensor '\(entry.name)' overlaps another tensor" : "gap in the data section before tensor '\(entry.name)'")
            }
            position = end
        }
        guard position == dataLength else { throw bad("\(dataLength - position) trailing bytes after the last tensor") }
        return SafetensorsFile(metadata: metadata, entries: entries.map { $0.0 })
    }

    // MARK: - writing

    /// The length-prefixed, space-padded header for entries (name, dtype, shape) and their order in
    /// the data section: sorted by (dtype size descending, name), as the reference writer does.
    private static func header(metadata: [(String, String)], layout: [(name: String, dtype: SafetensorsDType, shape: [Int])])
        throws -> (bytes: [UInt8], order: [Int], dataBytes: Int) {
        var seen = Set<String>()
        var sizes: [Int] = []
        for e in layout {
            try require(e.name != "__metadata__" && seen.insert(e.name).inserted, "duplicate or reserved tensor name '\(e.name)'")
            guard let n = checkedElementCount(e.shape), !n.multipliedReportingOverflow(by: e.dtype.size).overflow else {
                throw MedSynthError.invalidArgument("tensor '\(e.name)' has an invalid shape \(e.shape)")
            }
            sizes.append(n * e.dtype.size)
        }
        let order = layout.indices.sorted {
            (layout[$0].dtype.size, layout[$1].name) > (layout[$1].dtype.size, layout[$0].name)
        }
        var pairs: [(String, JSON)] = []
        if !metadata.isEmpty { pairs.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var offset = 0
        for i in order {
            let e = layout[i]
            pairs.append((e.name, .object([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + sizes[i]))])),
            ])))
            offset += sizes[i]
        }
        var header = Array(JSON.object(pairs).serialized.utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        let n = UInt64(header.count)
        return ((0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + header, order, offset)
    }

    /// Bytes a file of these entries takes, computed from names, dtypes and shapes alone (for
    /// callers that size a buffer before asking for the data).
    public static func serializedCount(metadata: [(String, String)] = [],
                                       layout: [(name: String, dtype: SafetensorsDType, shape: [Int])]) throws -> Int {
        let h = try header(metadata: metadata, layout: layout)
        return h.bytes.count + h.dataBytes
    }

    /// Writes the file's bytes into `buffer`, which must hold exactly `serializedCount` bytes.
    public func serialize(into buffer: UnsafeMutableRawBufferPointer) throws {
        for e in entries {
            try require(e.bytes.count == e.elementCount * e.dtype.size, "tensor '\(e.name)' byte count does not match its shape")
        }
        let h = try Self.header(metadata: metadata, layout: entries.map { ($0.name, $0.dtype, $0.shape) })
        try require(buffer.count == h.bytes.count + h.dataBytes,
                    "the buffer holds \(buffer.count) bytes, the file needs \(h.bytes.count + h.dataBytes)")
        guard let base = buffer.baseAddress else { return }
        h.bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var position = h.bytes.count
        for i in h.order {
            entries[i].bytes.withUnsafeBytes { raw in
                if let src = raw.baseAddress { (base + position).copyMemory(from: src, byteCount: raw.count) }
            }
            position += entries[i].bytes.count
        }
    }

    public func serialized() throws -> [UInt8] {
        let count = try Self.serializedCount(metadata: metadata, layout: entries.map { ($0.name, $0.dtype, $0.shape) })
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try serialize(into: $0) }
        return out
    }

    /// Writes the file atomically.
    public func write(to path: String) throws {
        try Files.writeAtomically(path, bytes: try serialized())
    }
}
