import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Distinct values (a shuffled ramp with spacing 0.05), so no two values of a max-pool window are
/// within the finite-difference step of each other: the argmax never flips during a gradient check.
func distinctTensor(_ shape: [Int], seed: UInt64) throws -> Tensor {
    let count = shape.reduce(1, *)
    let order = RandomGenerator(seed: seed).permutation(count)
    let t = try Tensor(order.map { (Float($0) - Float(count) / 2) * 0.05 }, shape: shape)
    t.requiresGrad = true
    return t
}

/// 1…n as a [1, 1, h, w] tensor.
func ramp(_ h: Int, _ w: Int) throws -> Tensor {
    try Tensor((1...(h * w)).map(Float.init), shape: [1, 1, h, w])
}

/// Max pooling by definition (every window position, out-of-range ones skipped), as torch.
func referenceMaxPool(_ x: Tensor, k: (Int, Int), s: (Int, Int), p: (Int, Int), d: (Int, Int), ho: Int, wo: Int) -> [Float] {
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    var out = [Float]()
    for pl in 0..<planes { for oy in 0..<ho { for ox in 0..<wo {
        var m = -Float.infinity
        for a in 0..<k.0 { for b in 0..<k.1 {
            let iy = oy * s.0 - p.0 + a * d.0, ix = ox * s.1 - p.1 + b * d.1
            if iy >= 0 && iy < h && ix >= 0 && ix < w { m = max(m, x.data[(pl * h + iy) * w + ix]) }
        }}
        out.append(m)
    }}}
    return out
}

/// Average pooling by definition, with torch's divisor rule and summation order.
func referenceAvgPool(_ x: Tensor, k: (Int, Int), s: (Int, Int), p: (Int, Int), ho: Int, wo: Int,
                      countIncludePad: Bool, divisorOverride: Int?) -> [Float] {
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    var out = [Float]()
    for pl in 0..<planes { for oy in 0..<ho { for ox in 0..<wo {
        let (y0, x0) = (oy * s.0 - p.0, ox * s.1 - p.1)
        let (y1, x1) = (min(y0 + k.0, h + p.0), min(x0 + k.1, w + p.1))
        let padded = (y1 - y0) * (x1 - x0)
        let (ya, xa, yb, xb) = (max(y0, 0), max(x0, 0), min(y1, h), min(x1, w))
        var sum: Float = 0
        for iy in ya..<yb { for ix in xa..<xb { sum += x.data[(pl * h + iy) * w + ix] } }
        let divisor = divisorOverride ?? (countIncludePad ? padded : (yb - ya) * (xb - xa))
        out.append(sum / Float(divisor))
    }}}
    return out
}

@Suite struct PoolingTests {
    // MARK: - output sizes

    @Test func outputSizeFollowsTorch() {
        func size(_ i: Int, _ k: Int, _ p: Int, _ s: Int, _ d: Int = 1, ceil: Bool) -> Int {
            PoolGeometry.outputSize(input: i, kernel: k, pad: p, stride: s, dilation: d, ceilMode: ceil)
        }
        #expect(size(5, 2, 0, 2, ceil: false) == 2)   // ⌊3/2⌋ + 1
        #expect(size(5, 2, 0, 2, ceil: true) == 3)    // ⌈3/2⌉ + 1; last window starts at 4 < 5
        #expect(size(4, 3, 1, 2, ceil: true) == 3)    // ⌈3/2⌉ + 1; last window starts at 3 < 4 + 1
        // ⌈3/2⌉ + 1 = 3, but the third window would start at 2·2 − 1 = 3 = H: entirely in the
        // right padding, so torch drops it
        #expect(size(3, 2, 1, 2, ceil: true) == 2)
        #expect(size(5, 1, 0, 3, ceil: true) == 2)    // ⌈4/3⌉ + 1 = 3 → start 6 ≥ 5 → 2
        #expect(size(4, 2, 0, 1, 2, ceil: false) == 2) // dilated: (4 − 2 − 1)/1 + 1
        // kernels larger than the input: numerators are negative and torch divides with floor
        #expect(size(2, 5, 0, 2, ceil: false) == -1)  // ⌊−3/2⌋ + 1 = −2 + 1 (truncation: 0)
        #expect(size(2, 4, 0, 3, ceil: false) == 0)   // ⌊−2/3⌋ + 1 = −1 + 1 (truncation: 1, a bogus window)
        #expect(size(1, 4, 0, 3, ceil: false) == 0)   // ⌊−3/3⌋ + 1
    }

