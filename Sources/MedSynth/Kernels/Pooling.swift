// Pooling and nearest-neighbour resizing over NCHW planes (torch.nn.functional.max_pool2d,
// avg_pool2d, adaptive_avg_pool2d, interpolate(mode="nearest")).
//
// Every operation maps each of the N·C planes independently, so the planes are spread over the
// thread pool; backward passes write only into their own plane of dx (no races, deterministic).
// Window arithmetic follows torch's CPU kernels (aten/src/ATen/native/cpu/*Pool*Kernel.cpp,
// UpSampleKernel.cpp) so outputs, divisors and argmax choices are the same.

public struct PoolGeometry: Equatable {
    public var planes, height, width: Int
    public var kernelH, kernelW, strideH, strideW, padH, padW: Int
    public var dilationH = 1, dilationW = 1
    public var outHeight, outWidth: Int

    var inPlane: Int { height * width }
    var outPlane: Int { outHeight * outWidth }

    /// torch's `pooling_output_shape`: ⌊(in + 2p − d(k−1) − 1 + (ceil ? s−1 : 0)) / s⌋ + 1 (floor
    /// division, also for negative numerators), and in ceil mode one less when the last window
    /// would start at or beyond in + p (it must start inside the input or the left padding).
    public static func outputSize(input: Int, kernel: Int, pad: Int, stride: Int, dilation: Int, ceilMode: Bool) -> Int {
        let numerator = input + 2 * pad - dilation * (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0)
        var out = floorDivide(numerator, stride) + 1
        if ceilMode && (out - 1) * stride >= input + pad { out -= 1 }
        return out
    }

    @inline(__always)
    static func floorDivide(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Planes per thread block so that each block does about 16K window reads.
    var planeGrain: Int { max(1, 16_384 / max(1, outPlane * kernelH * kernelW)) }
}

// MARK: - max pooling

enum MaxPoolKernel {
    /// y = the max over each (dilated) window, padding counting as −∞; indices = the argmax's
    /// offset inside its input plane (the first maximum in row-major window order; a NaN wins and
    /// the last NaN is kept, as torch), or −1 for a window that misses the input entirely.
    static func forward(_ g: PoolGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        indices: UnsafeMutablePointer<Int32>) {
        let (h, w, ho, wo) = (g.height, g.width, g.outHeight, g.outWidth)
        let (dh, dw) = (g.dilationH, g.dilationW)
        parallelRanges(g.planes, grain: g.planeGrain) { lo, hi in
            for p in lo..<hi {
                let xp = x + p * g.inPlane, yp = y + p * g.outPlane, ip = indices + p * g.outPlane
                for oy in 0..<ho {
                    var ih0 = oy * g.strideH - g.padH
                    let ih1 = min(ih0 + (g.kernelH - 1) * dh + 1, h)
                    while ih0 < 0 { ih0 += dh }
                    for ox in 0..<wo {
                        var iw0 = ox * g.strideW - g.padW
                        let iw1 = min(iw0 + (g.kernelW - 1) * dw + 1, w)
                        while iw0 < 0 { iw0 += dw }
                        var best = -Float.infinity
                        var bestIndex = (ih0 < ih1 && iw0 < iw1) ? ih0 * w + iw0 : -1
                        var iy = ih0
                        while iy < ih1 {
                            let row = xp + iy * w
                            var ix = iw0
                            while ix < iw1 {
                                let v = row[ix]
                                if v > best || v.isNaN { best = v; bestIndex = iy * w + ix }
                                ix += dw
                            }
                            iy += dh
                        }
                        yp[oy * wo + ox] = best
                        ip[oy * wo + ox] = Int32(truncatingIfNeeded: bestIndex)
                    }
                }
            }
        }
    }

    /// dx[argmax] += dy for every output.
    static func backward(_ g: PoolGeometry, dy: UnsafePointer<Float>, indices: UnsafePointer<Int32>,
                         dx: UnsafeMutablePointer<Float>) {
        parallelRanges(g.planes, grain: max(1, 16_384 / max(1, g.outPlane))) { lo, hi in
            for p in lo..<hi {
                let dyp = dy + p * g.outPlane, ip = indices + p * g.outPlane, dxp = dx + p * g.inPlane
                for i in 0..<g.outPlane {
                    let j = Int(ip[i])
                    if j >= 0 { dxp[j] += dyp[i] }
                }
            }
        }
    }
}

// MARK: - average pooling

enum AvgPoolKernel {
    /// The input rows/columns a window covers and its divisor, as torch computes them: the window
    /// [o·s − p, o·s − p + k) is first clipped to the padded extent [−p, in + p) (its size there is
    /// the count_include_pad divisor, so a ceil-mode window hanging past the padding counts only
    /// the part inside it), then to the input [0, in) (the count_include_pad=false divisor).
    @inline(__always)
    static func window(_ o: Int, stride: Int, pad: Int, kernel: Int, size: Int) -> (lo: Int, hi: Int, padded: Int) {
        let start = o * stride - pad
        let end = min(start + kernel, size + pad)
        return (max(start, 0), min(end, size), end - start)
    }

