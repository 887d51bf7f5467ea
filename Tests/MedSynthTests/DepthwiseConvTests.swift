import Testing
@testable import MedSynth
@testable import MedSynthCore

/// The depthwise kernel (Conv2dDepthwise.swift) against the 7-loop reference: MobileNetV2's 3×3
/// layers at stride 1 and 2, padding 0 to 2, dilation, rectangular kernels, a channel multiplier
/// of 2, maps from 1×1 to 40 wide, and gradients that add into what is there.
@Suite struct DepthwiseConvTests {
    struct Case {
        var n: Int = 3
        var channels: Int
        var multiplier: Int = 1
        var h: Int
        var w: Int
        var kh: Int = 3
        var kw: Int = 3
        var stride: (Int, Int) = (1, 1)
        var pad: (Int, Int) = (1, 1)
        var dil: (Int, Int) = (1, 1)
        var bias: Bool = false
    }

    static let cases: [Case] = [
        Case(channels: 32, h: 16, w: 16),                                   // MobileNetV2 block, stride 1
        Case(channels: 24, h: 17, w: 15, stride: (2, 2)),                   // stride 2 on odd sizes
        Case(channels: 8, h: 4, w: 4, stride: (2, 2)),                      // to 2×2
        Case(channels: 6, h: 1, w: 1),                                      // 1×1 map: taps mostly padding
        Case(n: 2, channels: 5, multiplier: 2, h: 9, w: 11, bias: true),     // two output channels per input
        Case(channels: 4, h: 12, w: 40, kh: 3, kw: 5, pad: (2, 1), dil: (2, 1), bias: true), // rectangular, dilated
        Case(channels: 7, h: 10, w: 10, pad: (0, 0)),                       // no padding
        Case(n: 1, channels: 3, h: 13, w: 12, kh: 5, kw: 5, stride: (3, 2), pad: (2, 2)),   // 5×5, strides 3 and 2
    ]

    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map { abs($0) }.max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-30) } ?? 0
    }

    @Test(arguments: 0..<cases.count)
    func matchesReference(_ index: Int) throws {
        let c = Self.cases[index]
        let cout = c.channels * c.multiplier
        let g = ConvGeometry(batch: c.n, inChannels: c.channels, height: c.h, width: c.w, outChannels: cout,
                             kernelH: c.kh, kernelW: c.kw, strideH: c.stride.0, strideW: c.stride.1, padH: c.pad.0, padW: c.pad.1,
                             dilationH: c.dil.0, dilationW: c.dil.1, groups: c.channels)
        #expect(DepthwiseConv.applies(g))
        let x = try randomTensor([c.n, c.channels, c.h, c.w], seed: 101), w = try randomTensor([cout, 1, c.kh, c.kw], seed: 102)
        let b = c.bias ? try randomTensor([cout], seed: 103) : nil
        let dy = try randomTensor([c.n, cout, g.outHeight, g.outWidth], seed: 104)
        let args = (stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.channels)
        let expected = referenceConv2d(x, w, b, stride: args.stride, padding: args.padding, dilation: args.dilation, groups: args.groups)
        let ref = referenceConv2dBackward(x, w, dy: dy.scalars, stride: args.stride, padding: args.padding,
                                          dilation: args.dilation, groups: args.groups)
        let y = try Tensor(uninitialized: dy.shape)
        DepthwiseConv.forward(g, x: x.data, weight: w.data, bias: b?.data, y: y.data)
        #expect(relativeError(y.scalars, expected) < 1e-6)
        let dxStart = try randomTensor(x.shape, seed: 105), dwStart = try randomTensor(w.shape, seed: 106)
        let dx = try dxStart.copy(), dw = try dwStart.copy()
        DepthwiseConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: dx.data, dWeight: dw.data)
        #expect(relativeError(dx.scalars, zip(ref.dx, dxStart.scalars).map { $0 + $1 }) < 1e-6)
        #expect(relativeError(dw.scalars, zip(ref.dw, dwStart.scalars).map { $0 + $1 }) < 1e-5)
        // runs of one image at a time: the same bits
        let yRuns = try Tensor(uninitialized: dy.shape), dxRuns = try dxStart.copy(), dwRuns = try dwStart.copy()
        DepthwiseConv.forward(g, x: x.data, weight: w.data, bias: b?.data, y: yRuns.data, stackFloats: 1)
        DepthwiseConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: dxRuns.data, dWeight: dwRuns.data, stackFloats: 1)
        #expect(yRuns.scalars == y.scalars && dxRuns.scalars == dx.scalars)
        #expect(relativeError(dwRuns.scalars, dw.scalars) < 1e-6)
        // each gradient alone
        let dxOnly = try dxStart.copy(), dwOnly = try dwStart.copy()
        DepthwiseConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: dxOnly.data, dWeight: nil)
        DepthwiseConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: nil, dWeight: dwOnly.data)
        #expect(dxOnly.scalars == dx.scalars && dwOnly.scalars == dw.scalars)
        // the layer takes this path
        #expect(try conv2d(x, w, b, stride: args.stride, padding: args.padding, dilation: args.dilation, groups: args.groups).scalars
                == y.scalars)
    }

    @Test func infinitiesNoWindowReadsStayOut() throws {
        // a 1-wide kernel at stride 2 never reads odd columns: infinities there reach neither y nor dW
        let g = ConvGeometry(batch: 2, inChannels: 3, height: 4, width: 8, outChannels: 3, kernelH: 1, kernelW: 1,
                             strideH: 2, strideW: 2, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 3)
        let x = try randomTensor([2, 3, 4, 8], seed: 110), w = try randomTensor([3, 1, 1, 1], seed: 111)
        for i in stride(from: 1, to: x.count, by: 2) { x.data[i] = .infinity }
        let dy = try randomTensor([2, 3, g.outHeight, g.outWidth], seed: 112)
        let y = try Tensor(uninitialized: dy.shape), dw = try Tensor(zeros: w.shape), dx = try Tensor(zeros: x.shape)
        DepthwiseConv.forward(g, x: x.data, weight: w.data, bias: nil, y: y.data)
        DepthwiseConv.backward(g, x: x.data, weight: w.data, dy: dy.data, dx: dx.data, dWeight: dw.data)
        let ref = referenceConv2dBackward(x, w, dy: dy.scalars, stride: (2, 2), padding: (0, 0), dilation: (1, 1), groups: 3)
        #expect(y.scalars == referenceConv2d(x, w, nil, stride: (2, 2), padding: (0, 0), dilation: (1, 1), groups: 3))
        #expect(ref.dw.allSatisfy { $0.isFinite })
        #expect(relativeError(dw.scalars, ref.dw) < 1e-6)
        #expect(dx.scalars == ref.dx)
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        for (stride, multiplier) in [(1, 1), (2, 2)] {
            let inputs = [try randomTensor([2, 3, 6, 5], seed: 107), try randomTensor([3 * multiplier, 1, 3, 3], seed: 108),
                          try randomTensor([3 * multiplier], seed: 109)]
            try expectGradientsMatch(inputs) { t in
                try conv2d(t[0], t[1], t[2], stride: (stride, stride), padding: (1, 1), groups: 3)
            }
        }
    }
}
