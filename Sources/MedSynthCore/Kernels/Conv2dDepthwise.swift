// Depthwise convolution (groups with one input channel each, MobileNetV2's 3×3 layers) over whole
// planes.
//
// Why: with one input channel per group the direct kernels (Conv2dDirect*.swift) run 1-row tiles
// with K = 9 taps, packing each image and staging partial vectors, and spend more time on that than
// on the 9 multiply-adds per output. Here the planes of one channel in a run of images are copied
// into zero-padded buffers that cover every window, stacked one after the other, and the outputs
// are computed at the window origins of the flattened stack, q = image·stride + r·pitch + c for
// (r, c) on the stride-1 grid: a tap (ki, kj) is then one offset ki·dH·pitch + kj·dW for every
// origin of every image, and each loop below is one long contiguous, vectorised sweep
//   forward       acc[q] = b + Σ_t w[t] · xpad[q + off_t],        y[oy, ox] = acc[oy·sH·pitch + ox·sW]
//   input grad    dxpad[q + off_t] += w[t] · dy↑[q],               dy↑ = dy at its origins, 0 elsewhere
//   weight grad   dW[t] += Σ_q dy↑[q] · xpad[q + off_t]
// Origins off the stride grid or between planes are computed and dropped (dy↑ is zero there, and
// the weight gradient masks them out when the input is not all finite, as 0·∞ is not 0). The
// weights of a channel are the same for every image, which is what lets its images share a sweep
// even on 2×2 maps. Input channels go to the threads; each owns its channels' outputs and
// gradients, summed in a fixed order, so results do not depend on the thread count.

import RealModule

