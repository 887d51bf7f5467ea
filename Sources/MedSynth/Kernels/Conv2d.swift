// 2-D convolution (cross-correlation, as torch.nn.Conv2d): geometry, and the entry points.
//
// The forward pass, the weight gradient and the stride-1 input gradient run on the direct kernels
// of Conv2dDirect.swift; the input gradient of strided convolutions runs on im2col + sgemm here.
//
// Shapes: x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout], y [N, Cout, Ho, Wo],
// Ho = ⌊(H + 2·padH − dilH·(kH−1) − 1) / strideH⌋ + 1 (likewise Wo).
// im2col + sgemm: per image and group, im2col lays the receptive fields out as col [Cin/g·kH·kW, Ho·Wo], so
//   forward   y_g   = W_g · col
//   backward  dW_g += dy_g · colᵀ        dcol = W_gᵀ · dy_g, then col2im adds dcol into dx
// Images are spread over the thread pool; each thread has its own col buffer and its own partial
// dW, summed in a fixed order at the end (deterministic). 1×1 stride-1 unpadded convolutions skip
// im2col: the image itself is the col matrix.

import Glibc

public struct ConvGeometry: Equatable {
    public var batch, inChannels, height, width: Int
    public var outChannels, kernelH, kernelW: Int
    public var strideH, strideW, padH, padW, dilationH, dilationW, groups: Int

    public var outHeight: Int { (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    /// Rows of the col matrix: one per (input channel of the group, ki, kj).
    var colRows: Int { inPerGroup * kernelH * kernelW }
    var outPlane: Int { outHeight * outWidth }
    var isPointwise: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0
    }
    /// Multiply-adds ×2 of the forward pass.
    public var forwardFlops: Double {
        2 * Double(batch) * Double(outChannels) * Double(outPlane) * Double(colRows)
    }

    /// Checks that the geometry describes a valid convolution; the message says what is wrong.
    public func validate() throws {
        try require(batch >= 1 && inChannels >= 1 && height >= 1 && width >= 1 && outChannels >= 1,
                    "conv2d: sizes must be positive (got input [\(batch), \(inChannels), \(height), \(width)], \(outChannels) output channels)")
        try require(kernelH >= 1 && kernelW >= 1 && strideH >= 1 && strideW >= 1 && dilationH >= 1 && dilationW >= 1,
                    "conv2d: kernel, stride and dilation must be at least 1")
        try require(padH >= 0 && padW >= 0, "conv2d: padding must be non-negative")
        try require(groups >= 1 && inChannels % groups == 0 && outChannels % groups == 0,
                    "conv2d: groups (\(groups)) must divide input (\(inChannels)) and output (\(outChannels)) channels")
        try require(outHeight >= 1 && outWidth >= 1,
                    "conv2d: a \(kernelH)x\(kernelW) kernel (dilation \(dilationH)) does not fit a \(height)x\(width) input with padding \(padH)")
    }
}

enum ConvKernel {
    /// col [colRows, Ho·Wo] ← the receptive fields of one group's channels `x` [inPerGroup, H, W].
    static func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>) {
        let (h, w, ho, wo) = (g.height, g.width, g.outHeight, g.outWidth)
        var row = col
        for c in 0..<g.inPerGroup {
            let plane = x + c * h * w
            for ki in 0..<g.kernelH {
                for kj in 0..<g.kernelW {
                    let xOffset = kj * g.dilationW - g.padW
                    for oy in 0..<ho {
                        let iy = oy * g.strideH - g.padH + ki * g.dilationH
                        let dst = row + oy * wo
                        if iy < 0 || iy >= h { dst.update(repeating: 0, count: wo); continue }
                        let src = plane + iy * w
                        if g.strideW == 1 {
                            // valid ox: 0 <= ox + xOffset < w
                            let lo = min(wo, max(0, -xOffset)), hi = max(lo, min(wo, w - xOffset))
                            if lo > 0 { dst.update(repeating: 0, count: lo) }
                            if hi > lo { dst.advanced(by: lo).update(from: src + lo + xOffset, count: hi - lo) }
                            if hi < wo { dst.advanced(by: hi).update(repeating: 0, count: wo - hi) }
                        } else {
                            for ox in 0..<wo {
                                let ix = ox * g.strideW + xOffset
                                dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                            }
                        }
                    }
                    row += ho * wo
                }
            }
        }
    }

    /// dx [inPerGroup, H, W] += the col-shaped gradient folded back onto the image.
    static func col2imAdd(_ col: UnsafePointer<Float>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<Float>) {
        let (h, w, ho, wo) = (g.height, g.width, g.outHeight, g.outWidth)
        var row = col
        for c in 0..<g.inPerGroup {
            let plane = dx + c * h * w
            for ki in 0..<g.kernelH {
                for kj in 0..<g.kernelW {
                    let xOffset = kj * g.dilationW - g.padW
                    for oy in 0..<ho {
                        let iy = oy * g.strideH - g.padH + ki * g.dilationH
                        if iy < 0 || iy >= h { continue }
                        let src = row + oy * wo
                        let dst = plane + iy * w
                        if g.strideW == 1 {
                            let lo = min(wo, max(0, -xOffset)), hi = max(lo, min(wo, w - xOffset))
                            let d = dst + xOffset
                            for ox in lo..<hi { d[ox] += src[ox] }
                        } else {
                            for ox in 0..<wo {
                                let ix = ox * g.strideW + xOffset
                                if ix >= 0 && ix < w { dst[ix] += src[ox] }
                            }
                        }
                    }
                    row += ho * wo
                }
            }
        }
    }

