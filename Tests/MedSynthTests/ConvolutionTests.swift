import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Direct 7-loop convolution, the definition the kernels must match.
func referenceConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                     dilation: (Int, Int), groups: Int) -> [Float] {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, cpg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    let opg = cout / groups
    var out = [Float](repeating: 0, count: n * cout * ho * wo)
    for b0 in 0..<n { for co in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
        var s: Float = b?.data[co] ?? 0
        let g = co / opg
        for ci in 0..<cpg { for ki in 0..<kh { for kj in 0..<kw {
            let iy = oy * stride.0 - padding.0 + ki * dilation.0
            let ix = ox * stride.1 - padding.1 + kj * dilation.1
            if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
            s += x.data[((b0 * cin + g * cpg + ci) * h + iy) * wd + ix] * w.data[((co * cpg + ci) * kh + ki) * kw + kj]
        }}}
        out[((b0 * cout + co) * ho + oy) * wo + ox] = s
    }}}}
    return out
}

/// The gradients of the direct convolution by the same 7 loops: for every (output, tap) pair,
/// dx[input] += dy[output]·w[tap], dW[tap] += dy[output]·x[input], db[co] += dy[output].
func referenceConv2dBackward(_ x: Tensor, _ w: Tensor, dy: [Float], stride: (Int, Int), padding: (Int, Int),
                             dilation: (Int, Int), groups: Int) -> (dx: [Float], dw: [Float], db: [Float]) {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, cpg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    let opg = cout / groups
    var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count)
    var db = [Float](repeating: 0, count: cout)
    for b0 in 0..<n { for co in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
        let g = dy[((b0 * cout + co) * ho + oy) * wo + ox]
        db[co] += g
        let grp = co / opg
        for ci in 0..<cpg { for ki in 0..<kh { for kj in 0..<kw {
            let iy = oy * stride.0 - padding.0 + ki * dilation.0
            let ix = ox * stride.1 - padding.1 + kj * dilation.1
            if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
            let xi = ((b0 * cin + grp * cpg + ci) * h + iy) * wd + ix, wi = ((co * cpg + ci) * kh + ki) * kw + kj
            dx[xi] += g * w.data[wi]
            dw[wi] += g * x.data[xi]
        }}}
    }}}}
    return (dx, dw, db)
}