package enum DepthwiseConv {
    /// One input channel per group, and more than one group.
    package static func applies(_ g: ConvGeometry) -> Bool { g.groups > 1 && g.inPerGroup == 1 }

    /// The padded-plane frame of a geometry: rows and pitch of the buffer (input (iy, ix) at
    /// (iy + padH, ix + padW)), the number of origins, the tap offsets, and the input rows and
    /// columns that fall inside the buffer.
    struct Frame {
        let rows: Int, pitch: Int, origins: Int
        let offsets: [Int]
        let iy0: Int, iy1: Int, ix0: Int, ix1: Int

        init(_ g: ConvGeometry) {
            rows = (g.outHeight - 1) * g.strideH + (g.kernelH - 1) * g.dilationH + 1
            pitch = (g.outWidth - 1) * g.strideW + (g.kernelW - 1) * g.dilationW + 1
            origins = (g.outHeight - 1) * g.strideH * pitch + (g.outWidth - 1) * g.strideW + 1
            var offsets = [Int]()
            for ki in 0..<g.kernelH { for kj in 0..<g.kernelW { offsets.append(ki * g.dilationH * pitch + kj * g.dilationW) } }
            self.offsets = offsets
            (iy0, iy1) = (0, max(0, min(g.height, rows - g.padH)))
            (ix0, ix1) = (0, max(0, min(g.width, pitch - g.padW)))
        }

        var count: Int { rows * pitch }

        /// Copies an input plane into the interior of a zeroed buffer (the border stays zero), and
        /// says whether every value copied is finite.
        @inline(__always) @discardableResult
        func pack(_ plane: UnsafePointer<Float>, _ g: ConvGeometry, into buffer: UnsafeMutablePointer<Float>) -> Bool {
            guard ix1 > ix0 else { return true }
            var check: Float = 0   // x − x is 0 for finite x, NaN otherwise
            for iy in iy0..<iy1 {
                let src = plane + iy * g.width, dst = buffer + (iy + g.padH) * pitch + g.padW
                for ix in ix0..<ix1 { let v = src[ix]; dst[ix] = v; check = Relaxed.sum(check, v - v) }
            }
            return check == 0
        }

    }

    /// Floats of one stacked buffer at most: images per run = budget / plane stride (at least 1).
    static let stackFloats = 1 << 18

    /// Images per run, and the length of a run's sweep over `images` stacked planes.
    @inline(__always)
    static func imagesPerRun(_ g: ConvGeometry, _ frame: Frame, budget: Int) -> Int { max(1, min(g.batch, budget / frame.count)) }

    @inline(__always)
    static func sweep(_ images: Int, _ frame: Frame) -> Int { (images - 1) * frame.count + frame.origins }

    /// Zeros after a stack (and, for the spread dy, before it): sweeps run in whole vectors of 16
    /// and read up to `maxOffset` past their origin.
    static let slack = 16

    /// y = conv(x, W) + bias.
    package static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, stackFloats: Int = stackFloats) {
        let frame = Frame(g)
        let (taps, opg, plane) = (g.kernelH * g.kernelW, g.outPerGroup, g.height * g.width)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let run = imagesPerRun(g, frame, budget: stackFloats)
        frame.offsets.withUnsafeBufferPointer { offsets in
            let offsets = offsets.baseAddress!
            parallelRanges(g.groups, grain: max(1, 8192 / max(1, g.batch * frame.origins * taps * opg))) { lo, hi in
                let count = run * frame.count + slack
                let padded = UnsafeMutablePointer<Float>.allocate(capacity: count)
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: count)
                defer { padded.deallocate(); acc.deallocate() }
                padded.initialize(repeating: 0, count: count)
                for ci in lo..<hi {
                    var n0 = 0
                    while n0 < g.batch {
                        let images = min(run, g.batch - n0), length = sweep(images, frame)
                        for i in 0..<images { frame.pack(x + ((n0 + i) * g.inChannels + ci) * plane, g, into: padded + i * frame.count) }
                        for m in 0..<opg {
                            let co = ci * opg + m
                            let w = weight + co * taps, b = ConvVector(repeating: bias?[co] ?? 0)
                            // all taps of a vector of origins in registers
                            var q = 0
                            while q < length {
                                var sum = b
                                let src = padded + q
                                for t in 0..<taps { sum = sum.addingProduct(loadVector(src + offsets[t]), w[t]) }
                                storeVector(acc + q, sum)
                                q += 16
                            }
                            for i in 0..<images {
                                let out = y + ((n0 + i) * g.outChannels + co) * ho * wo, origins = acc + i * frame.count
                                for oy in 0..<ho {
                                    let row = origins + oy * g.strideH * frame.pitch, dst = out + oy * wo
                                    for ox in 0..<wo { dst[ox] = row[ox &* g.strideW] }
                                }
                            }
                        }
                        n0 += images
                    }
                }
            }
        }
    }

    /// Accumulates dx += ∂L/∂x and dW += ∂L/∂W (those asked for) from dy. The input gradient is
    /// gathered rather than scattered, dxpad[p] = Σ_t w[t]·dy↑[p − off_t], so each vector of it is
    /// summed in registers (dy↑ has zeros in front for that).
    package static func backward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                 dWeight: UnsafeMutablePointer<Float>?, stackFloats: Int = stackFloats) {
        guard dx != nil || dWeight != nil else { return }
        let frame = Frame(g)
        let (taps, opg, plane) = (g.kernelH * g.kernelW, g.outPerGroup, g.height * g.width)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let run = imagesPerRun(g, frame, budget: stackFloats)
        let front = frame.count   // ≥ the largest tap offset
        frame.offsets.withUnsafeBufferPointer { offsets in
            let offsets = offsets.baseAddress!
            parallelRanges(g.groups, grain: max(1, 8192 / max(1, g.batch * frame.origins * taps * opg))) { lo, hi in
                let count = run * frame.count + slack
                let padded = UnsafeMutablePointer<Float>.allocate(capacity: count)
                let dpadded = UnsafeMutablePointer<Float>.allocate(capacity: count)
                let spreadBuffer = UnsafeMutablePointer<Float>.allocate(capacity: front + count)
                defer { padded.deallocate(); dpadded.deallocate(); spreadBuffer.deallocate() }
                padded.initialize(repeating: 0, count: count)
                spreadBuffer.initialize(repeating: 0, count: front + count)   // only the origins are ever written
                let spread = spreadBuffer + front
                // 1 at the origins of outputs, 0 elsewhere (for inputs that are not all finite)
                let mask = UnsafeMutablePointer<Float>.allocate(capacity: count)
                defer { mask.deallocate() }
                mask.initialize(repeating: 0, count: count)
                for i in 0..<run {
                    for oy in 0..<ho { for ox in 0..<wo { mask[i * frame.count + oy * g.strideH * frame.pitch + ox * g.strideW] = 1 } }
                }
                withUnsafeTemporaryAllocation(of: ConvVector.self, capacity: taps) { partial in
                    let partial = partial.baseAddress!
                    for ci in lo..<hi {
                        var n0 = 0
                        while n0 < g.batch {
                            let images = min(run, g.batch - n0), length = sweep(images, frame)
                            // planes past a short last run keep values of the run before: clear them
                            if images < run { (spread + images * frame.count).update(repeating: 0, count: (run - images) * frame.count + slack) }
                            var finite = true
                            if dWeight != nil {
                                for i in 0..<images {
                                    finite = frame.pack(x + ((n0 + i) * g.inChannels + ci) * plane, g, into: padded + i * frame.count) && finite
                                }
                            }
                            for m in 0..<opg {
                                let co = ci * opg + m
                                // dy↑: dy at its origins
                                for i in 0..<images {
                                    let dyPlane = dy + ((n0 + i) * g.outChannels + co) * ho * wo, origins = spread + i * frame.count
                                    for oy in 0..<ho {
                                        let row = origins + oy * g.strideH * frame.pitch, src = dyPlane + oy * wo
                                        for ox in 0..<wo { row[ox &* g.strideW] = src[ox] }
                                    }
                                }
                                if let dWeight {
                                    // per tap, Σ_q dy↑[q]·xpad[q + off_t] in vector lanes, then the lanes
                                    for t in 0..<taps { partial[t] = ConvVector() }
                                    var q = 0
                                    if finite {
                                        // 0 · x = 0 off the origins
                                        while q < length {
                                            let d = loadVector(spread + q), src = padded + q
                                            for t in 0..<taps { partial[t] = partial[t].addingProduct(d, loadVector(src + offsets[t])) }
                                            q += 16
                                        }
                                    } else {
                                        // an infinity or NaN that only off-origin lanes read must not reach dW
                                        while q < length {
                                            let d = loadVector(spread + q), src = padded + q, on = loadVector(mask + q) .!= 0
                                            for t in 0..<taps {
                                                partial[t] += (d * loadVector(src + offsets[t])).replacing(with: 0, where: .!on)
                                            }
                                            q += 16
                                        }
                                    }
                                    let dw = dWeight + co * taps
                                    for t in 0..<taps { dw[t] += partial[t].sum() }
                                }
                                if dx != nil {
                                    let w = weight + co * taps
                                    var p = 0
                                    while p < images * frame.count {
                                        var sum = m == 0 ? ConvVector() : loadVector(dpadded + p)
                                        let src = spread + p
                                        for t in 0..<taps { sum = sum.addingProduct(loadVector(src - offsets[t]), w[t]) }
                                        storeVector(dpadded + p, sum)
                                        p += 16
                                    }
                                }
                            }
                            if let dx, frame.ix1 > frame.ix0 {
                                for i in 0..<images {
                                    let dxPlane = dx + ((n0 + i) * g.inChannels + ci) * plane, from = dpadded + i * frame.count
                                    for iy in frame.iy0..<frame.iy1 {
                                        let src = from + (iy + g.padH) * frame.pitch + g.padW, dst = dxPlane + iy * g.width
                                        for ix in frame.ix0..<frame.ix1 { dst[ix] += src[ix] }
                                    }
                                }
                            }
                            n0 += images
                        }
                    }
                }
            }
        }
    }
}
