import Testing
@testable import MedSynth
@testable import MedSynthCore

/// The column path (Conv2dColumns.swift: im2col over the batch, products on the forward tile)
/// against the 7-loop reference, on shapes that exercise its edges: row blocks of 8/4/2/1, K in
/// several slices, panels of 3, 2 and 1 vectors, threads split by rows or by panels, strides,
/// padding, dilation, rectangular and 1×1 kernels, one image, and batches cut into chunks.
@Suite struct ColumnConvTests {
    struct Case {
        var n: Int
        var cin: Int
        var cout: Int
        var h: Int
        var w: Int
        var kh: Int = 3
        var kw: Int = 3
        var stride: (Int, Int) = (1, 1)
        var pad: (Int, Int) = (1, 1)
        var dil: (Int, Int) = (1, 1)
        var bias: Bool = true

        var geometry: ConvGeometry {
            ConvGeometry(batch: n, inChannels: cin, height: h, width: w, outChannels: cout, kernelH: kh, kernelW: kw,
                         strideH: stride.0, strideW: stride.1, padH: pad.0, padW: pad.1,
                         dilationH: dil.0, dilationW: dil.1, groups: 1)
        }
    }

    static let cases: [Case] = [
        Case(n: 4, cin: 20, cout: 19, h: 4, w: 4),                                  // blocks 8, 8, 2, 1; K = 180: two slices; panels 48 + 16
        Case(n: 3, cin: 16, cout: 70, h: 8, w: 8, stride: (2, 2)),                  // strided 3×3 to 4×4
        Case(n: 5, cin: 33, cout: 64, h: 7, w: 7, kh: 5, kw: 5, pad: (2, 2)),       // 5×5 on 7×7 (GoogLeNet), 64 channels
        Case(n: 6, cin: 40, cout: 24, h: 2, w: 2, kh: 1, kw: 1, pad: (0, 0), bias: false), // 1×1 on 2×2
        Case(n: 3, cin: 8, cout: 12, h: 9, w: 4, kh: 3, kw: 2, stride: (2, 1), pad: (0, 1), dil: (1, 2)), // rectangular, dilated
        Case(n: 1, cin: 300, cout: 8, h: 3, w: 3),                                  // one image, K = 2700
        Case(n: 9, cin: 4, cout: 200, h: 2, w: 2),                                  // tall: rows over threads
        Case(n: 40, cin: 16, cout: 8, h: 4, w: 4, bias: false),                     // wide: 14 panels over threads
        Case(n: 2, cin: 6, cout: 10, h: 6, w: 6, kh: 1, kw: 1, stride: (2, 2), pad: (0, 0)), // strided 1×1 (ResNet shortcut)
        Case(n: 3, cin: 5, cout: 7, h: 2, w: 2, pad: (2, 2)),                       // padding 2 around a 2×2 map: taps that read only padding
        // the forward's pixel classes (Conv2dColumnClasses.swift): odd sizes, one image, many classes
        Case(n: 1, cin: 7, cout: 13, h: 5, w: 3, stride: (2, 2)),                   // one image, 3×2 output, odd everything
        Case(n: 7, cin: 19, cout: 11, h: 3, w: 4),                                  // 3×4: corners, edges, two interior pixels
        Case(n: 3, cin: 24, cout: 72, h: 8, w: 8),                                  // 8×8, 9 classes, K = 216 in two slices
        Case(n: 5, cin: 3, cout: 9, h: 2, w: 2, kh: 1, kw: 2, pad: (1, 1)),         // 1×2 with padding: rows that read no tap (bias only)
    ]

