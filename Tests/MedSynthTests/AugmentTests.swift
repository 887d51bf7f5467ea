import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct AugmentTests {
    /// A 2-channel 3×4 image whose pixels are all different: value = 100·c + 10·y + x.
    static let h = 3, w = 4, c = 2
    static let image: [Float] = (0..<(c * h * w)).map { i in Float(100 * (i / (h * w)) + 10 * ((i % (h * w)) / w) + i % w) }

    func apply(flipH: Bool = false, flipV: Bool = false, dx: Float = 0, dy: Float = 0, degrees: Float = 0,
               scaleX: Float = 1, scaleY: Float = 1,
               _ input: [Float] = image, height: Int = h, width: Int = w, channels: Int = c) -> [Float] {
        var out = [Float](repeating: -1, count: input.count)
        input.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                AugmentKernel.apply(src.baseAddress!, dst.baseAddress!, channels: channels, height: height, width: width,
                                    flipH: flipH, flipV: flipV, shiftX: dx, shiftY: dy, degrees: degrees,
                                    scaleX: scaleX, scaleY: scaleY)
            }
        }
        return out
    }

    func at(_ a: [Float], _ ch: Int, _ y: Int, _ x: Int, width: Int = w, height: Int = h) -> Float { a[ch * height * width + y * width + x] }

    @Test func identityLeavesTheImage() {
        #expect(apply() == Self.image)
    }

    @Test func flipsMirror() {
        let hf = apply(flipH: true), vf = apply(flipV: true)
        for ch in 0..<Self.c { for y in 0..<Self.h { for x in 0..<Self.w {
            #expect(at(hf, ch, y, x) == at(Self.image, ch, y, Self.w - 1 - x))
            #expect(at(vf, ch, y, x) == at(Self.image, ch, Self.h - 1 - y, x))
        }}}
    }

    @Test func integerShiftMovesPixelsAndExtendsTheEdge() {
        // shifted right by one: output x takes input x − 1; column 0 repeats the edge
        let s = apply(dx: 1)
        for y in 0..<Self.h {
            #expect(at(s, 0, y, 0) == at(Self.image, 0, y, 0))
            for x in 1..<Self.w { #expect(at(s, 0, y, x) == at(Self.image, 0, y, x - 1)) }
        }
        // half a pixel down: the average of two rows (bilinear)
        let half = apply(dy: 0.5)
        #expect(abs(at(half, 1, 1, 2) - (at(Self.image, 1, 0, 2) + at(Self.image, 1, 1, 2)) / 2) < 1e-4)
    }

    @Test func rotationsOfASquareImage() {
        let n = 5
        let square: [Float] = (0..<(n * n)).map { Float($0) }
        let r180 = apply(degrees: 180, square, height: n, width: n, channels: 1)
        let flipped = apply(flipH: true, flipV: true, square, height: n, width: n, channels: 1)
        for i in 0..<(n * n) { #expect(abs(r180[i] - flipped[i]) < 1e-3) }
        // 90°: the sample position of output (x, y) is (y', x') rotated about the centre (2, 2)
        let r90 = apply(degrees: 90, square, height: n, width: n, channels: 1)
        for y in 0..<n { for x in 0..<n {
            let sx = Float(y - 2) + 2, sy = -Float(x - 2) + 2   // c = 0, s = 1 in AugmentKernel's inverse map
            #expect(abs(r90[y * n + x] - square[Int(sy.rounded()) * n + Int(sx.rounded())]) < 1e-3)
        }}
        // the centre never moves
        #expect(abs(apply(degrees: 37, square, height: n, width: n, channels: 1)[2 * n + 2] - square[2 * n + 2]) < 1e-4)
    }

    @Test func zoomSamplesACentredCrop() {
        // a 5x5 ramp zoomed by 2 (scale 0.5): output x samples source 2 + (x − 2)/2
        let n = 5
        let ramp: [Float] = (0..<(n * n)).map { Float($0 % n) }
        let z = apply(scaleX: 0.5, scaleY: 0.5, ramp, height: n, width: n, channels: 1)
        for y in 0..<n { for x in 0..<n { #expect(abs(z[y * n + x] - (2 + Float(x - 2) / 2)) < 1e-5) } }
        // shifted by one pixel: the crop moves, the zoom stays
        let moved = apply(dx: -1, scaleX: 0.5, scaleY: 0.5, ramp, height: n, width: n, channels: 1)
        #expect(abs(moved[2 * n + 2] - 3) < 1e-5)
    }

    @Test func brightnessAndContrastFollowColorJitter() {
        var x: [Float] = [0.1, 0.2, 0.3, 0.6]
        x.withUnsafeMutableBufferPointer { AugmentKernel.jitter($0.baseAddress!, count: 4, brightness: 2, contrast: 0.5) }
        // ×2 → [0.2, 0.4, 0.6, 1.2], mean 0.6; (x − 0.6)·0.5 + 0.6
        let expected: [Float] = [0.4, 0.5, 0.6, 0.9]
        for i in 0..<4 { #expect(abs(x[i] - expected[i]) < 1e-6) }
    }

    @Test func augmentationDrawsAreReproducibleAndOffByDefault() {
        var a = Augmentation()
        #expect(a.isIdentity)
        a.rotate = 20; a.cropScale = 0.6; a.brightness = 0.3; a.contrast = 0.3; a.horizontalFlip = true
        let n = 16
        let source: [Float] = (0..<(2 * n * n)).map { Float(($0 * 7919) % 101) / 100 }
        func run(seed: UInt64) -> [Float] {
            var image = source
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: image.count)
            defer { scratch.deallocate() }
            image.withUnsafeMutableBufferPointer {
                a.apply($0.baseAddress!, channels: 2, height: n, width: n, rng: RandomGenerator(seed: seed), scratch: scratch)
            }
            return image
        }
        #expect(run(seed: 3) == run(seed: 3))
        #expect(run(seed: 3) != run(seed: 4))
        #expect(run(seed: 3) != source)
    }
}
