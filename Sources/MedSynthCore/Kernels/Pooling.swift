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

    package var inPlane: Int { height * width }
    package var outPlane: Int { outHeight * outWidth }

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
    package static func floorDivide(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Planes per thread block so that each block does about 16K window reads.
    package var planeGrain: Int { max(1, 16_384 / max(1, outPlane * kernelH * kernelW)) }

    /// Per column tap b (0 ≤ b < kW): the range of outputs ox whose tap column ox·sW − pW + b·dW
    /// lies inside [0, W), and the column offset −pW + b·dW. Kernels loop over taps and then over
    /// an output row, which keeps torch's per-window order while the row loop vectorises.
    package func columnTaps() -> [(lo: Int, hi: Int, offset: Int)] {
        (0..<kernelW).map { b in
            let offset = b * dilationW - padW
            let lo = min(outWidth, offset >= 0 ? 0 : (-offset + strideW - 1) / strideW)
            let hi = min(outWidth, width - 1 - offset >= 0 ? (width - 1 - offset) / strideW + 1 : 0)
            return (lo, max(lo, hi), offset)
        }
    }
}

// MARK: - window tables

/// Per-axis window bounds, computed once per call rather than once per output: lo/hi of the
/// window clipped to the input (and, for average pooling, its size within the padded extent).
package struct PoolWindows {
    package let lo: UnsafeMutablePointer<Int>, hi: UnsafeMutablePointer<Int>, padded: UnsafeMutablePointer<Int>

    /// Max-pooling windows: start o·s − p advanced by whole dilation steps until it is ≥ 0 (the
    /// first tap inside the input), end min(start + d(k − 1) + 1, size), as torch.
    package init(maxOut out: Int, stride: Int, pad: Int, kernel: Int, dilation: Int, size: Int) {
        (lo, hi, padded) = PoolWindows.allocate(out)
        for o in 0..<out {
            var start = o * stride - pad
            let end = min(start + (kernel - 1) * dilation + 1, size)
            if start < 0 { start += ((-start + dilation - 1) / dilation) * dilation }
            lo[o] = start; hi[o] = end; padded[o] = 0
        }
    }

    /// Average-pooling windows: [o·s − p, o·s − p + k) clipped to the padded extent [−p, size + p)
    /// (its length there is the count_include_pad divisor), then to the input [0, size).
    package init(avgOut out: Int, stride: Int, pad: Int, kernel: Int, size: Int) {
        (lo, hi, padded) = PoolWindows.allocate(out)
        for o in 0..<out {
            let start = o * stride - pad
            let end = min(start + kernel, size + pad)
            lo[o] = max(start, 0); hi[o] = min(end, size); padded[o] = end - start
        }
    }

    private static func allocate(_ n: Int) -> (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) {
        let p = UnsafeMutablePointer<Int>.allocate(capacity: max(1, 3 * n))
        return (p, p + n, p + 2 * n)
    }

    package func deallocate() { lo.deallocate() }
}

// MARK: - max pooling

