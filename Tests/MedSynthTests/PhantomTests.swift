// The phantom data sets (Data/Phantoms) and the antialiased resize kernel (Kernels/Resize.swift).

import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite(.timeLimit(.minutes(2))) struct PhantomTests {
    /// Runs a generation into fresh buffers: (images, labels, masks).
    private func generate(_ domain: PhantomDomain, counts: [Int], size: Int, seed: UInt64,
                          channelsLast: Bool = true) throws -> ([Float], [Int64], [UInt8]) {
        let n = counts.reduce(0, +), plane = size * size
        var images = [Float](repeating: -1, count: n * domain.channels * plane)
        var labels = [Int64](repeating: -1, count: n)
        var masks = [UInt8](repeating: 7, count: n * plane)
        try images.withUnsafeMutableBufferPointer { x in
            try labels.withUnsafeMutableBufferPointer { y in
                try masks.withUnsafeMutableBufferPointer { m in
                    try Phantoms.generate(domain, counts: counts, size: size, seed: seed, channelsLast: channelsLast,
                                          images: x.baseAddress!, labels: y.baseAddress!, masks: m.baseAddress!)
                }
            }
        }
        return (images, labels, masks)
    }

    @Test(arguments: PhantomDomain.allCases)
    func everyImageIsItsOwnDrawOfSeedClassAndIndex(_ domain: PhantomDomain) throws {
        let size = 24, k = domain.classNames.count, plane = size * size, c = domain.channels
        let counts = (0..<k).map { 2 + $0 % 2 }
        let (images, labels, masks) = try generate(domain, counts: counts, size: size, seed: 5, channelsLast: false)
        #expect(images.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(masks.allSatisfy { $0 <= 1 })
        // draw each image alone, in reverse order, on this thread: the same bytes
        var owners: [(Int, Int)] = []
        for (label, count) in counts.enumerated() { for j in 0..<count { owners.append((label, j)) } }
        let canvas = PhantomCanvas(size: size, channels: c)
        for (i, (label, j)) in owners.enumerated().reversed() {
            #expect(labels[i] == Int64(label))
            canvas.clear()
            domain.render(label: label, canvas: canvas, rng: Phantoms.imageGenerator(seed: 5, label: label, index: j))
            for p in 0..<(c * plane) { #expect(images[i * c * plane + p] == clamp01(canvas.image[p])) }
            for p in 0..<plane { #expect(masks[i * plane + p] == (canvas.mask[p] >= 0.5 ? 1 : 0)) }
        }
        // another seed, other images
        let (other, _, _) = try generate(domain, counts: counts, size: size, seed: 6, channelsLast: false)
        #expect(other != images)
    }

    @Test func channelsLastInterleavesTheSamePlanes() throws {
        let size = 20, plane = size * size
        let (planar, _, _) = try generate(.leukemia, counts: [1, 0, 0, 1], size: size, seed: 1, channelsLast: false)
        let (interleaved, _, _) = try generate(.leukemia, counts: [1, 0, 0, 1], size: size, seed: 1, channelsLast: true)
        for i in 0..<2 {
            for ch in 0..<3 {
                for p in 0..<plane { #expect(planar[(i * 3 + ch) * plane + p] == interleaved[(i * plane + p) * 3 + ch]) }
            }
        }
    }

    @Test func noTumourHasNoMaskAndTumoursHaveOne() throws {
        let size = 48, plane = size * size
        let (_, labels, masks) = try generate(.brainMRI, counts: [4, 4, 4, 4], size: size, seed: 2)
        for (i, label) in labels.enumerated() {
            let marked = masks[(i * plane)..<((i + 1) * plane)].contains(1)
            #expect(marked == (Int(label) != BrainMRIPhantom.noTumour))
        }
    }

    @Test func rejectsBadRequests() {
        let x = UnsafeMutablePointer<Float>.allocate(capacity: 4096)
        let y = UnsafeMutablePointer<Int64>.allocate(capacity: 16)
        defer { x.deallocate(); y.deallocate() }
        for (counts, size) in [([1, 1], 16), ([1, 1, 1, 1], 8), ([1, 1, 1, 1], 2048), ([0, 0, 0, 0], 16), ([-1, 1, 1, 1], 16)] {
            #expect(throws: MedSynthError.self) {
                try Phantoms.generate(.brainMRI, counts: counts, size: size, seed: 0, channelsLast: true, images: x, labels: y, masks: nil)
            }
        }
    }
}

@Suite struct ResizeTests {
    private func resize(_ x: [Float], n: Int = 1, h: Int, w: Int, c: Int = 1, to outH: Int, _ outW: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: n * outH * outW * c)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                ResizeKernel.bilinear(xp.baseAddress!, n: n, h: h, w: w, c: c, outH: outH, outW: outW, y: yp.baseAddress!)
            }
        }
        return y
    }

    @Test func handComputedCases() {
        // 4 -> 2: centres 1 and 3, a triangle of half-width 2: weights (.75, .75, .25) / 1.75
        let down = resize([0, 1, 2, 3], h: 1, w: 4, to: 1, 2)
        #expect(abs(down[0] - 1.25 / 1.75) < 1e-6 && abs(down[1] - 4 / 1.75) < 1e-6)
        // 2 -> 4: bilinear with aligned centres, edges clamped
        let up = resize([0, 1], h: 1, w: 2, to: 1, 4)
        for (a, b) in zip(up, [Float(0), 0.25, 0.75, 1]) { #expect(abs(a - b) < 1e-6) }
        // columns as rows; channels independent
        let column = resize([0, 10, 1, 11, 2, 12, 3, 13], h: 4, w: 1, c: 2, to: 2, 1)
        #expect(abs(column[0] - 1.25 / 1.75) < 1e-6 && abs(column[1] - (10 + 1.25 / 1.75)) < 1e-5)
        #expect(abs(column[2] - 4 / 1.75) < 1e-6 && abs(column[3] - (10 + 4 / 1.75)) < 1e-5)
    }

    @Test func weightsSumToOneAndSizesAgree() {
        for (inSize, outSize) in [(7, 3), (3, 7), (128, 64), (5, 5), (100, 1), (1, 9)] {
            let taps = ResizeKernel.taps(from: inSize, to: outSize)
            for i in 0..<outSize {
                let sum = (0..<taps.count[i]).reduce(Float(0)) { $0 + taps.weights[i * taps.taps + $1] }
                #expect(abs(sum - 1) < 1e-5)
                #expect(taps.start[i] >= 0 && taps.start[i] + taps.count[i] <= inSize)
            }
        }
        // same size: identity; constants stay constant
        let x = (0..<30).map { Float($0) * 0.37 }
        #expect(resize(x, n: 2, h: 3, w: 5, to: 3, 5) == x)
        #expect(resize([Float](repeating: 0.3, count: 63), h: 7, w: 9, to: 4, 13).allSatisfy { abs($0 - 0.3) < 1e-6 })
    }
}
