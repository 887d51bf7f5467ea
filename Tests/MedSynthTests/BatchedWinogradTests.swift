import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Winograd F(4×4, 3×3) across the batch (small maps) against the 7-loop reference: partial tiles,
/// empty lanes, output-channel blocks of 8/4/2/1, several passes with a partial last one.
@Suite struct BatchedWinogradTests {
    struct Case {
        var n: Int, cin: Int, cout: Int, h: Int, w: Int
        var passFloats = 4_000_000
    }

    static let cases: [Case] = [
        Case(n: 20, cin: 16, cout: 19, h: 8, w: 8),           // 12 empty lanes; blocks of 8, 8, 2, 1
        Case(n: 16, cin: 17, cout: 16, h: 4, w: 4),           // one tile per image
        Case(n: 40, cin: 24, cout: 32, h: 7, w: 7),           // tiles past the map's edge
        Case(n: 48, cin: 16, cout: 16, h: 8, w: 12),          // not square
        Case(n: 70, cin: 16, cout: 20, h: 4, w: 4, passFloats: 40_000),   // passes of 32, 32 and 6 images
    ]

    func geometry(_ c: Case) -> ConvGeometry {
        ConvGeometry(batch: c.n, inChannels: c.cin, height: c.h, width: c.w, outChannels: c.cout, kernelH: 3, kernelW: 3,
                     strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1)
    }

    @Test(arguments: 0..<cases.count)
    func forwardMatchesReference(_ index: Int) throws {
        let c = Self.cases[index], g = geometry(c)
        #expect(BatchedWinograd.applies(g))
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 81)
        let w = try randomTensor([c.cout, c.cin, 3, 3], seed: 82, scale: 1 / Float(3 * c.cin).squareRoot())
        let b = try randomTensor([c.cout], seed: 83)
        let y = try Tensor(uninitialized: [c.n, c.cout, c.h, c.w])
        try BatchedWinograd.forward(g, x: x.data, weight: w.data, bias: b.data, y: y.data, passFloats: c.passFloats)
        let reference = referenceConv2d(x, w, b, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        let scale = reference.map { abs($0) }.max() ?? 1
        let error = zip(y.scalars, reference).map { abs($0 - $1) }.max()! / scale
        // measured: 2–3e-6 of the largest output here (6e-6 at 128 channels, 1e-5 at 256)
        #expect(error < 1e-5, "error \(error)")
        if c.passFloats == 4_000_000 {
            // the dispatcher takes this path, and the bits do not depend on the thread split
            let viaLayer = try conv2d(x, w, b, padding: (1, 1))
            #expect(viaLayer.scalars == y.scalars)
        }
    }

    @Test func appliesToSmallMapsOfBatches() {
        func g(_ n: Int, _ cin: Int, _ side: Int, stride: Int = 1, pad: Int = 1) -> ConvGeometry {
            ConvGeometry(batch: n, inChannels: cin, height: side, width: side, outChannels: cin, kernelH: 3, kernelW: 3,
                         strideH: stride, strideW: stride, padH: pad, padW: pad, dilationH: 1, dilationW: 1, groups: 1)
        }
        #expect(BatchedWinograd.applies(g(100, 128, 8)))     // ResNet-18 at 64 px, layer2
        #expect(BatchedWinograd.applies(g(100, 256, 4)))     // and layer3
        #expect(!BatchedWinograd.applies(g(100, 512, 2)))    // 2×2: four live taps, nothing to save
        #expect(!BatchedWinograd.applies(g(1, 128, 8)))      // one image fills 1 lane of 16
        #expect(!BatchedWinograd.applies(g(100, 128, 8, stride: 2)))
        #expect(!BatchedWinograd.applies(g(100, 128, 8, pad: 0)))
        #expect(!BatchedWinograd.applies(g(100, 64, 16)))    // the per-image path's
        #expect(!BatchedWinograd.applies(g(100, 8, 8)))      // too few channels for the transforms
    }
}

/// Transformed weights kept between inference calls: reused only while the values are the same.
@Suite struct WinogradWeightCacheTests {
    func geometry(_ cin: Int, _ cout: Int) -> ConvGeometry {
        ConvGeometry(batch: 32, inChannels: cin, height: 4, width: 4, outChannels: cout, kernelH: 3, kernelW: 3,
                     strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1)
    }

    @Test func reusesOnlyUnchangedWeights() throws {
        let cache = WinogradWeightCache(capacityBytes: 1 << 20)
        let g = geometry(16, 24)
        let w = try randomTensor([24, 16, 3, 3], seed: 91)
        let fresh = try Storage(count: 36 * 24 * 16)
        Winograd.packWeights(g, w.data, transposed: false, into: fresh.pointer)
        let first = try cache.packedWeights(g, w.data)
        #expect(Array(UnsafeBufferPointer(start: first.pointer, count: first.count)) == Array(UnsafeBufferPointer(start: fresh.pointer, count: fresh.count)))
        #expect(try cache.packedWeights(g, w.data) === first)
        // one value changed in place (an optimiser step): packed again, and correctly
        w.data[100] += 0.25
        let second = try cache.packedWeights(g, w.data)
        #expect(second !== first)
        Winograd.packWeights(g, w.data, transposed: false, into: fresh.pointer)
        #expect(Array(UnsafeBufferPointer(start: second.pointer, count: second.count)) == Array(UnsafeBufferPointer(start: fresh.pointer, count: fresh.count)))
        #expect(cache.heldBytes == second.count * 4)
        // a bit flip anywhere changes the fingerprint
        let before = WinogradWeightCache.fingerprint(w.data, w.count)
        for i in [0, 17, w.count - 1] {
            let saved = w.data[i]
            w.data[i] = Float(bitPattern: saved.bitPattern ^ 1)
            #expect(WinogradWeightCache.fingerprint(w.data, w.count) != before)
            w.data[i] = saved
        }
        #expect(WinogradWeightCache.fingerprint(w.data, w.count) == before)
    }

    @Test func evictsTheLeastRecentlyUsedBeyondItsCapacity() throws {
        let g = geometry(16, 16)
        let entryBytes = 36 * 16 * 16 * 4
        let cache = WinogradWeightCache(capacityBytes: 5 * entryBytes)
        let weights = try (0..<3).map { try randomTensor([16, 16, 3, 3], seed: 92 + UInt64($0)) }
        let packed = try weights.map { try cache.packedWeights(g, $0.data) }
        #expect(cache.heldBytes == 3 * entryBytes)
        _ = try cache.packedWeights(g, weights[0].data)                      // 0 used most recently
        let more = try (0..<3).map { try randomTensor([16, 16, 3, 3], seed: 95 + UInt64($0)) }
        for w in more { _ = try cache.packedWeights(g, w.data) }
        #expect(cache.heldBytes <= 5 * entryBytes)
        #expect(try cache.packedWeights(g, weights[0].data) === packed[0])   // kept
        #expect(try cache.packedWeights(g, weights[1].data) !== packed[1])   // evicted first
        withExtendedLifetime((weights, more)) {}
    }

    @Test func inferenceWithTheCacheEqualsTraining() throws {
        // the same convolution with a graph (no cache) and without (cache), twice
        let x = try randomTensor([32, 16, 4, 4], seed: 98), w = try randomTensor([16, 16, 3, 3], seed: 99)
        let withGraph = try conv2d(x, w, nil, padding: (1, 1))
        for _ in 0..<2 {
            let inference = try withoutGrad { try conv2d(x, w, nil, padding: (1, 1)) }
            #expect(inference.scalars == withGraph.scalars)
        }
    }
}
