// Differentiable pooling and nearest-neighbour resizing on NCHW tensors
// (torch.nn.functional.max_pool2d / avg_pool2d / adaptive_avg_pool2d / interpolate(mode="nearest")).

/// Checks x is [N, C, H, W] with C, H, W ≥ 1 (N may be 0, as torch allows) and returns the sizes.
private func planesOf(_ x: Tensor, _ op: String) throws -> (n: Int, c: Int, h: Int, w: Int) {
    try require(x.rank == 4, "\(op): input must be [N, C, H, W], got \(x.shape)")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    try require(c >= 1 && h >= 1 && w >= 1,
                "\(op): input must have non-zero channels, height and width (only the batch may be empty), got \(x.shape)")
    return (n, c, h, w)
}

/// Shared checks and output size of max/avg pooling (torch's pool2d_shape_check).
private func poolGeometry(_ x: Tensor, _ op: String, kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
                          dilation: (Int, Int), ceilMode: Bool) throws -> PoolGeometry {
    let (n, c, h, w) = try planesOf(x, op)
    let stride = stride ?? kernel
    try require(kernel.0 >= 1 && kernel.1 >= 1, "\(op): kernel size must be at least 1, got \(kernel)")
    try require(stride.0 >= 1 && stride.1 >= 1, "\(op): stride must be at least 1, got \(stride)")
    try require(dilation.0 >= 1 && dilation.1 >= 1, "\(op): dilation must be at least 1, got \(dilation)")
    try require(padding.0 >= 0 && padding.1 >= 0, "\(op): padding must be non-negative, got \(padding)")
    let effective = ((kernel.0 - 1) * dilation.0 + 1, (kernel.1 - 1) * dilation.1 + 1)
    try require(padding.0 <= effective.0 / 2 && padding.1 <= effective.1 / 2,
                "\(op): padding \(padding) must be at most half of the (effective) kernel size \(effective)")
    let ho = PoolGeometry.outputSize(input: h, kernel: kernel.0, pad: padding.0, stride: stride.0,
                                     dilation: dilation.0, ceilMode: ceilMode)
    let wo = PoolGeometry.outputSize(input: w, kernel: kernel.1, pad: padding.1, stride: stride.1,
                                     dilation: dilation.1, ceilMode: ceilMode)
    try require(ho >= 1 && wo >= 1,
                "\(op): a \(kernel.0)x\(kernel.1) kernel (dilation \(dilation), padding \(padding)) does not fit the \(h)x\(w) input: output size would be \(ho)x\(wo)")
    return PoolGeometry(planes: n * c, height: h, width: w, kernelH: kernel.0, kernelW: kernel.1,
                        strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
                        dilationH: dilation.0, dilationW: dilation.1, outHeight: ho, outWidth: wo)
}

// MARK: - max pooling

/// 2-D max pooling, `torch.nn.functional.max_pool2d`, for x [N, C, H, W] → [N, C, Ho, Wo]:
///   y[n, c, i, j] = max_{a<kH, b<kW} x[n, c, i·sH − pH + a·dH, j·sW − pW + b·dW]
/// with the padding counting as −∞ and
///   Ho = ⌊(H + 2pH − dH(kH − 1) − 1 + (ceilMode ? sH − 1 : 0)) / sH⌋ + 1
/// (ceil mode: one less when the last window would start at or past H + pH). Defaults as torch:
/// stride = kernel, padding 0, dilation 1, floor mode. Padding must be at most half the effective
/// kernel (dH(kH − 1) + 1)/2. A NaN in a window makes its output NaN. The gradient goes to the
/// first maximum of each window (row-major), as torch's argmax indices.
public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      dilation: (Int, Int) = (1, 1), ceilMode: Bool = false) throws -> Tensor {
    let g = try poolGeometry(x, "maxPool2d", kernel: kernel, stride: stride, padding: padding,
                             dilation: dilation, ceilMode: ceilMode)
    try require(g.inPlane <= Int(Int32.max), "maxPool2d: planes of more than 2^31 values are not supported, got \(x.shape)")
    let y = try Tensor(uninitialized: [x.shape[0], x.shape[1], g.outHeight, g.outWidth])
    // argmax offsets (Int32) in float-sized storage, so the engine's memory accounting sees them
    let indexStorage = try Storage(count: y.count)
    let indices = UnsafeMutableRawPointer(indexStorage.pointer).bindMemory(to: Int32.self, capacity: max(1, y.count))
    MaxPoolKernel.forward(g, x: x.data, y: y.data, indices: indices)
    return y.recording([x]) { dy in
        let indices = UnsafeMutableRawPointer(indexStorage.pointer).assumingMemoryBound(to: Int32.self)
        MaxPoolKernel.backward(g, dy: dy.data, indices: indices, dx: try x.gradPointer())
    }
}

// MARK: - average pooling

