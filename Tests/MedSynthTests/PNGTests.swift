// PNG reading and writing (IO/PNG.swift): round trips at 8 and 16 bits for 1 to 4 channels, a
// hand-assembled 16-bit file, errors that name the file, invalid images refused before writing.

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

// MARK: - a PNG encoder by hand (stored deflate blocks), independent of libpng

/// CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as PNG chunks use.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// Adler-32, the zlib stream checksum.
func adler32(_ bytes: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    for x in bytes { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
    return b << 16 | a
}

private func bigEndian32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// A zlib stream of one stored (uncompressed) deflate block: 0x78 0x01 (deflate, 32K window, no
/// dictionary; 0x7801 % 31 == 0), block header 0x01 (final, type 00), LEN and ~LEN little-endian,
/// the bytes, then Adler-32 big-endian.
func zlibStored(_ data: [UInt8]) -> [UInt8] {
    precondition(data.count <= 65535)
    let len = UInt16(data.count)
    return [0x78, 0x01, 0x01, UInt8(len & 0xFF), UInt8(len >> 8), UInt8(~len & 0xFF), UInt8(~len >> 8)] + data + bigEndian32(adler32(data))
}

/// A chunk: length, type, data, CRC over type and data.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typed = Array(type.utf8) + data
    return bigEndian32(UInt32(data.count)) + typed + bigEndian32(crc32(typed))
}

/// A non-interlaced PNG from unfiltered rows (each row gets filter byte 0).
func handMadePNG(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]]) -> [UInt8] {
    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    let ihdr = bigEndian32(UInt32(width)) + bigEndian32(UInt32(height)) + [bitDepth, colorType, 0, 0, 0]
    let raw: [UInt8] = rows.flatMap { [UInt8(0)] + $0 }
    return signature + pngChunk("IHDR", ihdr) + pngChunk("IDAT", zlibStored(raw)) + pngChunk("IEND", [])
}

@Suite struct PNGTests {
    /// Deterministic samples covering the range, with both extremes present.
    static func samples(count: Int, channels: Int, bitDepth: Int, opaqueAlpha: Bool) -> [UInt16] {
        let top = bitDepth == 8 ? 255 : 65535
        return (0..<count).map { i in
            if opaqueAlpha && (channels == 2 || channels == 4) && i % channels == channels - 1 { return UInt16(top) }
            switch i % 7 {
            case 0: return 0
            case 1: return UInt16(top)
            default: return UInt16((i * (bitDepth == 8 ? 37 : 4099) + 11) % (top + 1))
            }
        }
    }

    // MARK: - round trips

    @Test(arguments: [1, 2, 3, 4])
    func eightBitRoundTripIsExact(channels: Int) throws {
        try withTemporaryDirectory { dir in
            let (w, h) = (5, 3)   // odd width: rows are not a multiple of 4 bytes
            // 8-bit alpha is stored straight (not premultiplied), so any alpha, 0 included, is exact
            let image = PNGImage(width: w, height: h, channels: channels, bitDepth: 8,
                                 samples: Self.samples(count: w * h * channels, channels: channels, bitDepth: 8, opaqueAlpha: false))
            let path = dir + "/img.png"
            try PNG.write(image, to: path)
            let back = try PNG.read(path)
            #expect(back.width == w && back.height == h && back.channels == channels && back.bitDepth == 8)
            #expect(back.samples == image.samples)
            let probe = try PNG.probe(path)
            #expect(probe.width == w && probe.height == h && probe.channels == channels && probe.bitDepth == 8)
            // the file really is 8-bit with the PNG colour type for this channel count
            let bytes = try Files.read(path)
            #expect(Array(bytes[16..<24]) == bigEndian32(UInt32(w)) + bigEndian32(UInt32(h)))
            #expect(bytes[24] == 8)
            #expect(bytes[25] == [0, 4, 2, 6][channels - 1])   // gray, gray+alpha, RGB, RGBA
        }
    }

