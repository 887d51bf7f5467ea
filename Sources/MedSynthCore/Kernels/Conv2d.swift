// 2-D convolution (cross-correlation, as torch.nn.Conv2d): geometry and the kernel entry points.
//
// Shapes: x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout], y [N, Cout, Ho, Wo],
// Ho = ⌊(H + 2·padH − dilH·(kH−1) − 1) / strideH⌋ + 1 (likewise Wo).
// The products run on the direct kernels of Conv2dDirect*.swift (no im2col matrix): forward, weight
// gradient, and the input gradient either as a stride-1 convolution of dy with the flipped kernel
// or, for strides and wide padding, phase by phase. 3×3 stride-1 convolutions with enough channels
// run all three products through Winograd F(4×4, 3×3) (Conv2dWinograd*.swift; on small maps the
// forward runs it across the batch, Conv2dWinogradBatched.swift), and convolutions
// with small output maps as matrix products over the whole batch (Conv2dColumns.swift); depthwise
// convolutions run over whole planes (Conv2dDepthwise.swift).

import Glibc

public struct ConvGeometry: Equatable {
    public var batch, inChannels, height, width: Int
    public var outChannels, kernelH, kernelW: Int
    public var strideH, strideW, padH, padW, dilationH, dilationW, groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int, kernelH: Int, kernelW: Int,
                strideH: Int, strideW: Int, padH: Int, padW: Int, dilationH: Int, dilationW: Int, groups: Int) {
        (self.batch, self.inChannels, self.height, self.width) = (batch, inChannels, height, width)
        (self.outChannels, self.kernelH, self.kernelW) = (outChannels, kernelH, kernelW)
        (self.strideH, self.strideW, self.padH, self.padW) = (strideH, strideW, padH, padW)
        (self.dilationH, self.dilationW, self.groups) = (dilationH, dilationW, groups)
    }

    public var outHeight: Int { (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    package var inPerGroup: Int { inChannels / groups }
    package var outPerGroup: Int { outChannels / groups }
    /// Rows of the col matrix: one per (input channel of the group, ki, kj).
    package var colRows: Int { inPerGroup * kernelH * kernelW }
    package var outPlane: Int { outHeight * outWidth }
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

package enum ConvKernel {
    /// y = conv(x, weight) + bias: Winograd F(4×4, 3×3) for the 3×3 stride-1 convolutions it
    /// suits (per image, or across the batch for small maps), columns for small output maps, the depthwise kernel for one input channel per group,
    /// the direct kernel for every other geometry (likewise for the gradients).
    /// With `cacheWeights` (inference: the weights do not change between calls), the Winograd
    /// paths keep their transformed weights (`WinogradWeightCache`).
    package static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, cacheWeights: Bool = false) throws {
        if DepthwiseConv.applies(g) {
            DepthwiseConv.forward(g, x: x, weight: weight, bias: bias, y: y)
        } else if Winograd.applies(g) {
            try Winograd.forward(g, x: x, weight: weight, bias: bias, y: y, cacheWeights: cacheWeights)
        } else if BatchedWinograd.applies(g) {
            try BatchedWinograd.forward(g, x: x, weight: weight, bias: bias, y: y, cacheWeights: cacheWeights)
        } else if ColumnConv.applies(g) {
            try ColumnConv.forward(g, x: x, weight: weight, bias: bias, y: y)
        } else {
            try DirectConv.forward(g, x: x, weight: weight, bias: bias, y: y)
        }
    }

    /// Accumulates the gradients that are asked for (non-nil): dx += ∂L/∂x, dWeight += ∂L/∂W,
    /// dBias += ∂L/∂b, from dy.
    package static func backward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                         dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) throws {
        if DepthwiseConv.applies(g) {
            DepthwiseConv.backward(g, x: x, weight: weight, dy: dy, dx: dx, dWeight: dWeight)
        } else if !Winograd.applies(g) && ColumnConv.applies(g) {
            try ColumnConv.backward(g, x: x, weight: weight, dy: dy, dx: dx, dWeight: dWeight)
        } else {
            if let dWeight {
                if Winograd.applies(g) {
                    try Winograd.weightGradient(g, x: x, dy: dy, dWeight: dWeight)
                } else {
                    try DirectConv.weightGradient(g, x: x, dy: dy, dWeight: dWeight)
                }
            }
            if let dx {
                if let t = DirectConv.inputGradientGeometry(g) {
                    if Winograd.applies(t) {
                        try Winograd.inputGradient(g, t, weight: weight, dy: dy, dx: dx)
                    } else {
                        try DirectConv.inputGradient(g, t, weight: weight, dy: dy, dx: dx)
                    }
                } else {
                    try DirectConv.phasedInputGradient(g, weight: weight, dy: dy, dx: dx)
                }
            }
        }
        if let dBias {
            // channels over the threads; each channel summed by one thread, images in order
            let outImage = g.outChannels * g.outPlane
            parallelRanges(g.outChannels, grain: max(1, 32768 / max(1, g.batch * g.outPlane))) { lo, hi in
                for co in lo..<hi {
                    var s: Float = 0
                    for n in 0..<g.batch { s += Reduce.sum(dy + n * outImage + co * g.outPlane, g.outPlane) }
                    dBias[co] += s
                }
            }
        }
    }
}
