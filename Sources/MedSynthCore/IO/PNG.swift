// PNG reading and writing through libpng's simplified API (png_image, libpng >= 1.6): errors come
// back as return codes with a message, never as longjmp, so a corrupt file cannot take the
// process down. 8-bit files are read as stored; 16-bit files through libpng's "linear" formats,
// which for files without colour-space chunks are the stored values.
// Caveat (libpng's design): 16-bit images WITH alpha pass through premultiplied linear data; we
// undo the premultiplication, which is exact for opaque pixels and loses precision where alpha is
// small.

import CPNG
import Glibc

public struct PNGImage {
    public var width: Int
    public var height: Int
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    public var channels: Int
    /// 8 or 16
    public var bitDepth: Int
    /// Interleaved samples, row-major [height, width, channels], in 0...255 or 0...65535.
    public var samples: [UInt16]

    public init(width: Int, height: Int, channels: Int, bitDepth: Int, samples: [UInt16]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.samples = samples
    }
}

public enum PNG {
    package static func format(channels: Int, linear: Bool) -> UInt32 {
        var f: UInt32 = 0
        if channels >= 3 { f |= UInt32(PNG_FORMAT_FLAG_COLOR) }
        if channels == 2 || channels == 4 { f |= UInt32(PNG_FORMAT_FLAG_ALPHA) }
        if linear { f |= UInt32(PNG_FORMAT_FLAG_LINEAR) }
        return f
    }

    package static func message(_ image: png_image) -> String {
        var m = image.message
        return withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// The header of a PNG: (width, height, channels, bit depth) as `read` would return them.
    public static func probe(_ path: String) throws -> (width: Int, height: Int, channels: Int, bitDepth: Int) {
        let file = try pinnedFile(path)
        defer { file.deallocate() }
        let image = try begin(UnsafeRawBufferPointer(file), path: path)
        defer { png_image_free(image); image.deallocate() }
        return header(image.pointee)
    }

    /// The file's bytes at a fixed address: libpng keeps reading from the buffer given to
    /// begin_read until finish_read, so it must outlive both calls.
    package static func pinnedFile(_ path: String) throws -> UnsafeMutableRawBufferPointer {
        let bytes = try Files.read(path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count])
    }

    package static func header(_ image: png_image) -> (width: Int, height: Int, channels: Int, bitDepth: Int) {
        let f = image.format
        let colour = f & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = f & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let linear = f & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        return (Int(image.width), Int(image.height), (colour ? 3 : 1) + (alpha ? 1 : 0), linear ? 16 : 8)
    }

    /// Starts reading. libpng's error handler keeps the address of the png_image, so the struct
    /// lives on the heap and must not move until png_image_free.
    package static func begin(_ bytes: UnsafeRawBufferPointer, path: String) throws -> UnsafeMutablePointer<png_image> {
        guard bytes.count >= 8, bytes[0] == 0x89, bytes[1] == 0x50, bytes[2] == 0x4E, bytes[3] == 0x47 else {
            throw MedSynthError.io("'\(path)' is not a PNG file")
        }
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        image.initialize(to: png_image())
        image.pointee.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(image, bytes.baseAddress, bytes.count) != 0 else {
            let m = message(image.pointee)
            png_image_free(image)
            image.deallocate()
            throw MedSynthError.io("cannot read PNG '\(path)': \(m)")
        }
        return image
    }