    /// 16-bit images go through libpng's classic API (CPNGShim): the stored samples, alpha
    /// included, come back exactly, translucent and transparent pixels too.
    @Test(arguments: [1, 2, 3, 4])
    func sixteenBitRoundTripIsExact(channels: Int) throws {
        try withTemporaryDirectory { dir in
            let (w, h) = (5, 3)
            let image = PNGImage(width: w, height: h, channels: channels, bitDepth: 16,
                                 samples: Self.samples(count: w * h * channels, channels: channels, bitDepth: 16, opaqueAlpha: false))
            #expect(image.samples.contains(0) && image.samples.contains(65535) && image.samples.contains { $0 != 0 && $0 != 65535 })
            let path = dir + "/img16.png"
            try PNG.write(image, to: path)
            let back = try PNG.read(path)
            #expect(back.width == w && back.height == h && back.channels == channels && back.bitDepth == 16)
            #expect(back.samples == image.samples)
            let bytes = try Files.read(path)
            #expect(bytes[24] == 16)
            #expect(bytes[25] == [0, 4, 2, 6][channels - 1])
        }
    }

    @Test func sixteenBitTranslucentAlphaIsExact() throws {
        try withTemporaryDirectory { dir in
            // gray+alpha pixels (value, alpha): opaque, half, nearly transparent, transparent; the
            // simplified API's premultiplication lost up to 130 units of these on a round trip
            let samples: [UInt16] = [40000, 65535, 40000, 32768, 40000, 1, 40000, 0, 65535, 3, 12345, 65534]
            let image = PNGImage(width: 6, height: 1, channels: 2, bitDepth: 16, samples: samples)
            let path = dir + "/ga16.png"
            try PNG.write(image, to: path)
            #expect(try PNG.read(path).samples == samples)
        }
    }

