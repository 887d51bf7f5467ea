// PNG reading and writing through libpng.
//  - 8-bit files: the simplified API (png_image, libpng >= 1.6), whose errors come back as return
//    codes with a message; files are read as stored (palette and low-bit files expand to 8 bits).
//  - 16-bit files: the classic API through the small C target CPNGShim, which catches libpng's
//    longjmp errors with setjmp (Swift cannot). The simplified API passes 16-bit images with alpha
//    through premultiplied linear data and loses precision; the classic API reads and writes the
//    stored samples exactly.
// Before any pixel buffer exists, a read checks the declared size against a pixel limit (as
// Pillow's MAX_IMAGE_PIXELS: a few hundred bytes can declare a 65536x65536 image, a
// "decompression bomb") and against the memory available, so a hostile file is an error naming
// it, never an allocation that takes the process down.

import CPNG
import CPNGShim
import Glibc
import Synchronization

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

/// What a PNG file declares, as `PNG.read` returns it.
public struct PNGHeader: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    /// 8 or 16 (files of 1, 2 or 4 bits per sample are read as 8-bit)
    public var bitDepth: Int
    public var sampleCount: Int { width * height * channels }
    public var byteCount: Int { sampleCount * bitDepth / 8 }
}

public enum PNG {
    /// Pillow's default `Image.MAX_IMAGE_PIXELS` (1024 · 1024 · 1024 / 4 / 3, about 89.5 Mpx).
    public static let defaultMaxPixels = 89_478_485
    /// Environment variable that sets the limit at start-up (0: no limit).
    public static let maxPixelsVariable = "MEDSYNTH_MAX_IMAGE_PIXELS"
    /// Largest width or height, as the writer allows (PNG allows 2^31 - 1).
    public static let maxSide = 1 << 16

    /// -1 until first use, then the limit (0: none).
    private static let maxPixelsSetting = Atomic<Int>(-1)

    /// The most pixels (width × height) a read accepts; 0 means no limit. Starts as
    /// MEDSYNTH_MAX_IMAGE_PIXELS, or `defaultMaxPixels` when that is unset.
    public static func maxPixels() throws -> Int {
        let v = maxPixelsSetting.load(ordering: .relaxed)
        if v >= 0 { return v }
        var initial = defaultMaxPixels
        if let raw = getenv(maxPixelsVariable) {
            let text = String(cString: raw)
            guard let n = Int(text), n >= 0 else {
                throw MedSynthError.invalidArgument("\(maxPixelsVariable) must be a non-negative integer (0: no limit), got '\(text)'")
            }
            initial = n
        }
        maxPixelsSetting.store(initial, ordering: .relaxed)
        return initial
    }

    /// Sets the pixel limit (0: no limit).
    public static func setMaxPixels(_ n: Int) throws {
        try require(n >= 0, "the maximum number of image pixels must be non-negative (0: no limit), got \(n)")
        maxPixelsSetting.store(n, ordering: .relaxed)
    }

    package static func format(channels: Int) -> UInt32 {
        var f: UInt32 = 0
        if channels >= 3 { f |= UInt32(PNG_FORMAT_FLAG_COLOR) }
        if channels == 2 || channels == 4 { f |= UInt32(PNG_FORMAT_FLAG_ALPHA) }
        return f
    }