    public static func read(_ path: String) throws -> PNGImage {
        let file = try pinnedFile(path)
        defer { file.deallocate() }
        let image = try begin(UnsafeRawBufferPointer(file), path: path)
        defer { png_image_free(image); image.deallocate() }
        let (width, height, channels, depth) = header(image.pointee)
        guard width > 0, height > 0, width <= 1 << 16, height <= 1 << 16 else {
            throw MedSynthError.io("cannot read PNG '\(path)': unsupported size \(width)x\(height)")
        }
        image.pointee.format = format(channels: channels, linear: depth == 16)
        let count = width * height * channels
        var samples = [UInt16](repeating: 0, count: count)
        var ok: Int32 = 0
        if depth == 16 {
            ok = samples.withUnsafeMutableBytes { png_image_finish_read(image, nil, $0.baseAddress, 0, nil) }
            if ok != 0 && (channels == 2 || channels == 4) {
                // undo libpng's alpha premultiplication of linear data
                for p in 0..<(width * height) {
                    let a = UInt32(samples[p * channels + channels - 1])
                    if a == 0 || a == 65535 { continue }
                    for c in 0..<(channels - 1) {
                        let v = (UInt32(samples[p * channels + c]) * 65535 + a / 2) / a
                        samples[p * channels + c] = UInt16(min(v, 65535))
                    }
                }
            }
        } else {
            var eight = [UInt8](repeating: 0, count: count)
            ok = eight.withUnsafeMutableBytes { png_image_finish_read(image, nil, $0.baseAddress, 0, nil) }
            for i in 0..<count { samples[i] = UInt16(eight[i]) }
        }
        guard ok != 0 else { throw MedSynthError.io("cannot read PNG '\(path)': \(message(image.pointee))") }
        return PNGImage(width: width, height: height, channels: channels, bitDepth: depth, samples: samples)
    }

    /// Encodes `image` and writes it atomically to `path`.
    public static func write(_ image: PNGImage, to path: String) throws {
        try validate(image)
        let png = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        png.initialize(to: png_image())
        defer { png_image_free(png); png.deallocate() }
        png.pointee.version = UInt32(PNG_IMAGE_VERSION)
        png.pointee.width = UInt32(image.width)
        png.pointee.height = UInt32(image.height)
        png.pointee.format = format(channels: image.channels, linear: image.bitDepth == 16)
        var encoded = [UInt8]()
        var size = 0
        func encode(_ buffer: UnsafeRawPointer) throws {
            // first call sizes the output, second fills it
            guard png_image_write_to_memory(png, nil, &size, 0, buffer, 0, nil) != 0 else {
                throw MedSynthError.io("cannot encode PNG '\(path)': \(message(png.pointee))")
            }
            encoded = [UInt8](repeating: 0, count: size)
            let ok = encoded.withUnsafeMutableBytes { png_image_write_to_memory(png, $0.baseAddress, &size, 0, buffer, 0, nil) }
            guard ok != 0 else { throw MedSynthError.io("cannot encode PNG '\(path)': \(message(png.pointee))") }
        }
        if image.bitDepth == 16 {
            var samples = image.samples
            if image.channels == 2 || image.channels == 4 {
                // the linear formats expect premultiplied alpha
                let c = image.channels
                for p in 0..<(image.width * image.height) {
                    let a = UInt32(samples[p * c + c - 1])
                    for k in 0..<(c - 1) { samples[p * c + k] = UInt16((UInt32(samples[p * c + k]) * a + 32767) / 65535) }
                }
            }
            try samples.withUnsafeBytes { raw in if let base = raw.baseAddress { try encode(base) } }
        } else {
            let eight = image.samples.map { UInt8($0) }
            try eight.withUnsafeBytes { raw in if let base = raw.baseAddress { try encode(base) } }
        }
        try encoded.withUnsafeBytes { try Files.writeAtomically(path, [UnsafeRawBufferPointer(rebasing: $0.prefix(size))]) }
    }

    package static func validate(_ image: PNGImage) throws {
        try require((1...4).contains(image.channels), "PNG images have 1 to 4 channels, got \(image.channels)")
        try require(image.bitDepth == 8 || image.bitDepth == 16, "PNG bit depth must be 8 or 16, got \(image.bitDepth)")
        try require(image.width >= 1 && image.height >= 1 && image.width <= 1 << 16 && image.height <= 1 << 16,
                    "PNG size must be between 1 and 65536 pixels per side, got \(image.width)x\(image.height)")
        try require(image.samples.count == image.width * image.height * image.channels,
                    "PNG sample count \(image.samples.count) does not match \(image.width)x\(image.height)x\(image.channels)")
        if image.bitDepth == 8 {
            try require(image.samples.allSatisfy { $0 <= 255 }, "8-bit PNG samples must be 0...255")
        }
    }
}
