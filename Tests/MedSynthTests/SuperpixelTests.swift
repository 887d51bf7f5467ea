// Superpixels (Explain/): numpy's generator reproduced for quickshift's tie-break noise (known
// answers from numpy 2.4), Lab as scikit-image's rgb2lab (known answers from scikit-image 0.26),
// and the invariants every segmentation keeps: labels 0..<K, every value used, every pixel
// covered, the same result on every run, SLIC segments connected when asked. Agreement with
// scikit-image's own labels is tested from Python (python/tests/test_segmentation.py).

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

/// A 32x40 RGB test image: a smooth colour gradient, a disc, and a flat black band.
private func testImage(height: Int = 32, width: Int = 40) -> [Double] {
    var pixels = [Double](repeating: 0, count: height * width * 3)
    for y in 0..<height {
        for x in 0..<width {
            let p = (y * width + x) * 3
            let inDisc = (y - 14) * (y - 14) + (x - 24) * (x - 24) < 49
            if y >= height - 6 { continue }   // flat black: ties only the noise can break
            pixels[p] = inDisc ? 0.9 : Double(x) / Double(width)
            pixels[p + 1] = inDisc ? 0.2 : Double(y) / Double(height)
            pixels[p + 2] = inDisc ? 0.1 : 0.5 + 0.4 * sin(Double(x) / 5) * cos(Double(y) / 4)
        }
    }
    return pixels
}

private func segment(_ pixels: [Double], height: Int = 32, width: Int = 40, channels: Int = 3,
                     _ body: (SegmentationInput) throws -> Superpixels) throws -> Superpixels {
    try pixels.withUnsafeBufferPointer { try body(try SegmentationInput(pixels: $0.baseAddress!, height: height, width: width, channels: channels)) }
}

/// Labels 0..<count, every value used, one per pixel.
private func expectValid(_ s: Superpixels, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(s.labels.count == s.height * s.width, sourceLocation: sourceLocation)
    #expect(Set(s.labels) == Set((0..<Int32(s.count)).map { $0 }), sourceLocation: sourceLocation)
}

/// Number of 4-connected components of each label.
private func componentsPerLabel(_ s: Superpixels) -> [Int] {
    var seen = [Bool](repeating: false, count: s.labels.count)
    var components = [Int](repeating: 0, count: s.count)
    for start in s.labels.indices where !seen[start] {
        components[Int(s.labels[start])] += 1
        var stack = [start]
        seen[start] = true
        while let i = stack.popLast() {
            let (y, x) = (i / s.width, i % s.width)
            for (yy, xx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)] where yy >= 0 && yy < s.height && xx >= 0 && xx < s.width {
                let j = yy * s.width + xx
                if !seen[j] && s.labels[j] == s.labels[i] { seen[j] = true; stack.append(j) }
            }
        }
    }
    return components
}

@Suite struct SuperpixelTests {
    // MARK: - numpy's generator