    /// max |a − b| / max |b|.
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map { abs($0) }.max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-30) } ?? 0
    }

    @Test(arguments: 0..<cases.count)
    func productsMatchReference(_ index: Int) throws {
        let c = Self.cases[index], g = c.geometry
        #expect(ColumnConv.applies(g))
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 81)
        let w = try randomTensor([c.cout, c.cin, c.kh, c.kw], seed: 82, scale: 1 / Float(c.cin * c.kh * c.kw).squareRoot())
        let b = c.bias ? try randomTensor([c.cout], seed: 83) : nil
        let dy = try randomTensor([c.n, c.cout, g.outHeight, g.outWidth], seed: 84)
        let expected = referenceConv2d(x, w, b, stride: c.stride, padding: c.pad, dilation: c.dil, groups: 1)
        let ref = referenceConv2dBackward(x, w, dy: dy.scalars, stride: c.stride, padding: c.pad, dilation: c.dil, groups: 1)
        // gradients add into what is there
        let dxStart = try randomTensor(x.shape, seed: 85), dwStart = try randomTensor(w.shape, seed: 86)
        let expectedDx = zip(ref.dx, dxStart.scalars).map { $0 + $1 }, expectedDw = zip(ref.dw, dwStart.scalars).map { $0 + $1 }
        // the whole batch in one chunk, then chunks of two images
        for budget in [ColumnConv.chunkFloats, 2 * g.colRows * g.outPlane] {
            let y = try Tensor(uninitialized: [c.n, c.cout, g.outHeight, g.outWidth])
            try ColumnConv.forward(g, x: x.data, weight: w.data, bias: b?.data, y: y.data, chunkFloats: budget)
            let dx = try dxStart.copy(), dw = try dwStart.copy()
            try ColumnConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: dx.data, dWeight: dw.data, chunkFloats: budget)
            #expect(relativeError(y.scalars, expected) < 1e-5, "forward, chunk budget \(budget)")
            #expect(relativeError(dx.scalars, expectedDx) < 1e-5, "input gradient, chunk budget \(budget)")
            #expect(relativeError(dw.scalars, expectedDw) < 1e-5, "weight gradient, chunk budget \(budget)")
        }
        // each gradient alone
        let dxOnly = try dxStart.copy(), dwOnly = try dwStart.copy()
        try ColumnConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: dxOnly.data, dWeight: nil)
        try ColumnConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: nil, dWeight: dwOnly.data)
        #expect(relativeError(dxOnly.scalars, expectedDx) < 1e-5)
        #expect(relativeError(dwOnly.scalars, expectedDw) < 1e-5)
    }

    /// Pixels grouped by the taps that read the image: a 3×3 (padding 1) over 3×4 has corners,
    /// edges and an interior, each with its own taps, and every pixel in exactly one class.
    @Test func pixelClassesHoldTheValidTaps() {
        let g = Case(n: 1, cin: 2, cout: 1, h: 3, w: 4).geometry
        let classes = ColumnConv.pixelClasses(g, table: ColumnConv.tapTable(g))
        #expect(classes.count == 9)
        #expect(classes.flatMap { $0.pixels }.sorted() == (0..<12).map { Int32($0) })
        #expect(classes[0].pixels == [0] && classes[0].columns == [8, 9, 10, 11, 14, 15, 16, 17])  // top-left corner: taps 4, 5, 7, 8, tap-major
        #expect(classes[1].pixels == [1, 2] && classes[1].columns.count == 2 * 6)                // top edge
        #expect(classes.first { $0.pixels == [5, 6] }?.columns == Array(0..<18))                 // interior: all taps
    }

    @Test func layerTakesTheColumnPathBitIdenticallyRunToRun() throws {
        let c = Self.cases[1], g = c.geometry
        func run() throws -> [[Float]] {
            let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 91), w = try randomTensor([c.cout, c.cin, 3, 3], seed: 92)
            let b = try randomTensor([c.cout], seed: 93)
            let y = try conv2d(x, w, b, stride: c.stride, padding: c.pad)
            try y.backward(seed: randomTensor(y.shape, seed: 94, requiresGrad: false))
            return [y.scalars, x.grad?.scalars ?? [], w.grad?.scalars ?? [], b.grad?.scalars ?? []]
        }
        let first = try run()
        #expect(try run() == first)
        // the same values as the column kernels called directly
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 91), w = try randomTensor([c.cout, c.cin, 3, 3], seed: 92)
        let b = try randomTensor([c.cout], seed: 93)
        let y = try Tensor(uninitialized: [c.n, c.cout, g.outHeight, g.outWidth])
        try ColumnConv.forward(g, x: x.data, weight: w.data, bias: b.data, y: y.data)
        #expect(y.scalars == first[0])
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        // 3×3 stride 2 onto a 3×3 map, and 1×1 onto 2×2: both on the column path
        let shapes: [(cin: Int, cout: Int, side: Int, k: Int, stride: Int, pad: Int)] = [(5, 6, 6, 3, 2, 1), (4, 3, 2, 1, 1, 0)]
        for s in shapes {
            let g = ConvGeometry(batch: 3, inChannels: s.cin, height: s.side, width: s.side, outChannels: s.cout,
                                 kernelH: s.k, kernelW: s.k, strideH: s.stride, strideW: s.stride, padH: s.pad, padW: s.pad,
                                 dilationH: 1, dilationW: 1, groups: 1)
            #expect(ColumnConv.applies(g))
            let inputs = [try randomTensor([3, s.cin, s.side, s.side], seed: 95), try randomTensor([s.cout, s.cin, s.k, s.k], seed: 96),
                          try randomTensor([s.cout], seed: 97)]
            try expectGradientsMatch(inputs) { t in
                try conv2d(t[0], t[1], t[2], stride: (s.stride, s.stride), padding: (s.pad, s.pad))
            }
        }
    }

    @Test func appliesToSmallMapsOnly() {
        func g(_ cin: Int, _ cout: Int, _ side: Int, k: Int = 3, stride: Int = 1, groups: Int = 1) -> ConvGeometry {
            ConvGeometry(batch: 32, inChannels: cin, height: side, width: side, outChannels: cout, kernelH: k, kernelW: k,
                         strideH: stride, strideW: stride, padH: k / 2, padW: k / 2, dilationH: 1, dilationW: 1, groups: groups)
        }
        #expect(ColumnConv.applies(g(512, 512, 2)))             // ResNet-18's last stage
        #expect(ColumnConv.applies(g(128, 32, 4)))              // DenseNet's 3×3 at 4×4: a quarter of each vector
        #expect(ColumnConv.applies(g(128, 128, 8)))             // half of each vector, many channels
        #expect(!ColumnConv.applies(g(128, 32, 8)))             // half, few channels: direct
        #expect(!ColumnConv.applies(g(1024, 256, 4, k: 1)))     // 1×1 over a whole 4×4 plane: full vectors
        #expect(ColumnConv.applies(g(2048, 512, 2, k: 1)))      // 1×1 over a 2×2 plane
        #expect(!ColumnConv.applies(g(64, 64, 16)))             // full rows
        #expect(!ColumnConv.applies(g(32, 32, 4, groups: 32)))  // depthwise
    }
}
