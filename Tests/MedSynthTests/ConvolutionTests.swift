import Testing
@testable import MedSynth

/// Direct 7-loop convolution, the definition the im2col kernel must match.
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

@Suite struct ConvolutionTests {
    @Test func handComputedValues() throws {
        // 1×1×3×3 input 1…9, 2×2 kernel of ones, no padding: each output sums a 2×2 window.
        let x = Tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], shape: [1, 1, 3, 3])
        let w = Tensor([1, 1, 1, 1], shape: [1, 1, 2, 2])
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
    ]

    @Test(arguments: 0..<configurations.count)
    func matchesDirectConvolution(_ index: Int) throws {
        let c = Self.configurations[index]
        let x = randomTensor([2, c.cin, 7, 6], seed: 1)
        let w = randomTensor([c.cout, c.cin / c.groups, c.k, c.k], seed: 2)
        let b = c.bias ? randomTensor([c.cout], seed: 3) : nil
        let args = (stride: (c.stride, c.stride), padding: (c.pad, c.pad), dilation: (c.dil, c.dil))
        let y = try conv2d(x, w, b, stride: args.stride, padding: args.padding, dilation: args.dilation, groups: c.groups)
        let expected = referenceConv2d(x, w, b, stride: args.stride, padding: args.padding, dilation: args.dilation, groups: c.groups)
        expectClose(y.scalars, expected, atol: 1e-4, rtol: 1e-4)
    }

    @Test(arguments: 0..<configurations.count)
    func gradientsMatchFiniteDifferences(_ index: Int) throws {
        let c = Self.configurations[index]
        var inputs = [randomTensor([2, c.cin, 7, 6], seed: 4), randomTensor([c.cout, c.cin / c.groups, c.k, c.k], seed: 5)]
        if c.bias { inputs.append(randomTensor([c.cout], seed: 6)) }
        try expectGradientsMatch(inputs) { t in
            try conv2d(t[0], t[1], t.count > 2 ? t[2] : nil, stride: (c.stride, c.stride), padding: (c.pad, c.pad),
                       dilation: (c.dil, c.dil), groups: c.groups)
        }
    }

    @Test func rejectsImpossibleGeometry() {
        let x = Tensor(zeros: [1, 3, 4, 4])
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [2, 3, 7, 7])) }         // kernel larger than input
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [2, 2, 3, 3])) }         // channel mismatch
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [4, 1, 3, 3]), groups: 2) } // 3 % 2 != 0
        #expect(throws: MedSynthError.self) { try conv2d(x, Tensor(zeros: [2, 3, 3, 3]), stride: (0, 1)) }
    }
}