    @Test func seedSequenceAndPCG64MatchNumpy() {
        // np.random.SeedSequence(0).generate_state(4, np.uint64) and SeedSequence(2**40 + 7)
        #expect(NumpyGenerator.seedSequenceState(entropy: 0, words64: 4)
                == [15_793_235_383_387_715_774, 12_390_638_538_380_655_177, 2_361_836_109_651_742_017, 3_188_717_715_514_472_916])
        #expect(NumpyGenerator.seedSequenceState(entropy: (1 << 40) + 7, words64: 4)
                == [974_592_680_304_384_533, 11_164_224_302_760_304_993, 11_068_753_026_110_695_683, 4_650_291_916_314_288_918])
        // np.random.PCG64(42).random_raw(3), PCG64(12345).random_raw(3)
        var g = NumpyGenerator(seed: 42)
        #expect([g.nextUInt64(), g.nextUInt64(), g.nextUInt64()] == [14_276_969_152_011_380_360, 8_095_878_257_575_067_585, 15_838_336_090_824_644_132])
        var h = NumpyGenerator(seed: 12345)
        #expect([h.nextUInt64(), h.nextUInt64(), h.nextUInt64()] == [4_193_609_425_186_963_869, 5_843_160_025_838_961_886, 14_708_796_524_633_321_433])
    }

    @Test func normalDrawsMatchNumpyDefaultRng() {
        // np.random.default_rng(42).normal(scale=1e-5, size=6): quickshift's noise
        let expected = [3.0471707975443136e-06, -1.0399841062404956e-05, 7.5045119580645730e-06,
                        9.4056471639121396e-06, -1.9510351886538365e-05, -1.3021795068623182e-05]
        var g = NumpyGenerator(seed: 42)
        for (a, b) in zip(g.normal(scale: 1e-5, count: 6), expected) { #expect(abs(a - b) <= 1e-13 * abs(b)) }
        var h = NumpyGenerator(seed: 0)   // default_rng(0).normal(size=3)
        for (a, b) in zip(h.normal(scale: 1, count: 3), [0.1257302210933933, -0.1321048632913019, 0.6404226504432821]) {
            #expect(abs(a - b) <= 1e-13 * abs(b))
        }
    }

    @Test func zigguratNormalHasUnitMomentsAndReachesTheTail() {
        var g = NumpyGenerator(seed: 3)
        let n = 200_000
        let draws = g.normal(scale: 1, count: n)
        let mean = draws.reduce(0, +) / Double(n)
        let variance = draws.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        #expect(abs(mean) < 5 / Double(n).squareRoot())
        #expect(abs(variance - 1) < 0.02)
        let tail = draws.filter { abs($0) > Ziggurat.r }.count   // expected n·P(|z| > 3.654) ≈ 52
        #expect(tail > 20 && tail < 100)
    }

    // MARK: - Lab

    @Test func labMatchesScikitImage() {
        // skimage.color.rgb2lab of red, green, blue, white, mid gray, a blue
        let cases: [((Double, Double, Double), (Double, Double, Double))] = [
            ((1, 0, 0), (53.240587943744899, 80.092308225692193, 67.202751044428695)),
            ((0, 1, 0), (87.735099488318951, -86.183029744395014, 83.179703175384518)),
            ((0, 0, 1), (32.295672565013511, 79.185590911765559, -107.85730020669489)),
            ((1, 1, 1), (100, -2.4549378620508655e-03, 4.6534211540549819e-03)),
            ((0.5, 0.5, 0.5), (53.388964741114322, -1.4684965237710124e-03, 2.7835868653847129e-03)),
            ((0.02, 0.5, 0.9), (52.974617217566646, 9.3379939056971732, -59.553991928101780)),
        ]
        for (rgb, lab) in cases {
            let (l, a, b) = CIELab.lab(rgb.0, rgb.1, rgb.2)
            #expect(abs(l - lab.0) < 1e-11 && abs(a - lab.1) < 1e-11 && abs(b - lab.2) < 1e-11, "\(rgb): \((l, a, b)) vs \(lab)")
        }
    }

    // MARK: - quickshift

    @Test func quickshiftCoversTheImageWithConsecutiveLabelsAndRepeats() throws {
        var options = QuickshiftOptions()
        options.kernelSize = 2
        options.maxDist = 6
        let image = testImage()
        let a = try segment(image) { try Quickshift.segment($0, options: options) }
        let b = try segment(image) { try Quickshift.segment($0, options: options) }
        expectValid(a)
        #expect(a.count > 5)
        #expect(a.labels == b.labels)
        // another tie-break seed splits the flat band differently, not the textured part
        options.seed = 7
        let c = try segment(image) { try Quickshift.segment($0, options: options) }
        expectValid(c)
        #expect(c.labels != a.labels)
    }

    @Test func quickshiftGrayEqualsTheRGBGrayImage() throws {
        let rgb = testImage()
        let gray = stride(from: 0, to: rgb.count, by: 3).map { rgb[$0 + 1] }
        let asRGB = gray.flatMap { [$0, $0, $0] }
        var options = QuickshiftOptions()
        options.kernelSize = 2
        options.maxDist = 6
        let g = try segment(gray, channels: 1) { try Quickshift.segment($0, options: options) }
        let r = try segment(asRGB) { try Quickshift.segment($0, options: options) }
        #expect(g.labels == r.labels)
    }

    @Test func quickshiftRejectsBadOptions() {
        expectInvalidArgument("kernel_size") { _ = try QuickshiftOptions(json: try JSON.parse(#"{"kernel_size": 0}"#)) }
        expectInvalidArgument("unknown quickshift option", "kernelsize") { _ = try QuickshiftOptions(json: try JSON.parse(#"{"kernelsize": 3}"#)) }
        expectInvalidArgument("NaN") {
            _ = try segment([.nan] + [Double](repeating: 0, count: 32 * 40 * 3 - 1)) { try Quickshift.segment($0) }
        }
    }

    // MARK: - SLIC

    @Test func slicSegmentsAreConnectedAndNumberedWhenAsked() throws {
        for (segments, compactness) in [(20, 10.0), (60, 1.0), (150, 30.0)] {
            var options = SLICOptions()
            options.segments = segments
            options.compactness = compactness
            let s = try segment(testImage()) { try SLIC.segment($0, options: options) }
            expectValid(s)
            #expect(componentsPerLabel(s).allSatisfy { $0 == 1 }, "segments \(segments), compactness \(compactness)")
            let again = try segment(testImage()) { try SLIC.segment($0, options: options) }
            #expect(again.labels == s.labels)
        }
    }

    @Test func slicGridFollowsScikitImage() {
        // skimage.util.regular_grid((1, 64, 64), 100): slice(3, None, 6) on both axes
        let g = SLIC.regularGrid(height: 64, width: 64, points: 100)
        #expect(g.start == (3, 3) && g.step == (6, 6))
        // (1, 40, 120), 30: steps sqrt(4800/30) = 12.65 → start 6, step 13
        let h = SLIC.regularGrid(height: 40, width: 120, points: 30)
        #expect(h.start == (6, 6) && h.step == (13, 13))
        // more points than pixels: every pixel
        let all = SLIC.regularGrid(height: 4, width: 4, points: 100)
        #expect(all.start == (0, 0) && all.step == (1, 1))
    }

    @Test func slicWithoutConnectivityStillNumbersConsecutively() throws {
        var options = SLICOptions()
        options.enforceConnectivity = false
        options.segments = 40
        let s = try segment(testImage()) { try SLIC.segment($0, options: options) }
        expectValid(s)
    }

    @Test func superpixelsRejectLabelsWithGapsOrOutOfRange() {
        expectInvalidArgument("every value") { _ = try Superpixels(labels: [0, 2, 2, 0], height: 2, width: 2) }
        expectInvalidArgument("0..<4") { _ = try Superpixels(labels: [0, 1, -1, 0], height: 2, width: 2) }
        expectInvalidArgument("needs 4 labels") { _ = try Superpixels(labels: [0, 1, 1], height: 2, width: 2) }
    }
}
