import Testing
@testable import MedSynth
@testable import MedSynthCore

/// The Winograd F(4×4, 3×3) path against the 7-loop reference and the direct kernels, on shapes
/// that exercise its edges: partial tiles and chunks, several blocks per image, one image over
/// threads, padding 0 and 2.
@Suite struct WinogradTests {
    struct Case {
        var n: Int = 2
        var cin: Int, cout: Int, h: Int, w: Int
        var pad: Int = 1
    }

    static let cases: [Case] = [
        Case(cin: 16, cout: 16, h: 16, w: 16),               // one chunk per tile row, one vector per image
        Case(cin: 20, cout: 24, h: 13, w: 29),               // partial tiles and chunks, blocks 8/4/… tall
        Case(cin: 17, cout: 19, h: 14, w: 30, pad: 0),       // padding 0
        Case(cin: 16, cout: 18, h: 10, w: 14, pad: 2),       // padding 2
        Case(n: 1, cin: 64, cout: 40, h: 40, w: 40),         // several blocks of one image, over threads
        Case(n: 3, cin: 32, cout: 32, h: 64, w: 64),         // the U-Net's full-resolution layer
    ]

    func geometry(_ c: Case) -> ConvGeometry {
        ConvGeometry(batch: c.n, inChannels: c.cin, height: c.h, width: c.w, outChannels: c.cout, kernelH: 3, kernelW: 3,
                     strideH: 1, strideW: 1, padH: c.pad, padW: c.pad, dilationH: 1, dilationW: 1, groups: 1)
    }

    /// max |a − b| / max |b|: outputs sum 9·Cin products, so errors scale with the output's size.
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map { abs($0) }.max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-30) } ?? 0
    }

    @Test(arguments: 0..<cases.count)
    func forwardMatchesReferenceAndDirect(_ index: Int) throws {
        let c = Self.cases[index], g = geometry(c)
        #expect(Winograd.applies(g))
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 51)
        let w = try randomTensor([c.cout, c.cin, 3, 3], seed: 52, scale: 1 / Float(3 * c.cin).squareRoot())
        let b = try randomTensor([c.cout], seed: 53)
        let winograd = try Tensor(uninitialized: [c.n, c.cout, g.outHeight, g.outWidth]), direct = try Tensor(uninitialized: winograd.shape)
        try Winograd.forward(g, x: x.data, weight: w.data, bias: b.data, y: winograd.data)
        try DirectConv.forward(g, x: x.data, weight: w.data, bias: b.data, y: direct.data)
        let reference = referenceConv2d(x, w, b, stride: (1, 1), padding: (c.pad, c.pad), dilation: (1, 1), groups: 1)
        let errorWinograd = relativeError(winograd.scalars, reference), errorDirect = relativeError(direct.scalars, reference)
        // measured: 2–6e-6 (Winograd), 2–9e-7 (direct) of the largest output
        #expect(errorWinograd < 1e-5, "Winograd error \(errorWinograd), direct \(errorDirect)")
        // the dispatcher takes this path
        let viaLayer = try conv2d(x, w, b, padding: (c.pad, c.pad))
        #expect(viaLayer.scalars == winograd.scalars)
    }

    @Test(arguments: 0..<cases.count)
    func inputGradientMatchesReferenceAndDirect(_ index: Int) throws {
        let c = Self.cases[index], g = geometry(c)
        let t = try #require(DirectConv.inputGradientGeometry(g))
        #expect(Winograd.applies(t))
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 61)
        let w = try randomTensor([c.cout, c.cin, 3, 3], seed: 62, scale: 1 / Float(3 * c.cout).squareRoot())
        let dy = try randomTensor([c.n, c.cout, g.outHeight, g.outWidth], seed: 63)
        // both add into dx: start from the same non-zero gradient
        let start = try randomTensor(x.shape, seed: 64)
        let winograd = try start.copy(), direct = try start.copy()
        try Winograd.inputGradient(g, t, weight: w.data, dy: dy.data, dx: winograd.data)
        try DirectConv.inputGradient(g, t, weight: w.data, dy: dy.data, dx: direct.data)
        let reference = zip(referenceConv2dBackward(x, w, dy: dy.scalars, stride: (1, 1), padding: (c.pad, c.pad),
                                                    dilation: (1, 1), groups: 1).dx, start.scalars).map { $0 + $1 }
        let errorWinograd = relativeError(winograd.scalars, reference), errorDirect = relativeError(direct.scalars, reference)
        // measured: 2–6e-6 (Winograd), 2–9e-7 (direct) of the largest output
        #expect(errorWinograd < 1e-5, "Winograd error \(errorWinograd), direct \(errorDirect)")
    }

    @Test(arguments: 0..<cases.count)
    func weightGradientMatchesReferenceAndDirect(_ index: Int) throws {
        let c = Self.cases[index], g = geometry(c)
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 71)
        let w = try randomTensor([c.cout, c.cin, 3, 3], seed: 72)
        let dy = try randomTensor([c.n, c.cout, g.outHeight, g.outWidth], seed: 73)
        let start = try randomTensor(w.shape, seed: 74)
        let winograd = try start.copy(), direct = try start.copy()
        try Winograd.weightGradient(g, x: x.data, dy: dy.data, dWeight: winograd.data)
        try DirectConv.weightGradient(g, x: x.data, dy: dy.data, dWeight: direct.data)
        let reference = zip(referenceConv2dBackward(x, w, dy: dy.scalars, stride: (1, 1), padding: (c.pad, c.pad),
                                                    dilation: (1, 1), groups: 1).dw, start.scalars).map { $0 + $1 }
        let errorWinograd = relativeError(winograd.scalars, reference), errorDirect = relativeError(direct.scalars, reference)
        #expect(errorWinograd < 1e-5, "Winograd error \(errorWinograd), direct \(errorDirect)")
        // run to run: the same bits
        let again = try start.copy()
        try Winograd.weightGradient(g, x: x.data, dy: dy.data, dWeight: again.data)
        #expect(again.scalars == winograd.scalars)
    }

    @Test func smallOrThinConvolutionsStayDirect() {
        func g(_ cin: Int, _ cout: Int, _ side: Int, stride: Int = 1, groups: Int = 1) -> ConvGeometry {
            ConvGeometry(batch: 1, inChannels: cin, height: side, width: side, outChannels: cout, kernelH: 3, kernelW: 3,
                         strideH: stride, strideW: stride, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: groups)
        }
        #expect(!Winograd.applies(g(1, 32, 64)))          // the U-Net's input convolution
        #expect(!Winograd.applies(g(32, 1, 64)))          // and its output convolution
        #expect(!Winograd.applies(g(32, 32, 64, stride: 2)))
        #expect(!Winograd.applies(g(32, 32, 64, groups: 2)))
        #expect(!Winograd.applies(g(256, 256, 4)))        // maps too small for 4×4 tiles
        #expect(Winograd.applies(g(64, 64, 16)))
    }
}