    @inline(__always)
    static func divisor(_ g: PoolGeometry, rows: (lo: Int, hi: Int, padded: Int), cols: (lo: Int, hi: Int, padded: Int),
                        countIncludePad: Bool, divisorOverride: Int?) -> Float {
        if let divisorOverride { return Float(divisorOverride) }
        return Float(countIncludePad ? rows.padded * cols.padded : (rows.hi - rows.lo) * (cols.hi - cols.lo))
    }

    /// y = Σ window / divisor (0 for a window that misses the input, which valid geometries exclude).
    static func forward(_ g: PoolGeometry, countIncludePad: Bool, divisorOverride: Int?,
                        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let (w, ho, wo) = (g.width, g.outHeight, g.outWidth)
        parallelRanges(g.planes, grain: g.planeGrain) { lo, hi in
            for p in lo..<hi {
                let xp = x + p * g.inPlane, yp = y + p * g.outPlane
                for oy in 0..<ho {
                    let rows = window(oy, stride: g.strideH, pad: g.padH, kernel: g.kernelH, size: g.height)
                    for ox in 0..<wo {
                        let cols = window(ox, stride: g.strideW, pad: g.padW, kernel: g.kernelW, size: g.width)
                        if rows.lo >= rows.hi || cols.lo >= cols.hi { yp[oy * wo + ox] = 0; continue }
                        // summed in float, row-major, as torch does (same rounding)
                        var sum: Float = 0
                        for iy in rows.lo..<rows.hi {
                            let row = xp + iy * w
                            for ix in cols.lo..<cols.hi { sum += row[ix] }
                        }
                        yp[oy * wo + ox] = sum / divisor(g, rows: rows, cols: cols, countIncludePad: countIncludePad,
                                                         divisorOverride: divisorOverride)
                    }
                }
            }
        }
    }