    // MARK: - max pooling

    @Test func maxPoolHandComputed() throws {
        // 4×4 ramp 1…16, 2×2 windows: max of each block = its bottom-right value
        let y = try maxPool2d(ramp(4, 4), kernel: (2, 2))
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.scalars == [6, 8, 14, 16])
        // 5×5 ramp, 2×2 stride 2: floor mode drops the last row/column, ceil mode keeps 1-wide windows
        #expect(try maxPool2d(ramp(5, 5), kernel: (2, 2)).scalars == [7, 9, 17, 19])
        let c = try maxPool2d(ramp(5, 5), kernel: (2, 2), ceilMode: true)
        #expect(c.shape == [1, 1, 3, 3])
        #expect(c.scalars == [7, 9, 10, 17, 19, 20, 22, 24, 25])
        // 3×3 kernel, stride 2, padding 1 on the 4×4 ramp: windows rows/cols {−1…1}, {1…3}
        #expect(try maxPool2d(ramp(4, 4), kernel: (3, 3), stride: (2, 2), padding: (1, 1)).scalars == [6, 8, 14, 16])
        // dilation 2, stride 1 on the 4×4 ramp: window (i, j) reads rows i, i+2 and cols j, j+2
        //   (0,0) → x[2][2] = 11, (0,1) → x[2][3] = 12, (1,0) → x[3][2] = 15, (1,1) → 16
        #expect(try maxPool2d(ramp(4, 4), kernel: (2, 2), stride: (1, 1), dilation: (2, 2)).scalars == [11, 12, 15, 16])
        // 3×3 input, k 2, s 2, p 1, ceil: 2×2 windows rows {−1,0}, {1,2}
        let z = try maxPool2d(ramp(3, 3), kernel: (2, 2), padding: (1, 1), ceilMode: true)
        #expect(z.shape == [1, 1, 2, 2])
        #expect(z.scalars == [1, 3, 7, 9])
        // rectangular kernel (1, 3), stride (1, 2) on a 2×5 ramp: cols {0…2}, {2…4}
        #expect(try maxPool2d(ramp(2, 5), kernel: (1, 3), stride: (1, 2)).scalars == [3, 5, 8, 10])
    }

    @Test func maxPoolNaNAndInfinity() throws {
        // a NaN anywhere in a window makes that output NaN (torch: `val > max || isnan(val)`)
        let x = try Tensor([1, .nan, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], shape: [1, 1, 4, 4])
        x.requiresGrad = true
        let y = try maxPool2d(x, kernel: (2, 2))
        #expect(y.data[0].isNaN)
        #expect(Array(y.scalars[1...]) == [8, 14, 16])
        try y.backward()
        #expect(x.grad!.data[1] == 1 && x.grad!.data[5] == 0)   // the NaN's position gets the gradient
        // two NaNs in a window: torch's `isnan(val)` keeps taking later NaNs, so the last one wins
        let twoNaN = try Tensor([.nan, 1, 2, .nan], shape: [1, 1, 2, 2], requiresGrad: true)
        let t = try maxPool2d(twoNaN, kernel: (2, 2))
        #expect(t.data[0].isNaN)
        try t.backward()
        #expect(twoNaN.grad!.scalars == [0, 0, 0, 1])
        // an all −∞ window outputs −∞ and routes its gradient to the window's first element
        let inf = try Tensor([-.infinity, -.infinity, -.infinity, -.infinity], shape: [1, 1, 2, 2])
        inf.requiresGrad = true
        let m = try maxPool2d(inf, kernel: (2, 2))
        #expect(m.scalars == [-.infinity])
        try m.backward()
        #expect(inf.grad!.scalars == [1, 0, 0, 0])
    }

    @Test func maxPoolTiesGoToTheFirstMaximum() throws {
        let x = try Tensor([2, 2, 2, 2, 1, 3, 3, 0], shape: [1, 2, 2, 2], requiresGrad: true)
        let y = try maxPool2d(x, kernel: (2, 2))
        try y.backward(seed: Tensor([5, 7], shape: [1, 2, 1, 1]))
        #expect(x.grad!.scalars == [5, 0, 0, 0, 0, 7, 0, 0])
    }

    @Test func maxPoolMatchesReferenceOnLargeInput() throws {
        // 64 planes: the parallel path
        let x = try randomTensor([4, 16, 17, 19], seed: 81, requiresGrad: false)
        for (k, s, p, d, ceil) in [((2, 2), (2, 2), (0, 0), (1, 1), false), ((3, 3), (2, 2), (1, 1), (1, 1), true),
                                   ((3, 2), (1, 3), (1, 1), (2, 1), true)] {
            let y = try maxPool2d(x, kernel: k, stride: s, padding: p, dilation: d, ceilMode: ceil)
            #expect(y.scalars == referenceMaxPool(x, k: k, s: s, p: p, d: d, ho: y.shape[2], wo: y.shape[3]))
        }
    }

    @Test func maxPoolFlatPlanesMatchRowByRow() throws {
        // the two forward kernels on the same planes: values (NaN where NaN) and argmax indices
        let cases: [(k: (Int, Int), s: (Int, Int), p: (Int, Int), d: (Int, Int), ceil: Bool, hw: (Int, Int))] = [
            ((3, 3), (1, 1), (1, 1), (1, 1), false, (8, 8)),     // GoogLeNet's branch pool
            ((3, 3), (2, 2), (0, 0), (1, 1), true, (9, 9)),      // ceil mode, windows past the input
            ((3, 3), (2, 2), (1, 1), (1, 1), false, (16, 16)),   // ResNet's stem pool
            ((2, 2), (2, 2), (0, 0), (1, 1), false, (4, 4)),
            ((3, 2), (1, 3), (1, 1), (2, 1), true, (7, 11)),     // dilated, rectangular
            ((2, 3), (2, 1), (1, 0), (1, 1), true, (5, 6)),
            ((3, 3), (1, 1), (1, 1), (1, 1), false, (2, 2)),     // windows mostly padding
            ((3, 3), (1, 1), (1, 1), (1, 1), false, (20, 40)),   // stride 1, rows of 40
        ]
        for c in cases {
            let x = try randomTensor([3, 5, c.hw.0, c.hw.1], seed: 71, requiresGrad: false)
            // NaNs, infinities and ties
            for i in stride(from: 3, to: x.count, by: 29) { x.data[i] = .nan }
            for i in stride(from: 5, to: x.count, by: 17) { x.data[i] = -.infinity }
            for i in stride(from: 7, to: x.count, by: 13) { x.data[i] = 0.5 }
            var g = PoolGeometry(planes: 15, height: c.hw.0, width: c.hw.1, kernelH: c.k.0, kernelW: c.k.1,
                                 strideH: c.s.0, strideW: c.s.1, padH: c.p.0, padW: c.p.1, outHeight: 0, outWidth: 0)
            (g.dilationH, g.dilationW) = c.d
            g.outHeight = PoolGeometry.outputSize(input: c.hw.0, kernel: c.k.0, pad: c.p.0, stride: c.s.0, dilation: c.d.0, ceilMode: c.ceil)
            g.outWidth = PoolGeometry.outputSize(input: c.hw.1, kernel: c.k.1, pad: c.p.1, stride: c.s.1, dilation: c.d.1, ceilMode: c.ceil)
            let count = 15 * g.outPlane
            var (yFlat, yRows) = ([Float](repeating: 0, count: count), [Float](repeating: 0, count: count))
            var (iFlat, iRows) = ([Int32](repeating: 0, count: count), [Int32](repeating: 0, count: count))
            MaxPoolKernel.forwardFlat(g, x: x.data, y: &yFlat, indices: &iFlat)
            MaxPoolKernel.forwardRows(g, x: x.data, y: &yRows, indices: &iRows)
            #expect(zip(yFlat, yRows).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "values, \(c)")
            #expect(iFlat == iRows, "indices, \(c)")
            #expect(yRows.contains { $0.isNaN })
        }
    }

    static let maxPoolCases: [(k: (Int, Int), s: (Int, Int)?, p: (Int, Int), d: (Int, Int), ceil: Bool, hw: (Int, Int))] = [
        ((2, 2), nil, (0, 0), (1, 1), false, (6, 6)),
        ((3, 3), (2, 2), (1, 1), (1, 1), false, (7, 6)),
        ((2, 2), (2, 2), (0, 0), (1, 1), true, (5, 7)),       // ceil mode, partial windows
        ((3, 3), (2, 2), (1, 1), (1, 1), true, (6, 5)),       // ceil mode with padding
        ((3, 2), (1, 2), (1, 1), (2, 1), false, (7, 6)),      // dilated, rectangular
        ((2, 3), (2, 1), (1, 0), (1, 1), true, (5, 6)),
    ]

    @Test(arguments: 0..<maxPoolCases.count)
    func maxPoolGradients(_ index: Int) throws {
        let c = Self.maxPoolCases[index]
        try expectGradientsMatch([distinctTensor([2, 2, c.hw.0, c.hw.1], seed: UInt64(90 + index))]) { t in
            try maxPool2d(t[0], kernel: c.k, stride: c.s, padding: c.p, dilation: c.d, ceilMode: c.ceil)
        }
    }

    // MARK: - average pooling

    @Test func avgPoolHandComputed() throws {
        // 4×4 ramp, 2×2 blocks: (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, 11.5, 13.5
        #expect(try avgPool2d(ramp(4, 4), kernel: (2, 2)).scalars == [3.5, 5.5, 11.5, 13.5])
        // 3×3, stride 2, padding 1: windows rows/cols {−1…1}, {1…3}
        //   (0,0) sums 1+2+5+6 = 14; (0,1) 2+3+4+6+7+8 = 30; (1,0) 5+6+9+10+13+14 = 57;
        //   (1,1) 6+7+8+10+11+12+14+15+16 = 99
        // count_include_pad: every window lies inside the padded extent → ÷9
        let inc = try avgPool2d(ramp(4, 4), kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        expectClose(inc.scalars, [14.0 / 9, 30.0 / 9, 57.0 / 9, 99.0 / 9], atol: 0, rtol: 1e-6)
        // count_include_pad false: ÷ the input elements covered (4, 6, 6, 9)
        let exc = try avgPool2d(ramp(4, 4), kernel: (3, 3), stride: (2, 2), padding: (1, 1), countIncludePad: false)
        expectClose(exc.scalars, [14.0 / 4, 30.0 / 6, 57.0 / 6, 99.0 / 9], atol: 0, rtol: 1e-6)
        // divisor override 3
        let o = try avgPool2d(ramp(4, 4), kernel: (2, 2), divisorOverride: 3)
        expectClose(o.scalars, [14.0 / 3, 22.0 / 3, 46.0 / 3, 54.0 / 3], atol: 0, rtol: 1e-6)
    }

    @Test func avgPoolCeilModeDivisors() throws {
        // 5×5 ramp, k 2, s 2, ceil, no padding: the last row/column windows hang past the (zero)
        // padding; torch clips them to the padded extent [0, 5), so they divide by 2 or 1, even
        // with count_include_pad:
        //   (0,2): (5+10)/2 = 7.5;  (2,0): (21+22)/2 = 21.5;  (2,2): 25/1
        let y = try avgPool2d(ramp(5, 5), kernel: (2, 2), ceilMode: true)
        #expect(y.shape == [1, 1, 3, 3])
        expectClose(y.scalars, [4, 6, 7.5, 14, 16, 17.5, 21.5, 23.5, 25], atol: 0, rtol: 1e-6)
        // 4×4 ramp, k 3, s 2, p 1, ceil → 3×3; padded extent [−1, 5):
        //   window starts −1, 1, 3 → clipped to [−1, 2), [1, 4), [3, 5): sizes 3, 3, 2
        //   input parts [0, 2), [1, 4), [3, 4)
        // (0,0): 1+2+5+6 = 14 over 3·3 = 9 (include) / 2·2 = 4 (exclude)
        // (0,2): rows [0,2) × col 3: 4+8 = 12 over 3·2 = 6 / 2·1 = 2
        // (2,2): x[3][3] = 16 over 2·2 = 4 / 1
        // (1,1): rows/cols [1,4): 6+7+8+10+11+12+14+15+16 = 99 over 9 / 9
        // (2,0): row 3 × cols [0,2): 13+14 = 27 over 2·3 = 6 / 1·2 = 2
        let inc = try avgPool2d(ramp(4, 4), kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true)
        #expect(inc.shape == [1, 1, 3, 3])
        expectClose([inc.data[0], inc.data[2], inc.data[4], inc.data[6], inc.data[8]],
                    [14.0 / 9, 12.0 / 6, 99.0 / 9, 27.0 / 6, 16.0 / 4], atol: 0, rtol: 1e-6)
        let exc = try avgPool2d(ramp(4, 4), kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true,
                                countIncludePad: false)
        expectClose([exc.data[0], exc.data[2], exc.data[4], exc.data[6], exc.data[8]],
                    [14.0 / 4, 12.0 / 2, 99.0 / 9, 27.0 / 2, 16.0], atol: 0, rtol: 1e-6)
        // the override wins over both rules
        let o = try avgPool2d(ramp(4, 4), kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true, divisorOverride: 2)
        #expect(o.data[8] == 8)
    }

    @Test func avgPoolMatchesReferenceOnLargeInput() throws {
        // 64 planes: the parallel path; same summation order as torch, so equal to the last bit
        let x = try randomTensor([4, 16, 17, 19], seed: 82, requiresGrad: false)
        for (k, s, p, ceil, include, divisor) in [((2, 2), (2, 2), (0, 0), false, true, nil as Int?),
                                                  ((3, 3), (2, 2), (1, 1), true, true, nil),
                                                  ((3, 3), (2, 2), (1, 1), true, false, nil),
                                                  ((3, 2), (1, 3), (1, 1), true, true, 4)] {
            let y = try avgPool2d(x, kernel: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: include,
                                  divisorOverride: divisor)
            #expect(y.scalars == referenceAvgPool(x, k: k, s: s, p: p, ho: y.shape[2], wo: y.shape[3],
                                                  countIncludePad: include, divisorOverride: divisor))
        }
    }

    static let avgPoolCases: [(k: (Int, Int), s: (Int, Int)?, p: (Int, Int), ceil: Bool, include: Bool, divisor: Int?, hw: (Int, Int))] = [
        ((2, 2), nil, (0, 0), false, true, nil, (6, 6)),
        ((3, 3), (2, 2), (1, 1), false, true, nil, (7, 6)),
        ((3, 3), (2, 2), (1, 1), false, false, nil, (7, 6)),  // count_include_pad false
        ((2, 2), (2, 2), (0, 0), true, true, nil, (5, 7)),    // ceil mode, windows past the border
        ((3, 3), (2, 2), (1, 1), true, true, nil, (6, 5)),    // ceil mode with padding, both divisors
        ((3, 3), (2, 2), (1, 1), true, false, nil, (6, 5)),
        ((3, 2), (1, 2), (1, 1), false, true, 5, (5, 6)),     // divisor override, rectangular
    ]

    @Test(arguments: 0..<avgPoolCases.count)
    func avgPoolGradients(_ index: Int) throws {
        let c = Self.avgPoolCases[index]
        try expectGradientsMatch([randomTensor([2, 2, c.hw.0, c.hw.1], seed: UInt64(100 + index))]) { t in
            try avgPool2d(t[0], kernel: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil,
                          countIncludePad: c.include, divisorOverride: c.divisor)
        }
    }

    // MARK: - adaptive average pooling

    @Test func adaptiveAvgPoolHandComputed() throws {
        // width 5 → 3 bins: [0, 2), [1, 4), [3, 5) → (1+2)/2, (2+3+4)/3, (4+5)/2
        let a = try adaptiveAvgPool2d(ramp(1, 5), outputSize: (1, 3))
        expectClose(a.scalars, [1.5, 3, 4.5], atol: 0, rtol: 1e-6)
        // width 2 → 3 bins (O > I): [0, 1), [0, 2), [1, 2) → 1, 1.5, 2
        let b = try adaptiveAvgPool2d(ramp(1, 2), outputSize: (1, 3))
        expectClose(b.scalars, [1, 1.5, 2], atol: 0, rtol: 1e-6)
        // global average of 1…16 = 8.5; 4×4 → 2×2 is 2×2 average pooling
        #expect(try adaptiveAvgPool2d(ramp(4, 4), outputSize: (1, 1)).scalars == [8.5])
        #expect(try adaptiveAvgPool2d(ramp(4, 4), outputSize: (2, 2)).scalars == [3.5, 5.5, 11.5, 13.5])
        // 1×1 → 2×3 replicates
        #expect(try adaptiveAvgPool2d(Tensor([7], shape: [1, 1, 1, 1]), outputSize: (2, 3)).scalars == [7, 7, 7, 7, 7, 7])
        #expect(try adaptiveAvgPool2d(ramp(3, 3), outputSize: (0, 2)).shape == [1, 1, 0, 2])
    }

    static let adaptiveCases: [(hw: (Int, Int), out: (Int, Int))] = [
        ((7, 6), (3, 4)),   // O does not divide I: overlapping bins
        ((5, 5), (1, 1)),
        ((3, 2), (5, 7)),   // O > I
        ((6, 6), (3, 3)),
    ]

    @Test(arguments: 0..<adaptiveCases.count)
    func adaptiveAvgPoolGradients(_ index: Int) throws {
        let c = Self.adaptiveCases[index]
        try expectGradientsMatch([randomTensor([2, 3, c.hw.0, c.hw.1], seed: UInt64(110 + index))]) { t in
            try adaptiveAvgPool2d(t[0], outputSize: c.out)
        }
    }

    // MARK: - nearest upsampling

    @Test func upsampleNearestHandComputed() throws {
        // [[1, 2], [3, 4]] scaled (2, 3): rows 0,0,1,1; cols 0,0,0,1,1,1
        let y = try upsampleNearest2d(ramp(2, 2), scale: (2, 3))
        #expect(y.shape == [1, 1, 4, 6])
        #expect(y.scalars == [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4])
        // size 3 → 5: scale 3/5 = 0.6, src = ⌊0.6·d⌋ = 0, 0, 1, 1, 2
        #expect(try upsampleNearest2d(ramp(1, 3), size: (1, 5)).scalars == [1, 1, 2, 2, 3])
        // size 5 → 3 (downsampling): scale 5/3, src = ⌊1.667·d⌋ = 0, 1, 3
        #expect(try upsampleNearest2d(ramp(1, 5), size: (1, 3)).scalars == [1, 2, 4])
        // size 5 → 2: scale 2.5, src = 0, 2
        #expect(try upsampleNearest2d(ramp(1, 5), size: (2, 2)).scalars == [1, 3, 1, 3])
        // 2 → 4 is the out == 2·in case: d >> 1
        #expect(try upsampleNearest2d(ramp(1, 2), size: (1, 4)).scalars == [1, 1, 2, 2])
        // integer scale 3 equals size 3·in; scale 25 keeps every block 25 wide (float 1/25 rounds
        // below 0.04, and torch's float product still lands on the block boundaries)
        #expect(try upsampleNearest2d(ramp(2, 3), scale: (3, 3)).scalars == (try upsampleNearest2d(ramp(2, 3), size: (6, 9))).scalars)
        let wide = try upsampleNearest2d(ramp(1, 4), scale: (1, 25))
        #expect(wide.scalars == (1...4).flatMap { [Float](repeating: Float($0), count: 25) })
    }

    static let upsampleCases: [(hw: (Int, Int), scale: (Int, Int)?, size: (Int, Int)?)] = [
        ((3, 4), (2, 2), nil),
        ((3, 2), (3, 1), nil),
        ((3, 4), nil, (7, 5)),
        ((5, 7), nil, (2, 3)),   // downsampling: some inputs get no gradient
    ]

    @Test(arguments: 0..<upsampleCases.count)
    func upsampleNearestGradients(_ index: Int) throws {
        let c = Self.upsampleCases[index]
        try expectGradientsMatch([randomTensor([2, 2, c.hw.0, c.hw.1], seed: UInt64(120 + index))]) { t in
            if let scale = c.scale { return try upsampleNearest2d(t[0], scale: scale) }
            return try upsampleNearest2d(t[0], size: c.size!)
        }
    }

    @Test func upsampleBackwardSumsTheCopies() throws {
        // each input value is copied 2·3 = 6 times: its gradient is the sum of the 6 seeds (all 1)
        let x = try Tensor([1, 2], shape: [1, 1, 1, 2], requiresGrad: true)
        try upsampleNearest2d(x, scale: (2, 3)).backward()
        #expect(x.grad!.scalars == [6, 6])
    }

    // MARK: - invalid arguments

    @Test func poolingRejectsInvalidArguments() throws {
        let x = try Tensor(zeros: [1, 2, 3, 3])
        // wrong rank, empty non-batch dimension
        #expect(throws: MedSynthError.self) { try maxPool2d(Tensor(zeros: [2, 3, 3]), kernel: (2, 2)) }
        #expect(throws: MedSynthError.self) { try avgPool2d(Tensor(zeros: [2, 3, 3]), kernel: (2, 2)) }
        #expect(throws: MedSynthError.self) { try adaptiveAvgPool2d(Tensor(zeros: [3, 3]), outputSize: (1, 1)) }
        #expect(throws: MedSynthError.self) { try upsampleNearest2d(Tensor(zeros: [1, 3, 3]), scale: (2, 2)) }
        #expect(throws: MedSynthError.self) { try maxPool2d(Tensor(zeros: [1, 0, 3, 3]), kernel: (2, 2)) }
        // kernel larger than the padded input
        #expect(throws: MedSynthError.self) { try maxPool2d(x, kernel: (4, 4)) }
        #expect(throws: MedSynthError.self) { try avgPool2d(x, kernel: (4, 4), stride: (1, 1)) }
        // 2×2 input padded to 4×4 with a 5×5 kernel: ⌊−1/5⌋ + 1 = 0 (truncating division would accept it)
        #expect(throws: MedSynthError.self) { try avgPool2d(Tensor(zeros: [1, 2, 2, 2]), kernel: (5, 5), padding: (1, 1)) }
        #expect(throws: MedSynthError.self) { try maxPool2d(x, kernel: (2, 2), dilation: (3, 3)) }  // effective kernel 4
        // padding more than half the kernel
        #expect(throws: MedSynthError.self) { try maxPool2d(x, kernel: (2, 2), padding: (2, 0)) }
        #expect(throws: MedSynthError.self) { try avgPool2d(x, kernel: (3, 3), padding: (0, 2)) }
        // non-positive kernel, stride, dilation; negative padding; zero divisor
        #expect(throws: MedSynthError.self) { try maxPool2d(x, kernel: (0, 2)) }
        #expect(throws: MedSynthError.self) { try maxPool2d(x, kernel: (2, 2), stride: (0, 1)) }
        #expect(throws: MedSynthError.self) { try maxPool2d(x, kernel: (2, 2), dilation: (1, 0)) }
        #expect(throws: MedSynthError.self) { try avgPool2d(x, kernel: (2, 2), padding: (-1, 0)) }
        #expect(throws: MedSynthError.self) { try avgPool2d(x, kernel: (2, 2), divisorOverride: 0) }
        // adaptive / upsampling sizes
        #expect(throws: MedSynthError.self) { try adaptiveAvgPool2d(x, outputSize: (-1, 2)) }
        #expect(throws: MedSynthError.self) { try upsampleNearest2d(x, scale: (0, 2)) }
        #expect(throws: MedSynthError.self) { try upsampleNearest2d(x, size: (0, 2)) }
    }

    @Test func emptyBatchGivesEmptyOutput() throws {
        #expect(try maxPool2d(Tensor(zeros: [0, 2, 4, 4]), kernel: (2, 2)).shape == [0, 2, 2, 2])
        #expect(try avgPool2d(Tensor(zeros: [0, 2, 4, 4]), kernel: (2, 2)).shape == [0, 2, 2, 2])
        #expect(try upsampleNearest2d(Tensor(zeros: [0, 2, 4, 4]), scale: (2, 2)).shape == [0, 2, 8, 8])
    }
}