    package static func message(_ image: png_image) -> String {
        var m = image.message
        return withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// The header of a PNG as `read` would return it, after the checks `read` makes before
    /// decoding (pixel limit, available memory): what a caller needs to size its buffer.
    public static func probe(_ path: String) throws -> PNGHeader {
        let file = try pinnedFile(path)
        defer { file.deallocate() }
        return try checkedHeader(UnsafeRawBufferPointer(file), path: path)
    }

    /// The file's bytes at a fixed address: libpng keeps reading from the buffer given to
    /// begin_read until finish_read, so it must outlive both calls.
    package static func pinnedFile(_ path: String) throws -> UnsafeMutableRawBufferPointer {
        let file = try Files.OpenFile(path)
        defer { file.close() }
        if file.size >= 64 << 20 { try MemoryBudget.check(bytes: file.size, what: "reading '\(path)'") }
        guard let raw = malloc(max(file.size, 1)) else {
            throw MedSynthError.outOfMemory("out of memory reading '\(path)' (\(file.size) bytes)")
        }
        let buffer = UnsafeMutableRawBufferPointer(start: raw, count: file.size)
        do { try file.read(into: buffer, at: 0) } catch { free(raw); throw error }
        return buffer
    }

    /// Parses the header and applies the limits.
    package static func checkedHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> PNGHeader {
        guard bytes.count >= 8, bytes[0] == 0x89, bytes[1] == 0x50, bytes[2] == 0x4E, bytes[3] == 0x47 else {
            throw MedSynthError.io("'\(path)' is not a PNG file")
        }
        var width: UInt32 = 0, height: UInt32 = 0, channels: Int32 = 0, depth: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        guard cpng_probe(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, &width, &height, &channels, &depth,
                         &err, err.count) == 0 else {
            throw MedSynthError.io("cannot read PNG '\(path)': \(String(cString: err))")
        }
        let header = PNGHeader(width: Int(width), height: Int(height), channels: Int(channels), bitDepth: depth == 16 ? 16 : 8)
        guard header.width >= 1, header.height >= 1, header.width <= maxSide, header.height <= maxSide else {
            throw MedSynthError.io("cannot read PNG '\(path)': unsupported size \(header.width)x\(header.height) (at most \(maxSide) pixels per side)")
        }
        let pixels = header.width * header.height, limit = try maxPixels()
        if limit > 0 && pixels > limit {
            throw MedSynthError.io(
                "'\(path)' declares \(header.width)x\(header.height) = \(pixels) pixels, more than the limit of \(limit) "
                + "(a decompression bomb?); raise the limit with medsynth.io.set_max_image_pixels(n) or \(maxPixelsVariable) if the file is trusted")
        }
        try MemoryBudget.check(bytes: header.byteCount, what: "decoding '\(path)' (\(header.width)x\(header.height)x\(header.channels), \(header.bitDepth)-bit)")
        return header
    }

    /// Decodes the file into `out` (native-endian UInt16 samples for 16-bit files, UInt8 for 8-bit
    /// ones, as `probe` reports); `out.count` must be `probe(path).byteCount`.
    public static func read(_ path: String, into out: UnsafeMutableRawBufferPointer) throws -> PNGHeader {
        let file = try pinnedFile(path)
        defer { file.deallocate() }
        return try decode(UnsafeRawBufferPointer(file), path: path, into: out)
    }

    /// Decodes a whole PNG held in memory (`path` names it in errors) into `out`, sized from
    /// `checkedHeader(bytes)`.
    package static func decode(_ bytes: UnsafeRawBufferPointer, path: String, into out: UnsafeMutableRawBufferPointer) throws -> PNGHeader {
        let header = try checkedHeader(bytes, path: path)
        try require(out.count == header.byteCount && out.baseAddress != nil,
                    "'\(path)' holds \(header.width)x\(header.height)x\(header.channels) \(header.bitDepth)-bit samples (\(header.byteCount) bytes), the buffer has \(out.count)")
        if header.bitDepth == 16 {
            var err = [CChar](repeating: 0, count: 256)
            guard cpng_read16(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count,
                              out.baseAddress!.assumingMemoryBound(to: UInt16.self), header.sampleCount, UInt32(maxSide),
                              &err, err.count) == 0 else {
                throw MedSynthError.io("cannot read PNG '\(path)': \(String(cString: err))")
            }
            return header
        }
        // libpng's error handler keeps the address of the png_image: it lives on the heap
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        image.initialize(to: png_image())
        defer { png_image_free(image); image.deallocate() }
        image.pointee.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(image, bytes.baseAddress, bytes.count) != 0 else {
            throw MedSynthError.io("cannot read PNG '\(path)': \(message(image.pointee))")
        }
        guard Int(image.pointee.width) == header.width, Int(image.pointee.height) == header.height else {
            throw MedSynthError.io("cannot read PNG '\(path)': inconsistent header")
        }
        image.pointee.format = format(channels: header.channels)
        guard png_image_finish_read(image, nil, out.baseAddress, 0, nil) != 0 else {
            throw MedSynthError.io("cannot read PNG '\(path)': \(message(image.pointee))")
        }
        return header
    }

    public static func read(_ path: String) throws -> PNGImage {
        let file = try pinnedFile(path)
        defer { file.deallocate() }
        return try decode(UnsafeRawBufferPointer(file), name: path)
    }

    /// Decodes a whole PNG held in memory; `name` stands for the file in error messages.
    public static func decode(_ bytes: UnsafeRawBufferPointer, name: String) throws -> PNGImage {
        let header = try checkedHeader(bytes, path: name)
        var samples = [UInt16](repeating: 0, count: header.sampleCount)
        if header.bitDepth == 16 {
            _ = try samples.withUnsafeMutableBytes { try decode(bytes, path: name, into: $0) }
        } else {
            var eight = [UInt8](repeating: 0, count: header.sampleCount)
            _ = try eight.withUnsafeMutableBytes { try decode(bytes, path: name, into: $0) }
            for i in 0..<eight.count { samples[i] = UInt16(eight[i]) }
        }
        return PNGImage(width: header.width, height: header.height, channels: header.channels, bitDepth: header.bitDepth, samples: samples)
    }

    /// Encodes `image` and writes it atomically to `path`.
    public static func write(_ image: PNGImage, to path: String) throws {
        try validate(image)
        if image.bitDepth == 16 {
            try image.samples.withUnsafeBytes {
                try write(samples: $0, width: image.width, height: image.height, channels: image.channels, bitDepth: 16, to: path)
            }
        } else {
            let eight = image.samples.map { UInt8($0) }
            try eight.withUnsafeBytes {
                try write(samples: $0, width: image.width, height: image.height, channels: image.channels, bitDepth: 8, to: path)
            }
        }
    }

    /// Encodes samples held in memory (UInt8 for 8-bit, native-endian UInt16 for 16-bit,
    /// [height, width, channels]) and writes them atomically to `path`.
    public static func write(samples: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int, bitDepth: Int,
                             to path: String) throws {
        try require((1...4).contains(channels), "PNG images have 1 to 4 channels, got \(channels)")
        try require(bitDepth == 8 || bitDepth == 16, "PNG bit depth must be 8 or 16, got \(bitDepth)")
        try require(width >= 1 && height >= 1 && width <= maxSide && height <= maxSide,
                    "PNG size must be between 1 and \(maxSide) pixels per side, got \(width)x\(height)")
        let bytes = width * height * channels * bitDepth / 8
        try require(samples.count == bytes && samples.baseAddress != nil, "\(width)x\(height)x\(channels) \(bitDepth)-bit samples need \(bytes) bytes, got \(samples.count)")
        if bitDepth == 16 {
            var out: UnsafeMutablePointer<UInt8>? = nil
            var size = 0
            var err = [CChar](repeating: 0, count: 256)
            guard cpng_write16(samples.baseAddress!.assumingMemoryBound(to: UInt16.self), UInt32(width), UInt32(height), Int32(channels),
                               &out, &size, &err, err.count) == 0, let out else {
                throw MedSynthError.io("cannot encode PNG '\(path)': \(String(cString: err))")
            }
            defer { cpng_free(out) }
            try Files.writeAtomically(path, [UnsafeRawBufferPointer(start: out, count: size)])
            return
        }
        let png = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        png.initialize(to: png_image())
        defer { png_image_free(png); png.deallocate() }
        png.pointee.version = UInt32(PNG_IMAGE_VERSION)
        png.pointee.width = UInt32(width)
        png.pointee.height = UInt32(height)
        png.pointee.format = format(channels: channels)
        // first call sizes the output, second fills it
        var size = 0
        guard png_image_write_to_memory(png, nil, &size, 0, samples.baseAddress, 0, nil) != 0 else {
            throw MedSynthError.io("cannot encode PNG '\(path)': \(message(png.pointee))")
        }
        guard let encoded = malloc(max(size, 1)) else { throw MedSynthError.outOfMemory("out of memory encoding PNG '\(path)' (\(size) bytes)") }
        defer { free(encoded) }
        guard png_image_write_to_memory(png, encoded, &size, 0, samples.baseAddress, 0, nil) != 0 else {
            throw MedSynthError.io("cannot encode PNG '\(path)': \(message(png.pointee))")
        }
        try Files.writeAtomically(path, [UnsafeRawBufferPointer(start: encoded, count: size)])
    }

    package static func validate(_ image: PNGImage) throws {
        try require((1...4).contains(image.channels), "PNG images have 1 to 4 channels, got \(image.channels)")
        try require(image.bitDepth == 8 || image.bitDepth == 16, "PNG bit depth must be 8 or 16, got \(image.bitDepth)")
        try require(image.width >= 1 && image.height >= 1 && image.width <= maxSide && image.height <= maxSide,
                    "PNG size must be between 1 and \(maxSide) pixels per side, got \(image.width)x\(image.height)")
        try require(image.samples.count == image.width * image.height * image.channels,
                    "PNG sample count \(image.samples.count) does not match \(image.width)x\(image.height)x\(image.channels)")
        if image.bitDepth == 8 {
            try require(image.samples.allSatisfy { $0 <= 255 }, "8-bit PNG samples must be 0...255")
        }
    }
}
