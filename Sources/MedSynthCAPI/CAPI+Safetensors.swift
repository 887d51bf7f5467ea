// C ABI of safetensors files and images (a whole file in memory): a validated header for readers
// that bring their own buffers (the Python package reads the data straight into numpy arrays, or
// views an image), and a writer of caller memory to a file or an image. The engine's one reader
// and writer (MedSynthCore/IO/Safetensors.swift) stand behind every path.

import MedSynth
import MedSynthCore

import CMedSynth

extension CAPI {
    /// The text of a validated header (the layout ms_safetensors_header documents).
    static func headerText(_ header: SafetensorsHeader) -> String {
        let tensors: [JSON] = header.tensors.map {
            .object([("name", .string($0.name)), ("dtype", .string($0.dtype.rawValue)),
                     ("shape", .array($0.shape.map { .number(Double($0)) })),
                     ("data_offsets", .array([.number(Double($0.begin)), .number(Double($0.end))]))])
        }
        return JSON.object([
            ("file_size", .number(Double(header.fileSize))), ("data_start", .number(Double(header.dataStart))),
            ("metadata", .object(header.metadata.map { ($0.0, .string($0.1)) })), ("tensors", .array(tensors)),
        ]).serialized
    }

    /// Metadata and tensors to write, from header_json and the caller's `count` buffers.
    static func tensorsToWrite(_ headerJSON: UnsafePointer<CChar>?, _ data: UnsafePointer<UnsafeRawPointer?>?,
                               _ lengths: UnsafePointer<Int>?, _ count: Int64) throws
        -> (metadata: [(String, String)], tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer)]) {
        let header = try json(headerJSON, "header_json")
        try header.rejectUnknownKeys(["metadata", "tensors"], in: "safetensors header")
        try require(count >= 0 && count <= 1 << 24, "count must be between 0 and 2^24")
        let specs = header["tensors"]?.array ?? []
        try require(specs.count == Int(count), "header_json describes \(specs.count) tensors, count is \(count)")
        var metadata: [(String, String)] = []
        for (k, v) in header["metadata"]?.object ?? [] {
            guard let s = v.string else { throw MedSynthError.invalidArgument("metadata value of '\(k)' must be a string") }
            metadata.append((k, s))
        }
        var tensors: [(name: String, dtype: SafetensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer)] = []
        for (i, spec) in specs.enumerated() {
            guard let name = spec["name"]?.string else { throw MedSynthError.invalidArgument("tensor \(i) has no name") }
            guard let dtypeName = spec["dtype"]?.string, let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw MedSynthError.invalidArgument("tensor '\(name)' has an unknown dtype")
            }
            guard let shape = spec["shape"]?.array?.compactMap({ $0.int }), shape.count == spec["shape"]?.array?.count else {
                throw MedSynthError.invalidArgument("tensor '\(name)' needs a shape of integers")
            }
            let length = try pointer(lengths, "lengths")[i]
            let base = try pointer(data, "data")[i]
            try require(base != nil || length == 0, "data[\(i)] (tensor '\(name)') is NULL")
            tensors.append((name, dtype, shape, UnsafeRawBufferPointer(start: base, count: length)))
        }
        return (metadata, tensors)
    }
}

@c @implementation
public func ms_safetensors_header(_ path: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int,
                                  _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.text({ CAPI.headerText(try SafetensorsHeader.read(try CAPI.string(path, "path"))) }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_safetensors_image_header(_ bytes: UnsafePointer<UInt8>?, _ len: Int, _ buf: UnsafeMutablePointer<CChar>?,
                                        _ bufLen: Int, _ needed: UnsafeMutablePointer<Int>?,
                                        _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.text({
        let image = UnsafeRawBufferPointer(start: try CAPI.pointer(bytes, "bytes"), count: len)
        do {
            let header = try SafetensorsHeader.parse(image, fileSize: len)
            try header.verifyIntegrity(UnsafeRawBufferPointer(rebasing: image[header.dataStart...]))
            return CAPI.headerText(header)
        } catch MedSynthError.invalidArgument(let m) {
            throw MedSynthError.invalidArgument("not a valid safetensors image: \(m)")
        }
    }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_safetensors_write(_ path: UnsafePointer<CChar>?, _ headerJSON: UnsafePointer<CChar>?,
                                 _ data: UnsafePointer<UnsafeRawPointer?>?, _ lengths: UnsafePointer<Int>?, _ count: Int64,
                                 _ integrity: Int32, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let path = try CAPI.string(path, "path")
        let (metadata, tensors) = try CAPI.tensorsToWrite(headerJSON, data, lengths, count)
        try SafetensorsHeader.write(to: path, metadata: metadata, tensors: tensors, integrity: integrity != 0)
    }
}

@c @implementation
public func ms_safetensors_image(_ headerJSON: UnsafePointer<CChar>?, _ data: UnsafePointer<UnsafeRawPointer?>?,
                                 _ lengths: UnsafePointer<Int>?, _ count: Int64, _ integrity: Int32,
                                 _ buf: UnsafeMutablePointer<UInt8>?, _ bufLen: Int, _ needed: UnsafeMutablePointer<Int>?,
                                 _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.bytes(buf, bufLen, needed, err, errLen) { sized in
        let (metadata, tensors) = try CAPI.tensorsToWrite(headerJSON, data, lengths, count)
        let size = try SafetensorsHeader.fileSize(metadata: metadata, tensors: tensors.map { ($0.name, $0.dtype, $0.shape, $0.bytes.count) },
                                                  integrity: integrity != 0)
        try SafetensorsHeader.write(into: try sized(size), metadata: metadata, tensors: tensors, integrity: integrity != 0)
    }
}