    /// y = conv(x, weight) + bias (direct kernel, every geometry).
    static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        DirectConv.forward(g, x: x, weight: weight, bias: bias, y: y)
    }

    /// Accumulates the gradients that are asked for (non-nil): dx += ∂L/∂x, dWeight += ∂L/∂W,
    /// dBias += ∂L/∂b, from dy. The weight gradient and the stride-1 input gradient run on the
    /// direct kernels; strided input gradients on im2col + sgemm (`backwardGemm`).
    static func backward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                         dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) {
        if let dWeight { DirectConv.weightGradient(g, x: x, dy: dy, dWeight: dWeight) }
        if let dx {
            if let t = DirectConv.inputGradientGeometry(g) {
                DirectConv.inputGradient(g, t, weight: weight, dy: dy, dx: dx)
            } else {
                backwardGemm(g, x: x, weight: weight, dy: dy, dx: dx, dWeight: nil)
            }
        }
        if let dBias {
            let outImage = g.outChannels * g.outPlane
            for co in 0..<g.outChannels {
                var s: Float = 0
                for n in 0..<g.batch {
                    let row = dy + n * outImage + co * g.outPlane
                    s += Reduce.sum(row, g.outPlane)
                }
                dBias[co] += s
            }
        }
    }

    /// dx += ∂L/∂x and dWeight += ∂L/∂W (those asked for) through im2col + sgemm, for any geometry.
    static func backwardGemm(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                             dWeight: UnsafeMutablePointer<Float>?) {
        let inImage = g.inChannels * g.height * g.width, outImage = g.outChannels * g.outPlane
        let weightCount = g.outChannels * g.colRows
        let colCount = g.isPointwise ? 0 : g.colRows * g.outPlane
        let threads = ThreadPool.shared.threadCount
        // per thread: a col buffer, and (after the first thread, which adds straight into dWeight's
        // zeroed partial) a partial dW
        let partialCount = dWeight == nil ? 0 : weightCount
        let perThread = colCount + partialCount
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, perThread * threads))
        defer { scratch.deallocate() }
        if partialCount > 0 {
            for t in 0..<threads { (scratch + t * perThread + colCount).initialize(repeating: 0, count: partialCount) }
        }
        var used = [Bool](repeating: false, count: threads)
        used.withUnsafeMutableBufferPointer { usedFlags in
            ThreadPool.shared.run(count: g.batch) { participant, lo, hi in
                usedFlags[participant] = true
                let col = scratch + participant * perThread
                let dW = col + colCount
                for n in lo..<hi {
                    let xn = x + n * inImage, dyn = dy + n * outImage
                    for group in 0..<g.groups {
                        let xg = xn + group * g.inPerGroup * g.height * g.width
                        let dyg = dyn + group * g.outPerGroup * g.outPlane
                        let wg = weight + group * g.outPerGroup * g.colRows
                        if partialCount > 0 {
                            let b: UnsafePointer<Float>
                            if g.isPointwise { b = xg } else { im2col(xg, g, col); b = UnsafePointer(col) }
                            // dW_g [outPerGroup, colRows] += dy_g [outPerGroup, P] · colᵀ [P, colRows]
                            BLAS.gemm(transB: true, m: g.outPerGroup, n: g.colRows, k: g.outPlane,
                                      a: dyg, lda: g.outPlane, b: b, ldb: g.outPlane, beta: 1,
                                      c: dW + group * g.outPerGroup * g.colRows, ldc: g.colRows)
                        }
                        if let dx {
                            let dxg = dx + n * inImage + group * g.inPerGroup * g.height * g.width
                            if g.isPointwise {
                                BLAS.gemm(transA: true, m: g.colRows, n: g.outPlane, k: g.outPerGroup,
                                          a: wg, lda: g.colRows, b: dyg, ldb: g.outPlane, beta: 1,
                                          c: dxg, ldc: g.outPlane)
                            } else {
                                BLAS.gemm(transA: true, m: g.colRows, n: g.outPlane, k: g.outPerGroup,
                                          a: wg, lda: g.colRows, b: dyg, ldb: g.outPlane, beta: 0,
                                          c: col, ldc: g.outPlane)
                                col2imAdd(col, g, dxg)
                            }
                        }
                    }
                }
            }
        }
        if let dWeight {
            for t in 0..<threads where used[t] {
                let partial = scratch + t * perThread + colCount
                for i in 0..<weightCount { dWeight[i] += partial[i] }
            }
        }
    }
}