    @Test func readsAHandAssembled16BitRGBAPNGExactly() throws {
        try withTemporaryDirectory { dir in
            // 2×1 RGBA, big-endian: (0x1234, 0x5678, 0x9ABC, 0x0001), (0xFFFF, 0x0000, 0x8000, 0x7FFF)
            let row: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0x00, 0x01, 0xFF, 0xFF, 0x00, 0x00, 0x80, 0x00, 0x7F, 0xFF]
            let path = dir + "/rgba16.png"
            try Files.writeAtomically(path, bytes: handMadePNG(width: 2, height: 1, bitDepth: 16, colorType: 6, rows: [row]))
            let image = try PNG.read(path)
            #expect(image.channels == 4 && image.bitDepth == 16)
            #expect(image.samples == [0x1234, 0x5678, 0x9ABC, 0x0001, 0xFFFF, 0x0000, 0x8000, 0x7FFF])
        }
    }

    // MARK: - hostile files

    /// A PNG of a few dozen bytes that declares 65536×65536 RGBA pixels (16 GiB decoded):
    /// refused by the pixel limit before anything of its size is allocated.
    @Test func decompressionBombIsRefusedBeforeAllocating() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/bomb.png"
            // only the header matters: the data (one short row here) is never reached
            try Files.writeAtomically(path, bytes: handMadePNG(width: 65536, height: 65536, bitDepth: 8, colorType: 6,
                                                               rows: [[0, 0, 0, 0]]))
            expectIOError("'\(path)'", "65536x65536", "set_max_image_pixels") { _ = try PNG.probe(path) }
            expectIOError("'\(path)'", "limit") { _ = try PNG.read(path) }
        }
    }

    @Test func pixelLimitIsAdjustable() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/small.png"
            try PNG.write(PNGImage(width: 4, height: 3, channels: 1, bitDepth: 8, samples: [UInt16](repeating: 9, count: 12)), to: path)
            let previous = try PNG.maxPixels()
            defer { try? PNG.setMaxPixels(previous) }
            #expect(previous == PNG.defaultMaxPixels || getenv(PNG.maxPixelsVariable) != nil)
            try PNG.setMaxPixels(11)
            expectIOError("12 pixels", "limit of 11") { _ = try PNG.read(path) }
            try PNG.setMaxPixels(12)
            #expect(try PNG.read(path).samples.count == 12)
            try PNG.setMaxPixels(0)   // no limit
            #expect(try PNG.probe(path).width == 4)
            expectInvalidArgument("non-negative") { try PNG.setMaxPixels(-1) }
        }
    }

    @Test func nonRegularFilesAreRefusedWithoutBlocking() throws {
        try withTemporaryDirectory { dir in
            let fifo = dir + "/pipe.png"
            #expect(mkfifo(fifo, 0o600) == 0)
            expectIOError("'\(fifo)' is not a regular file", "FIFO") { _ = try PNG.read(fifo) }
            expectIOError("'\(fifo)' is not a regular file") { _ = try SafetensorsFile.read(fifo) }
            expectIOError("'\(fifo)' is not a regular file") { _ = try SafetensorsHeader.read(fifo) }
            expectIOError("'\(dir)' is not a regular file", "directory") { _ = try Files.read(dir) }
            // writing over a FIFO would replace it: refused too
            expectIOError("'\(fifo)'", "FIFO") { try Files.writeAtomically(fifo, bytes: [1]) }
            unlink(fifo)
        }
    }

    // MARK: - a file assembled by hand

    @Test func checksumsOfTheHandEncoder() {
        // standard check values: CRC-32("123456789") = 0xCBF43926, Adler-32("Wikipedia") = 0x11E60398
        #expect(crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        // CRC of the IEND chunk type, which every PNG ends with: AE 42 60 82
        #expect(crc32(Array("IEND".utf8)) == 0xAE42_6082)
    }

    @Test func readsAHandAssembled16BitGrayPNG() throws {
        try withTemporaryDirectory { dir in
            // 3×2, 16-bit gray, big-endian samples: row 0 = 0x0000 0x1234 0xFFFF, row 1 = 0x8001 0x00FF 0xFF00.
            // No gAMA/sRGB chunk: libpng treats 16-bit data as linear, so the stored values come back.
            let rows: [[UInt8]] = [[0x00, 0x00, 0x12, 0x34, 0xFF, 0xFF], [0x80, 0x01, 0x00, 0xFF, 0xFF, 0x00]]
            let path = dir + "/hand16.png"
            try Files.writeAtomically(path, bytes: handMadePNG(width: 3, height: 2, bitDepth: 16, colorType: 0, rows: rows))
            let image = try PNG.read(path)
            #expect(image.width == 3 && image.height == 2 && image.channels == 1 && image.bitDepth == 16)
            #expect(image.samples == [0x0000, 0x1234, 0xFFFF, 0x8001, 0x00FF, 0xFF00])
        }
    }

    @Test func readsHandAssembled8BitPNGs() throws {
        try withTemporaryDirectory { dir in
            // 2×2 8-bit gray: 0, 7 / 128, 255
            let gray = dir + "/gray8.png"
            try Files.writeAtomically(gray, bytes: handMadePNG(width: 2, height: 2, bitDepth: 8, colorType: 0, rows: [[0, 7], [128, 255]]))
            #expect(try PNG.read(gray).samples == [0, 7, 128, 255])
            // 2×1 RGBA: (1, 2, 3, 255), (250, 251, 252, 0)
            let rgba = dir + "/rgba8.png"
            try Files.writeAtomically(rgba, bytes: handMadePNG(width: 2, height: 1, bitDepth: 8, colorType: 6,
                                                               rows: [[1, 2, 3, 255, 250, 251, 252, 0]]))
            let image = try PNG.read(rgba)
            #expect(image.channels == 4 && image.bitDepth == 8)
            #expect(image.samples == [1, 2, 3, 255, 250, 251, 252, 0])
        }
    }

    // MARK: - unreadable files

    @Test func unreadableFilesThrowErrorsNamingTheFile() throws {
        try withTemporaryDirectory { dir in
            let missing = dir + "/missing.png"
            expectIOError("cannot open '\(missing)'") { _ = try PNG.read(missing) }
            expectIOError("cannot open '\(missing)'") { _ = try PNG.probe(missing) }

            let empty = dir + "/empty.png"
            try Files.writeAtomically(empty, bytes: [])
            expectIOError("'\(empty)' is not a PNG file") { _ = try PNG.read(empty) }

            let text = dir + "/text.png"
            try Files.writeAtomically(text, bytes: Array("this is not an image at all".utf8))
            expectIOError("'\(text)' is not a PNG file") { _ = try PNG.read(text) }
            expectIOError("'\(text)' is not a PNG file") { _ = try PNG.probe(text) }

            let good = handMadePNG(width: 3, height: 2, bitDepth: 16, colorType: 0,
                                   rows: [[0, 0, 0x12, 0x34, 0xFF, 0xFF], [0x80, 0x01, 0, 0xFF, 0xFF, 0]])
            // the signature alone, and the file cut inside the image data
            for (name, bytes) in [("sig.png", Array(good.prefix(8))), ("cut-header.png", Array(good.prefix(20))),
                                  ("cut-data.png", Array(good.prefix(good.count - 20)))] {
                let path = dir + "/" + name
                try Files.writeAtomically(path, bytes: bytes)
                expectIOError("cannot read PNG '\(path)'") { _ = try PNG.read(path) }
            }
            // a flipped bit in the pixel data (the IDAT CRC no longer matches)
            var garbled = good
            garbled[8 + 25 + 8 + 9] ^= 0x10    // inside IDAT's data: after signature, IHDR (25 bytes), IDAT length+type
            let g1 = dir + "/garbled-data.png"
            try Files.writeAtomically(g1, bytes: garbled)
            expectIOError("cannot read PNG '\(g1)'") { _ = try PNG.read(g1) }
            // a corrupt header chunk
            var badHeader = good
            badHeader[16 + 3] = 0   // width 0 (and the CRC no longer matches)
            let g2 = dir + "/garbled-header.png"
            try Files.writeAtomically(g2, bytes: badHeader)
            expectIOError("'\(g2)'") { _ = try PNG.read(g2) }
            expectIOError("'\(g2)'") { _ = try PNG.probe(g2) }
        }
    }

    // MARK: - invalid images

    @Test func invalidImagesAreNotWritten() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/out.png"
            func image(w: Int = 2, h: Int = 2, c: Int = 1, depth: Int = 8, samples: [UInt16]? = nil) -> PNGImage {
                PNGImage(width: w, height: h, channels: c, bitDepth: depth, samples: samples ?? [UInt16](repeating: 1, count: w * h * c))
            }
            expectInvalidArgument("1 to 4 channels, got 0") { try PNG.write(image(c: 0, samples: []), to: path) }
            expectInvalidArgument("1 to 4 channels, got 5") { try PNG.write(image(c: 5), to: path) }
            expectInvalidArgument("bit depth must be 8 or 16, got 12") { try PNG.write(image(depth: 12), to: path) }
            expectInvalidArgument("between 1 and 65536", "0x2") { try PNG.write(image(w: 0, samples: []), to: path) }
            expectInvalidArgument("between 1 and 65536") { try PNG.write(image(w: 1 << 16 + 1, h: 1, samples: []), to: path) }
            expectInvalidArgument("sample count 3 does not match 2x2x1") { try PNG.write(image(samples: [1, 2, 3]), to: path) }
            expectInvalidArgument("sample count 5 does not match 2x2x1") { try PNG.write(image(samples: [1, 2, 3, 4, 5]), to: path) }
            expectInvalidArgument("8-bit PNG samples must be 0...255") { try PNG.write(image(samples: [0, 255, 256, 1]), to: path) }
            // nothing was written by any of these
            #expect(!Files.exists(path))
            // 16-bit accepts the full range
            try PNG.write(image(depth: 16, samples: [0, 256, 65535, 1]), to: path)
            #expect(try PNG.read(path).samples == [0, 256, 65535, 1])
            // an unwritable destination names the path
            let nowhere = dir + "/no/such/dir/out.png"
            expectIOError("cannot write '\(nowhere)'") { try PNG.write(image(), to: nowhere) }
        }
    }
}