package enum MaxPoolKernel {
    /// y = the max over each (dilated) window, padding counting as −∞; indices = the argmax's
    /// offset inside its input plane (the first maximum in row-major window order; a NaN wins and
    /// the last NaN is kept, as torch), or −1 for a window that misses the input entirely.
    ///
    /// Loop order: per output row, taps outermost and the outputs of the row innermost, so each
    /// output's running max is updated in the same (row-major) tap order as torch while the
    /// updates along the row are independent and vectorise.
    package static func forward(_ g: PoolGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        indices: UnsafeMutablePointer<Int32>) {
        if usesFlatPlanes(g) {
            forwardFlat(g, x: x, y: y, indices: indices)
        } else {
            forwardRows(g, x: x, y: y, indices: indices)
        }
    }

    /// Output rows shorter than a vector (or stride 1 with rows that are not much longer): the
    /// row loops below would run a few scalar iterations per tap, so whole planes are vectorised.
    package static func usesFlatPlanes(_ g: PoolGeometry) -> Bool {
        g.outWidth < 16 || (g.strideH == 1 && g.strideW == 1 && g.outWidth < 64)
    }

    /// `forward` over whole planes: each plane is copied into a buffer padded with −∞ that covers
    /// every window, and the running max runs over the flattened buffer, p = r·Wp + c for the
    /// window origins (r, c) on the stride-1 grid: a tap is one offset for all of them, so the
    /// update loop is contiguous and vectorises. Windows whose origins are off the stride grid are
    /// computed and not read (at most sH·sW times the work, on planes too small to matter). The
    /// tap that won is kept per origin and turned into the input offset at the end; the order of
    /// taps and the comparison are those of `forwardRows`, so values and indices are the same.
    package static func forwardFlat(_ g: PoolGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                    indices: UnsafeMutablePointer<Int32>) {
        let (h, w, ho, wo) = (g.height, g.width, g.outHeight, g.outWidth)
        let (sh, sw, dh, dw, kh, kw) = (g.strideH, g.strideW, g.dilationH, g.dilationW, g.kernelH, g.kernelW)
        // the padded buffer: input (iy, ix) at (iy + padH, ix + padW), rows and columns to the
        // last window's end
        let rowsP = (ho - 1) * sh + (kh - 1) * dh + 1, pitch = (wo - 1) * sw + (kw - 1) * dw + 1
        let origins = (ho - 1) * sh * pitch + (wo - 1) * sw + 1
        let rows = PoolWindows(maxOut: ho, stride: sh, pad: g.padH, kernel: kh, dilation: dh, size: h)
        let cols = PoolWindows(maxOut: wo, stride: sw, pad: g.padW, kernel: kw, dilation: dw, size: w)
        defer { rows.deallocate(); cols.deallocate() }
        let (iy0, iy1) = (max(0, -g.padH), min(h, rowsP - g.padH))   // input rows inside the buffer
        let (ix0, ix1) = (max(0, -g.padW), min(w, pitch - g.padW))
        parallelRanges(g.planes, grain: max(1, 4096 / max(1, origins * kh * kw))) { lo, hi in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: rowsP * pitch)
            let best = UnsafeMutablePointer<Float>.allocate(capacity: origins)
            let tap = UnsafeMutablePointer<Int32>.allocate(capacity: origins)
            defer { padded.deallocate(); best.deallocate(); tap.deallocate() }
            padded.initialize(repeating: -.infinity, count: rowsP * pitch)
            for p in lo..<hi {
                let xp = x + p * g.inPlane
                if ix1 > ix0 {
                    for iy in iy0..<iy1 {
                        let src = xp + iy * w, dst = padded + (iy + g.padH) * pitch + g.padW
                        for ix in ix0..<ix1 { dst[ix] = src[ix] }
                    }
                }
                best.update(repeating: -.infinity, count: origins)
                tap.update(repeating: -1, count: origins)
                for a in 0..<kh {
                    for b in 0..<kw {
                        let src = padded + a * dh * pitch + b * dw, t = Int32(a * kw + b)
                        for q in 0..<origins {
                            let v = src[q], m = best[q]
                            let take = v > m || v.isNaN
                            best[q] = take ? v : m
                            tap[q] = take ? t : tap[q]
                        }
                    }
                }
                let yp = y + p * g.outPlane, ip = indices + p * g.outPlane
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        let q = oy * sh * pitch + ox * sw, t = Int(tap[q])
                        yp[oy * wo + ox] = best[q]
                        if t >= 0 {
                            let iy = oy * sh - g.padH + (t / kw) * dh, ix = ox * sw - g.padW + (t % kw) * dw
                            ip[oy * wo + ox] = Int32(truncatingIfNeeded: iy * w + ix)
                        } else {
                            // nothing beat −∞: torch's index is the window's first in-range tap
                            ip[oy * wo + ox] = rows.lo[oy] < rows.hi[oy] && cols.lo[ox] < cols.hi[ox]
                                ? Int32(truncatingIfNeeded: rows.lo[oy] * w + cols.lo[ox]) : -1
                        }
                    }
                }
            }
        }
    }

    /// `forward` row by row.
    package static func forwardRows(_ g: PoolGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        indices: UnsafeMutablePointer<Int32>) {
        let (w, ho, wo, dh, dw, sw) = (g.width, g.outHeight, g.outWidth, g.dilationH, g.dilationW, g.strideW)
        let rows = PoolWindows(maxOut: ho, stride: g.strideH, pad: g.padH, kernel: g.kernelH, dilation: dh, size: g.height)
        let cols = PoolWindows(maxOut: wo, stride: sw, pad: g.padW, kernel: g.kernelW, dilation: dw, size: w)
        defer { rows.deallocate(); cols.deallocate() }
        let columnTaps = g.columnTaps()
        columnTaps.withUnsafeBufferPointer { tapBuffer in
            guard let tapRange = tapBuffer.baseAddress else { return }
            parallelRanges(g.planes, grain: g.planeGrain) { lo, hi in
                let taps = UnsafeMutablePointer<Float>.allocate(capacity: max(1, wo))
                defer { taps.deallocate() }
                for p in lo..<hi {
                    let xp = x + p * g.inPlane
                    for oy in 0..<ho {
                        let yRow = y + p * g.outPlane + oy * wo, iRow = indices + p * g.outPlane + oy * wo
                        let (ih0, ih1) = (rows.lo[oy], rows.hi[oy])
                        for ox in 0..<wo {
                            yRow[ox] = -Float.infinity
                            // torch starts from the window's first in-range tap
                            iRow[ox] = (ih0 < ih1 && cols.lo[ox] < cols.hi[ox]) ? Int32(truncatingIfNeeded: ih0 * w + cols.lo[ox]) : -1
                        }
                        var iy = ih0
                        while iy < ih1 {
                            for b in 0..<g.kernelW {
                                let (oxLo, oxHi, offset) = tapRange[b]
                                // gather the strided tap values first: the update loop below then has
                                // unit stride, which LLVM vectorises into compares and blends (with a
                                // runtime stride it falls back to mispredicted branches, ~7× slower)
                                let src = xp + iy * w + offset, base = iy * w + offset
                                for ox in oxLo..<oxHi { taps[ox] = src[ox &* sw] }
                                for ox in oxLo..<oxHi {
                                    let v = taps[ox], best = yRow[ox], bestIndex = iRow[ox]
                                    let take = v > best || v.isNaN
                                    yRow[ox] = take ? v : best
                                    iRow[ox] = take ? Int32(truncatingIfNeeded: base &+ ox &* sw) : bestIndex
                                }
                            }
                            iy += dh
                        }
                    }
                }
            }
        }
    }

    /// dx[argmax] += dy for every output.
    package static func backward(_ g: PoolGeometry, dy: UnsafePointer<Float>, indices: UnsafePointer<Int32>,
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

package enum AvgPoolKernel {
    /// The divisor of every output of a plane, as torch's CPU kernel computes it:
    /// `divisorOverride` if given, else countIncludePad ? the window's area within the padded
    /// extent (a ceil-mode window hanging past the padding counts only its part inside it)
    /// : the number of input elements it covers.
    package static func divisors(_ g: PoolGeometry, rows: PoolWindows, cols: PoolWindows,
                         countIncludePad: Bool, divisorOverride: Int?) -> [Float] {
        var d = [Float](repeating: 1, count: g.outPlane)
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let count: Int
                if let divisorOverride { count = divisorOverride }
                else if countIncludePad { count = rows.padded[oy] * cols.padded[ox] }
                else { count = (rows.hi[oy] - rows.lo[oy]) * (cols.hi[ox] - cols.lo[ox]) }
                d[oy * g.outWidth + ox] = Float(count)
            }
        }
        return d
    }

    /// y = Σ window / divisor (0 for a window that misses the input, which valid geometries exclude).
    /// The output row accumulates tap by tap (row-major within each window, so every output is
    /// summed in torch's order) and the row loop is unit-stride, hence vectorised.
    package static func forward(_ g: PoolGeometry, countIncludePad: Bool, divisorOverride: Int?,
                        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let (w, ho, wo, sw) = (g.width, g.outHeight, g.outWidth, g.strideW)
        let rows = PoolWindows(avgOut: ho, stride: g.strideH, pad: g.padH, kernel: g.kernelH, size: g.height)
        let cols = PoolWindows(avgOut: wo, stride: sw, pad: g.padW, kernel: g.kernelW, size: w)
        defer { rows.deallocate(); cols.deallocate() }
        let divisor = divisors(g, rows: rows, cols: cols, countIncludePad: countIncludePad, divisorOverride: divisorOverride)
        let taps = g.columnTaps()
        divisor.withUnsafeBufferPointer { divisorBuffer in
            taps.withUnsafeBufferPointer { tapBuffer in
                guard let div = divisorBuffer.baseAddress, let tap = tapBuffer.baseAddress else { return }
                parallelRanges(g.planes, grain: g.planeGrain) { lo, hi in
                    let gathered = UnsafeMutablePointer<Float>.allocate(capacity: max(1, wo))
                    defer { gathered.deallocate() }
                    for p in lo..<hi {
                        let xp = x + p * g.inPlane
                        for oy in 0..<ho {
                            let yRow = y + p * g.outPlane + oy * wo, divRow = div + oy * wo
                            yRow.update(repeating: 0, count: wo)
                            let (ih0, ih1) = (rows.lo[oy], rows.hi[oy])
                            if ih0 >= ih1 { continue }
                            for iy in ih0..<ih1 {
                                for b in 0..<g.kernelW {
                                    let (oxLo, oxHi, offset) = tap[b]
                                    let src = xp + iy * w + offset
                                    for ox in oxLo..<oxHi { gathered[ox] = src[ox &* sw] }
                                    for ox in oxLo..<oxHi { yRow[ox] += gathered[ox] }
                                }
                            }
                            for ox in 0..<wo where cols.lo[ox] < cols.hi[ox] { yRow[ox] /= divRow[ox] }
                        }
                    }
                }
            }
        }
    }

    /// dx[window] += dy / divisor, tap by tap along each output row.
    package static func backward(_ g: PoolGeometry, countIncludePad: Bool, divisorOverride: Int?,
                         dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let (w, ho, wo, sw) = (g.width, g.outHeight, g.outWidth, g.strideW)
        let rows = PoolWindows(avgOut: ho, stride: g.strideH, pad: g.padH, kernel: g.kernelH, size: g.height)
        let cols = PoolWindows(avgOut: wo, stride: sw, pad: g.padW, kernel: g.kernelW, size: w)
        defer { rows.deallocate(); cols.deallocate() }
        let divisor = divisors(g, rows: rows, cols: cols, countIncludePad: countIncludePad, divisorOverride: divisorOverride)
        let taps = g.columnTaps()
        divisor.withUnsafeBufferPointer { divisorBuffer in
            taps.withUnsafeBufferPointer { tapBuffer in
                guard let div = divisorBuffer.baseAddress, let tap = tapBuffer.baseAddress else { return }
                parallelRanges(g.planes, grain: g.planeGrain) { lo, hi in
                    let delta = UnsafeMutablePointer<Float>.allocate(capacity: max(1, wo))
                    defer { delta.deallocate() }
                    for p in lo..<hi {
                        let dxp = dx + p * g.inPlane
                        for oy in 0..<ho {
                            let (ih0, ih1) = (rows.lo[oy], rows.hi[oy])
                            if ih0 >= ih1 { continue }
                            let dyRow = dy + p * g.outPlane + oy * wo, divRow = div + oy * wo
                            for ox in 0..<wo { delta[ox] = dyRow[ox] / divRow[ox] }
                            for iy in ih0..<ih1 {
                                for b in 0..<g.kernelW {
                                    let (oxLo, oxHi, offset) = tap[b]
                                    let dst = dxp + iy * w + offset
                                    for ox in oxLo..<oxHi { dst[ox &* sw] += delta[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - adaptive average pooling

package enum AdaptiveAvgPoolKernel {
    /// Bin i of `outSize` over `inSize`: [⌊i·in/out⌋, ⌈(i+1)·in/out⌉) (torch's start_index/end_index).
    @inline(__always)
    package static func bin(_ i: Int, inSize: Int, outSize: Int) -> (Int, Int) {
        (i * inSize / outSize, ((i + 1) * inSize + outSize - 1) / outSize)
    }

    /// y = Σ bin / kh / kw (divided twice, in float, as torch).
    package static func forward(planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int,
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
    package static func backward(planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int,
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

package enum UpsampleNearestKernel {
    /// Source index of each of the `outSize` outputs along one axis: torch's `nearest_idx`.
    /// out == in copies, out == 2·in halves (`>> 1`); otherwise src = min(⌊dst·scale⌋, in − 1) in
    /// float arithmetic, with scale = Float(1/scaleFactor) when a scale factor was given and
    /// Float(in)/Float(out) when a size was.
    package static func sourceIndices(inSize: Int, outSize: Int, scaleFactor: Int?) -> [Int32] {
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
    package static func forward(planes: Int, height: Int, width: Int, rows: [Int32], cols: [Int32],
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
    package static func backward(planes: Int, height: Int, width: Int, rows: [Int32], cols: [Int32],
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