@Suite struct ConvolutionTests {
    @Test func handComputedValues() throws {
        // 1×1×3×3 input 1…9, 2×2 kernel of ones, no padding: each output sums a 2×2 window.
        let x = try Tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], shape: [1, 1, 3, 3])
        let w = try Tensor([1, 1, 1, 1], shape: [1, 1, 2, 2])
        let y = try conv2d(x, w, Tensor([0.5], shape: [1]))
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.scalars == [12.5, 16.5, 24.5, 28.5])
        // padding 1, stride 2: corners see only the image's corner 2×2 blocks
        let z = try conv2d(x, w, nil, stride: (2, 2), padding: (1, 1))
        #expect(z.shape == [1, 1, 2, 2])
        #expect(z.scalars == [1, 5, 11, 28])
    }

    static let configurations: [(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, dil: Int, groups: Int, bias: Bool)] = [
        (3, 4, 3, 1, 1, 1, 1, true),    // the common 3×3 "same" convolution
        (4, 6, 3, 2, 1, 1, 2, false),   // strided, grouped
        (4, 4, 3, 1, 2, 2, 4, true),    // depthwise, dilated
        (5, 3, 1, 1, 0, 1, 1, true),    // pointwise fast path
        (2, 3, 5, 3, 2, 1, 1, false),   // large kernel, stride 3 (non-unit stride path)
        (3, 2, 1, 2, 0, 1, 1, true),    // strided 1×1 (downsample shortcut)
        (1, 3, 3, 1, 1, 1, 1, true),    // Cin = 1 (K = 9)
        (3, 1, 3, 1, 2, 1, 1, false),   // Cout = 1, padding 2
        (3, 4, 3, 2, 1, 1, 1, true),    // 3×3 stride 2: phase-split packing, input gradient by phases
        (2, 2, 3, 1, 2, 2, 1, false),   // dilated: direct input gradient with padding 2·2 − 2 = 2
    ]

    @Test(arguments: 0..<configurations.count)
    func matchesDirectConvolution(_ index: Int) throws {
        let c = Self.configurations[index]
        let x = try randomTensor([2, c.cin, 7, 6], seed: 1)
        let w = try randomTensor([c.cout, c.cin / c.groups, c.k, c.k], seed: 2)
        let b = try c.bias ? randomTensor([c.cout], seed: 3) : nil
        let args = (stride: (c.stride, c.stride), padding: (c.pad, c.pad), dilation: (c.dil, c.dil))
        let y = try conv2d(x, w, b, stride: args.stride, padding: args.padding, dilation: args.dilation, groups: c.groups)
        let expected = referenceConv2d(x, w, b, stride: args.stride, padding: args.padding, dilation: args.dilation, groups: c.groups)
        expectClose(y.scalars, expected, atol: 1e-4, rtol: 1e-4)
    }

    @Test(arguments: 0..<configurations.count)
    func gradientsMatchFiniteDifferences(_ index: Int) throws {
        let c = Self.configurations[index]
        var inputs = [try randomTensor([2, c.cin, 7, 6], seed: 4), try randomTensor([c.cout, c.cin / c.groups, c.k, c.k], seed: 5)]
        if c.bias { inputs.append(try randomTensor([c.cout], seed: 6)) }
        try expectGradientsMatch(inputs) { t in
            try conv2d(t[0], t[1], t.count > 2 ? t[2] : nil, stride: (c.stride, c.stride), padding: (c.pad, c.pad),
                       dilation: (c.dil, c.dil), groups: c.groups)
        }
    }

    /// Shapes that exercise each path of the direct kernels (Conv2dDirect.swift): output widths that
    /// are not multiples of 16 (partial vectors), channel blocks of 8/4/2/1 and channel vectors of
    /// 4/2/1 and pixel-vectorised weight gradients (few channels or taps), Cin = 1 (K = 9) and Cout = 1, strides (phase-split packing; input gradient by phases),
    /// padding 0 and 2, dilation, rectangular kernels, groups and depthwise, 1×1, 5×5 (taps one by
    /// one) and 7×7 stride-2 kernels, 1-wide kernels (vectors over whole planes; 1×1 read in place), a
    /// single image spread over threads by chunks.
    struct Case {
        var n: Int = 2
        var cin: Int
        var cout: Int
        var h: Int
        var w: Int
        var kh: Int = 3
        var kw: Int = 3
        var stride: (Int, Int) = (1, 1)
        var pad: (Int, Int) = (1, 1)
        var dil: (Int, Int) = (1, 1)
        var groups: Int = 1
        var bias: Bool = true
    }

    static let directCases: [Case] = [
        Case(cin: 1, cout: 32, h: 20, w: 37),                                    // K = 9, 3 vectors per row (last partial)
        Case(n: 3, cin: 32, cout: 1, h: 19, w: 21, bias: false),                 // Cout = 1: 1×12 tiles, one channel vector
        Case(cin: 20, cout: 19, h: 11, w: 18, pad: (0, 0)),                      // blocks 8, 8, 2, 1; padding 0
        Case(cin: 6, cout: 70, h: 9, w: 9, pad: (2, 2)),                         // blocks 8×8, 4, 2; channel vectors 4 + 1; padding 2
        Case(cin: 6, cout: 13, h: 17, w: 33, stride: (2, 2)),                    // stride 2: two phases; input gradient by phases
        Case(cin: 4, cout: 6, h: 14, w: 23, stride: (2, 3), pad: (0, 2), dil: (1, 2), bias: false),
        Case(cin: 8, cout: 12, h: 12, w: 20, dil: (2, 2), groups: 4),            // grouped, dilated (input-gradient padding 1)
        Case(cin: 6, cout: 6, h: 13, w: 40, groups: 6),                          // depthwise
        Case(cin: 5, cout: 5, h: 15, w: 15, stride: (2, 2), groups: 5),          // depthwise, strided
        Case(cin: 24, cout: 10, h: 10, w: 17, kh: 1, kw: 1, pad: (0, 0)),        // pointwise
        Case(cin: 8, cout: 16, h: 9, w: 9, kh: 1, kw: 1, stride: (2, 2), pad: (0, 0)), // strided 1×1 shortcut
        Case(cin: 3, cout: 5, h: 6, w: 6, kh: 1, kw: 1, pad: (1, 1)),            // 1×1 padded: input-gradient padding −1 → by phases
        Case(cin: 3, cout: 8, h: 23, w: 23, kh: 7, kw: 7, stride: (2, 2), pad: (3, 3)), // ResNet stem
        Case(cin: 3, cout: 9, h: 10, w: 19, kh: 2, kw: 5, pad: (1, 2), dil: (2, 1)),    // rectangular kernel, mixed dilation
        Case(n: 1, cin: 3, cout: 9, h: 30, w: 40),                               // one image: 90 vectors in 4 chunks over threads
        Case(cin: 4, cout: 8, h: 16, w: 16, pad: (3, 3), dil: (3, 3)),           // dilation 3
        Case(cin: 17, cout: 17, h: 12, w: 12, kh: 5, kw: 5, pad: (2, 2)),        // 5×5: taps one by one
        Case(cin: 64, cout: 40, h: 16, w: 16),                                   // K = 576, full 16-wide rows
        Case(cin: 3, cout: 8, h: 12, w: 41, stride: (1, 2), pad: (0, 0)),        // horizontal stride 2, no padding
        Case(cin: 64, cout: 24, h: 8, w: 12, kh: 1, kw: 1, pad: (0, 0)),         // 1×1 read in place; flat channel-vector weight gradient
        Case(n: 3, cin: 50, cout: 16, h: 4, w: 4, kh: 1, kw: 1, pad: (0, 0)),    // in place, 3 images over threads
        Case(n: 1, cin: 16, cout: 8, h: 32, w: 32, kh: 1, kw: 1, pad: (0, 0), bias: false), // in place, one image's chunks over threads
        Case(cin: 5, cout: 9, h: 11, w: 7, kh: 3, kw: 1, pad: (1, 0)),           // 3×1: flat but padded; flat pixel weight gradient
        Case(n: 1, cin: 2, cout: 3, h: 6, w: 70),                                // 5 vectors a row: row ends overlap, except at vector 24 (a chunk start)
    ]

    @Test(arguments: 0..<directCases.count)
    func directKernelsMatchReference(_ index: Int) throws {
        let c = Self.directCases[index]
        let x = try randomTensor([c.n, c.cin, c.h, c.w], seed: 11)
        let w = try randomTensor([c.cout, c.cin / c.groups, c.kh, c.kw], seed: 12, scale: 0.3)
        let b = try c.bias ? randomTensor([c.cout], seed: 13) : nil
        let y = try conv2d(x, w, b, stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups)
        let expected = referenceConv2d(x, w, b, stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups)
        let dy = try randomTensor(y.shape, seed: 14, requiresGrad: false)
        let ref = referenceConv2dBackward(x, w, dy: dy.scalars, stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups)
        // 3×3 stride-1 shapes with many channels take the Winograd path through conv2d (its error,
        // bounded in WinogradTests, scales with the outputs' size): the direct kernels run here
        // on their own, and the layer's results get a tolerance scaled to the outputs.
        let g = ConvGeometry(batch: c.n, inChannels: c.cin, height: c.h, width: c.w, outChannels: c.cout, kernelH: c.kh,
                             kernelW: c.kw, strideH: c.stride.0, strideW: c.stride.1, padH: c.pad.0, padW: c.pad.1,
                             dilationH: c.dil.0, dilationW: c.dil.1, groups: c.groups)
        var atol: Float = 1e-4
        if Winograd.applies(g) {
            let direct = try Tensor(uninitialized: y.shape)
            try DirectConv.forward(g, x: x.data, weight: w.data, bias: b?.data, y: direct.data)
            expectClose(direct.scalars, expected, atol: 1e-4, rtol: 1e-4)
            let t = try #require(DirectConv.inputGradientGeometry(g))
            let dx = try Tensor(zeros: x.shape)
            try DirectConv.inputGradient(g, t, weight: w.data, dy: dy.data, dx: dx.data)
            expectClose(dx.scalars, ref.dx, atol: 1e-4, rtol: 1e-4)
            atol = 1e-5 * (expected + ref.dx).map { abs($0) }.max()!
        }
        if (!Winograd.applies(g) && ColumnConv.applies(g)) || DepthwiseConv.applies(g) {
            // small output maps and depthwise convolutions take other paths through conv2d: the
            // direct kernels on their own
            let direct = try Tensor(uninitialized: y.shape), dx = try Tensor(zeros: x.shape), dw = try Tensor(zeros: w.shape)
            try DirectConv.forward(g, x: x.data, weight: w.data, bias: b?.data, y: direct.data)
            try DirectConv.weightGradient(g, x: x.data, dy: dy.data, dWeight: dw.data)
            if let t = DirectConv.inputGradientGeometry(g) {
                try DirectConv.inputGradient(g, t, weight: w.data, dy: dy.data, dx: dx.data)
            } else {
                try DirectConv.phasedInputGradient(g, weight: w.data, dy: dy.data, dx: dx.data)
            }
            expectClose(direct.scalars, expected, atol: 1e-4, rtol: 1e-4)
            expectClose(dx.scalars, ref.dx, atol: 1e-4, rtol: 1e-4)
            expectClose(dw.scalars, ref.dw, atol: 1e-3, rtol: 1e-4)
        }
        expectClose(y.scalars, expected, atol: atol, rtol: 1e-4)

        try y.backward(seed: dy)
        expectClose(x.grad?.scalars ?? [], ref.dx, atol: atol, rtol: 1e-4)
        expectClose(w.grad?.scalars ?? [], ref.dw, atol: 1e-3, rtol: 1e-4)
        if let b { expectClose(b.grad?.scalars ?? [], ref.db, atol: 1e-3, rtol: 1e-4) }
    }

    @Test func resultsAreBitIdenticalRunToRun() throws {
        func run() throws -> [[Float]] {
            let x = try randomTensor([3, 16, 20, 20], seed: 21)
            let w = try randomTensor([24, 16, 3, 3], seed: 22)
            let y = try conv2d(x, w, nil, padding: (1, 1))
            try y.backward(seed: randomTensor(y.shape, seed: 23, requiresGrad: false))
            return [y.scalars, x.grad?.scalars ?? [], w.grad?.scalars ?? []]
        }
        let first = try run(), second = try run()
        #expect(first == second)
    }

    @Test func gradientsAccumulateIntoExistingGradients() throws {
        // x feeds two convolutions, so its gradient is the sum of both input gradients: the direct
        // input-gradient kernel must add to dx, not overwrite it.
        let x = try randomTensor([2, 3, 9, 11], seed: 31)
        let w1 = try randomTensor([4, 3, 3, 3], seed: 32), w2 = try randomTensor([4, 3, 3, 3], seed: 33)
        let y = try add(try conv2d(x, w1, nil, padding: (1, 1)), try conv2d(x, w2, nil, padding: (1, 1)))
        let dy = try randomTensor(y.shape, seed: 34, requiresGrad: false)
        try y.backward(seed: dy)
        let r1 = referenceConv2dBackward(x, w1, dy: dy.scalars, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        let r2 = referenceConv2dBackward(x, w2, dy: dy.scalars, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        expectClose(x.grad?.scalars ?? [], zip(r1.dx, r2.dx).map { $0 + $1 }, atol: 1e-4, rtol: 1e-4)
    }

    @Test func valuesNoWindowReadsStayOut() throws {
        // A 1×1 stride-2 convolution never reads odd columns; infinities there must not reach y or
        // ∂L/∂W through the lanes past a row's end (Wo = 10: one partial vector per row).
        let x = try randomTensor([2, 3, 4, 20], seed: 41)
        for i in stride(from: 1, to: x.count, by: 2) { x.data[i] = .infinity }
        let w = try randomTensor([2, 3, 1, 1], seed: 42)
        let y = try conv2d(x, w, nil, stride: (2, 2))
        let dy = try randomTensor(y.shape, seed: 43, requiresGrad: false)
        try y.backward(seed: dy)
        expectClose(y.scalars, referenceConv2d(x, w, nil, stride: (2, 2), padding: (0, 0), dilation: (1, 1), groups: 1))
        let ref = referenceConv2dBackward(x, w, dy: dy.scalars, stride: (2, 2), padding: (0, 0), dilation: (1, 1), groups: 1)
        #expect(ref.dw.allSatisfy { $0.isFinite })
        expectClose(w.grad?.scalars ?? [], ref.dw, atol: 1e-4, rtol: 1e-4)
    }

    @Test func rejectsImpossibleGeometry() throws {
        let x = try Tensor(zeros: [1, 3, 4, 4])
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [2, 3, 7, 7])) }         // kernel larger than input
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [2, 2, 3, 3])) }         // channel mismatch
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [4, 1, 3, 3]), groups: 2) } // 3 % 2 != 0
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [2, 3, 3, 3]), stride: (0, 1)) }
    }
}