    /// dx[window] += dy / divisor.
    static func backward(_ g: PoolGeometry, countIncludePad: Bool, divisorOverride: Int?,
                         dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let (w, ho, wo) = (g.width, g.outHeight, g.outWidth)
        parallelRanges(g.planes, grain: g.planeGrain) { lo, hi in
            for p in lo..<hi {
                let dyp = dy + p * g.outPlane, dxp = dx + p * g.inPlane
                for oy in 0..<ho {
                    let rows = window(oy, stride: g.strideH, pad: g.padH, kernel: g.kernelH, size: g.height)
                    for ox in 0..<wo {
                        let cols = window(ox, stride: g.strideW, pad: g.padW, kernel: g.kernelW, size: g.width)
                        if rows.lo >= rows.hi || cols.lo >= cols.hi { continue }
                        let delta = dyp[oy * wo + ox] / divisor(g, rows: rows, cols: cols, countIncludePad: countIncludePad,
                                                                divisorOverride: divisorOverride)
                        for iy in rows.lo..<rows.hi {
                            let row = dxp + iy * w
                            for ix in cols.lo..<cols.hi { row[ix] += delta }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - adaptive average pooling

enum AdaptiveAvgPoolKernel {
    /// Bin i of `outSize` over `inSize`: [⌊i·in/out⌋, ⌈(i+1)·in/out⌉) (torch's start_index/end_index).
    @inline(__always)
    static func bin(_ i: Int, inSize: Int, outSize: Int) -> (Int, Int) {
        (i * inSize / outSize, ((i + 1) * inSize + outSize - 1) / outSize)
    }

    /// y = Σ bin / kh / kw (divided twice, in float, as torch).
    static func forward(planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int,
                        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let inPlane = height * width, outPlane = outHeight * outWidth
        // each output reads about in/out rows and columns; count reads per plane for the grain
        let readsPerPlane = max(1, max(inPlane, outPlane))
        parallelRanges(planes, grain: max(1, 16_384 / readsPerPlane)) { lo, hi in
            for p in lo..<hi {
                let xp = x + p * inPlane, yp = y + p * outPlane
                for oy in 0..<outHeight {
                    let (ih0, ih1) = bin(oy, inSize: height, outSize: outHeight)
                    let kh = Float(ih1 - ih0)
                    for ox in 0..<outWidth {
                        let (iw0, iw1) = bin(ox, inSize: width, outSize: outWidth)
                        var sum: Float = 0
                        for iy in ih0..<ih1 {
                            let row = xp + iy * width
                            for ix in iw0..<iw1 { sum += row[ix] }
                        }
                        yp[oy * outWidth + ox] = sum / kh / Float(iw1 - iw0)
                    }
                }
            }
        }
    }

    /// dx[bin] += dy / kh / kw.
    static func backward(planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int,
                         dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let inPlane = height * width, outPlane = outHeight * outWidth
        let readsPerPlane = max(1, max(inPlane, outPlane))
        parallelRanges(planes, grain: max(1, 16_384 / readsPerPlane)) { lo, hi in
            for p in lo..<hi {
                let dyp = dy + p * outPlane, dxp = dx + p * inPlane
                for oy in 0..<outHeight {
                    let (ih0, ih1) = bin(oy, inSize: height, outSize: outHeight)
                    let kh = Float(ih1 - ih0)
                    for ox in 0..<outWidth {
                        let (iw0, iw1) = bin(ox, inSize: width, outSize: outWidth)
                        let delta = dyp[oy * outWidth + ox] / kh / Float(iw1 - iw0)
                        for iy in ih0..<ih1 {
                            let row = dxp + iy * width
                            for ix in iw0..<iw1 { row[ix] += delta }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - nearest-neighbour upsampling

enum UpsampleNearestKernel {
    /// Source index of each of the `outSize` outputs along one axis: torch's `nearest_idx`.
    /// out == in copies, out == 2·in halves (`>> 1`); otherwise src = min(⌊dst·scale⌋, in − 1) in
    /// float arithmetic, with scale = Float(1/scaleFactor) when a scale factor was given and
    /// Float(in)/Float(out) when a size was.
    static func sourceIndices(inSize: Int, outSize: Int, scaleFactor: Int?) -> [Int32] {
        var result = [Int32](repeating: 0, count: outSize)
        if outSize == inSize {
            for i in 0..<outSize { result[i] = Int32(i) }
        } else if outSize == 2 * inSize {
            for i in 0..<outSize { result[i] = Int32(i >> 1) }
        } else {
            let scale: Float = scaleFactor.map { Float(1.0 / Double($0)) } ?? Float(inSize) / Float(outSize)
            for i in 0..<outSize {
                let src = (Float(i) * scale).rounded(.down)
                result[i] = Int32(min(Int(src), inSize - 1))
            }
        }
        return result
    }

    /// y[oy, ox] = x[rows[oy], cols[ox]].
    static func forward(planes: Int, height: Int, width: Int, rows: [Int32], cols: [Int32],
                        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let (ho, wo) = (rows.count, cols.count)
        guard ho > 0, wo > 0 else { return }
        let inPlane = height * width, outPlane = ho * wo
        rows.withUnsafeBufferPointer { r in
            cols.withUnsafeBufferPointer { c in
                let (r, c) = (r.baseAddress!, c.baseAddress!)
                parallelRanges(planes, grain: max(1, 16_384 / max(1, outPlane))) { lo, hi in
                    for p in lo..<hi {
                        let xp = x + p * inPlane, yp = y + p * outPlane
                        for oy in 0..<ho {
                            let src = xp + Int(r[oy]) * width, dst = yp + oy * wo
                            for ox in 0..<wo { dst[ox] = src[Int(c[ox])] }
                        }
                    }
                }
            }
        }
    }

    /// dx[rows[oy], cols[ox]] += dy[oy, ox].
    static func backward(planes: Int, height: Int, width: Int, rows: [Int32], cols: [Int32],
                         dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let (ho, wo) = (rows.count, cols.count)
        guard ho > 0, wo > 0 else { return }
        let inPlane = height * width, outPlane = ho * wo
        rows.withUnsafeBufferPointer { r in
            cols.withUnsafeBufferPointer { c in
                let (r, c) = (r.baseAddress!, c.baseAddress!)
                parallelRanges(planes, grain: max(1, 16_384 / max(1, outPlane))) { lo, hi in
                    for p in lo..<hi {
                        let dyp = dy + p * outPlane, dxp = dx + p * inPlane
                        for oy in 0..<ho {
                            let src = dyp + oy * wo, dst = dxp + Int(r[oy]) * width
                            for ox in 0..<wo { dst[Int(c[ox])] += src[ox] }
                        }
                    }
                }
            }
        }
    }
}