/// 2-D average pooling, `torch.nn.functional.avg_pool2d`, for x [N, C, H, W] → [N, C, Ho, Wo]:
///   y[n, c, i, j] = Σ_{window ∩ input} x / divisor
/// Output size as `maxPool2d` with dilation 1. The window [i·s − p, i·s − p + k) is clipped to the
/// padded extent [−p, H + p) and then to the input; the divisor is, as in torch's CPU kernel:
///   `divisorOverride` when given (must not be 0), else
///   countIncludePad ? the window's size within the padded extent (so a ceil-mode window that
///                     hangs past the padding counts only its part inside it)
///                   : the number of input elements in the window.
/// Defaults as torch: stride = kernel, padding 0, floor mode, countIncludePad true, no override.
/// Padding must be at most kernel/2.
public func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      ceilMode: Bool = false, countIncludePad: Bool = true, divisorOverride: Int? = nil) throws -> Tensor {
    let g = try poolGeometry(x, "avgPool2d", kernel: kernel, stride: stride, padding: padding,
                             dilation: (1, 1), ceilMode: ceilMode)
    if let divisorOverride { try require(divisorOverride != 0, "avgPool2d: divisorOverride must not be zero") }
    let y = try Tensor(uninitialized: [x.shape[0], x.shape[1], g.outHeight, g.outWidth])
    AvgPoolKernel.forward(g, countIncludePad: countIncludePad, divisorOverride: divisorOverride, x: x.data, y: y.data)
    return y.recording([x]) { dy in
        AvgPoolKernel.backward(g, countIncludePad: countIncludePad, divisorOverride: divisorOverride,
                               dy: dy.data, dx: try x.gradPointer())
    }
}

/// Adaptive 2-D average pooling, `torch.nn.functional.adaptive_avg_pool2d`, for x [N, C, H, W] →
/// [N, C, Ho, Wo] = outputSize: output (i, j) averages rows [⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉) and columns
/// [⌊j·W/Wo⌋, ⌈(j+1)·W/Wo⌉). Bins may overlap (Ho not dividing H) and repeat rows (Ho > H).
/// Output sizes must be ≥ 0 (0 gives an empty output, as torch).
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    let (n, c, h, w) = try planesOf(x, "adaptiveAvgPool2d")
    try require(outputSize.0 >= 0 && outputSize.1 >= 0,
                "adaptiveAvgPool2d: output size must be non-negative, got \(outputSize)")
    let (ho, wo) = outputSize
    let y = try Tensor(uninitialized: [n, c, ho, wo])
    AdaptiveAvgPoolKernel.forward(planes: n * c, height: h, width: w, outHeight: ho, outWidth: wo, x: x.data, y: y.data)
    return y.recording([x]) { dy in
        AdaptiveAvgPoolKernel.backward(planes: n * c, height: h, width: w, outHeight: ho, outWidth: wo,
                                       dy: dy.data, dx: try x.gradPointer())
    }
}

// MARK: - nearest-neighbour upsampling

private func upsampleNearest(_ x: Tensor, n: Int, c: Int, h: Int, w: Int, outH: Int, outW: Int,
                             scale: (Int, Int)?) throws -> Tensor {
    let rows = UpsampleNearestKernel.sourceIndices(inSize: h, outSize: outH, scaleFactor: scale?.0)
    let cols = UpsampleNearestKernel.sourceIndices(inSize: w, outSize: outW, scaleFactor: scale?.1)
    let y = try Tensor(uninitialized: [n, c, outH, outW])
    UpsampleNearestKernel.forward(planes: n * c, height: h, width: w, rows: rows, cols: cols, x: x.data, y: y.data)
    return y.recording([x]) { dy in
        UpsampleNearestKernel.backward(planes: n * c, height: h, width: w, rows: rows, cols: cols,
                                       dy: dy.data, dx: try x.gradPointer())
    }
}

/// Nearest-neighbour upsampling by integer factors, `torch.nn.Upsample(scale_factor=scale,
/// mode="nearest")`: x [N, C, H, W] → [N, C, H·sH, W·sW], each value repeated sH×sW times
/// (torch's index rule src = min(⌊dst·float(1/s)⌋, in − 1), which for integer s is ⌊dst/s⌋).
/// Scale factors must be at least 1.
public func upsampleNearest2d(_ x: Tensor, scale: (Int, Int)) throws -> Tensor {
    let (n, c, h, w) = try planesOf(x, "upsampleNearest2d")
    try require(scale.0 >= 1 && scale.1 >= 1, "upsampleNearest2d: scale factors must be at least 1, got \(scale)")
    let (outH, o1) = h.multipliedReportingOverflow(by: scale.0), (outW, o2) = w.multipliedReportingOverflow(by: scale.1)
    try require(!o1 && !o2 && checkedElementCount([n, c, outH, outW]) != nil,
                "upsampleNearest2d: output of \(x.shape) scaled by \(scale) is too large")
    return try upsampleNearest(x, n: n, c: c, h: h, w: w, outH: outH, outW: outW, scale: scale)
}

/// Nearest-neighbour resizing to a given size, `torch.nn.functional.interpolate(size=size,
/// mode="nearest")`: x [N, C, H, W] → [N, C, Ho, Wo] with y[.., i, j] = x[.., src(i), src(j)],
/// src(d) = min(⌊d·(in/out)⌋, in − 1) computed in float as torch (in/out = Float(in)/Float(out);
/// out == in copies, out == 2·in uses d/2). Works for down- and upsampling; sizes must be ≥ 1.
public func upsampleNearest2d(_ x: Tensor, size: (Int, Int)) throws -> Tensor {
    let (n, c, h, w) = try planesOf(x, "upsampleNearest2d")
    try require(size.0 >= 1 && size.1 >= 1, "upsampleNearest2d: output size must be at least 1, got \(size)")
    try require(checkedElementCount([n, c, size.0, size.1]) != nil, "upsampleNearest2d: output size \(size) is too large")
    return try upsampleNearest(x, n: n, c: c, h: h, w: w, outH: size.0, outW: size.1, scale: nil)
}
