// Direct convolution, part 3 of 4: the input gradient, as a stride-1 forward convolution of dy with
// the transposed, flipped kernel, or phase by phase for strides and wide padding (both on the forward
// tiles of Conv2dDirectForward.swift).

extension DirectConv {
    // MARK: input gradient

    /// The forward geometry whose output is dx: dy convolved with the transposed, flipped kernel.
    /// Nil when the direct kernel does not apply (strides above 1, or padding wider than the
    /// dilated kernel's reach).
    package static func inputGradientGeometry(_ g: ConvGeometry) -> ConvGeometry? {
        guard g.strideH == 1 && g.strideW == 1 else { return nil }
        let padH = g.dilationH * (g.kernelH - 1) - g.padH, padW = g.dilationW * (g.kernelW - 1) - g.padW
        guard padH >= 0 && padW >= 0 else { return nil }
        let t = ConvGeometry(batch: g.batch, inChannels: g.outChannels, height: g.outHeight, width: g.outWidth,
                             outChannels: g.inChannels, kernelH: g.kernelH, kernelW: g.kernelW,
                             strideH: 1, strideW: 1, padH: padH, padW: padW,
                             dilationH: g.dilationH, dilationW: g.dilationW, groups: g.groups)
        return t.outHeight == g.height && t.outWidth == g.width ? t : nil
    }

    /// dx += ∂L/∂x for a geometry accepted by `inputGradientGeometry`:
    /// dx[ci, iy, ix] = Σ_{co, ki, kj} dy[co, iy + p − ki·d, ix + p − kj·d] · W[co, ci, ki, kj].
    package static func inputGradient(_ g: ConvGeometry, _ t: ConvGeometry, weight: UnsafePointer<Float>,
                              dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) throws {
        let packed = try Storage(count: t.outChannels * t.colRows)
        packWeights(g, weight, transposed: true, into: packed.pointer)
        try convolve(t, x: dy, packedWeights: packed.pointer, bias: nil, y: dx, accumulate: true)
        withExtendedLifetime(packed) {}
    }

    /// dx += ∂L/∂x for any geometry, by output phases. dx[iy, ix] with iy + padH = a·sH + ry and
    /// ix + padW = b·sW + rx only meets the taps with ki·dH ≡ ry (mod sH) and kj·dW ≡ rx (mod sW),
    /// at dy[a − eᵢ, b − eⱼ] with eᵢ = (ki·dH − ry)/sH, eⱼ = (kj·dW − rx)/sW:
    ///   phase(ry, rx)[ci, a, b] = Σ_{co, ki, kj of the phase} dy[co, a − eᵢ, b − eⱼ] · W[co, ci, ki, kj],
    /// a stride-1 correlation that the forward tiles compute on dy padded by max e above and to the
    /// left. The phases land in a phase-split copy of dx (the packed layout of a stride-sW image),
    /// which is then added into dx, interleaving the phases.
    package static func phasedInputGradient(_ g: ConvGeometry, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                    dx: UnsafeMutablePointer<Float>) throws {
        let (sH, sW, dH, dW) = (g.strideH, g.strideW, g.dilationH, g.dilationW)
        let (h, w, ho, wo, kw) = (g.height, g.width, g.outHeight, g.outWidth, g.kernelW)
        let (opg, ipg, taps) = (g.outPerGroup, g.inPerGroup, g.kernelH * g.kernelW)
        /// (k, e) for the kernel offsets k·dil ≡ r (mod s).
        func phaseTaps(_ kernel: Int, _ dil: Int, _ s: Int, _ r: Int) -> [(Int, Int)] {
            (0..<kernel).compactMap { k in let t = k * dil - r; return t >= 0 && t % s == 0 ? (k, t / s) : nil }
        }
        /// The phase indices [lo, hi) with 0 ≤ a·s + r − pad < size.
        func phaseRange(_ size: Int, _ pad: Int, _ s: Int, _ r: Int) -> (Int, Int) {
            let lo = pad - r <= 0 ? 0 : (pad - r + s - 1) / s
            let hi = size + pad - r <= 0 ? 0 : (size + pad - r + s - 1) / s
            return (lo, max(lo, hi))
        }
        let rowRanges = (0..<sH).map { phaseRange(h, g.padH, sH, $0) }
        let colRanges = (0..<sW).map { phaseRange(w, g.padW, sW, $0) }
        // packed dy [Cout][rowsDy][colsDy]: dy[oy, ox] at (oy + top, ox + left), zeros around
        let top = (g.kernelH - 1) * dH / sH, left = (kw - 1) * dW / sW
        let rowsDy = top + rowRanges.map { $0.1 }.max()!, colsDy = left + colRanges.map { $0.1 }.max()!
        let planeDy = rowsDy * colsDy, dyCount = g.outChannels * planeDy + DirectLayout.slack
        // phase results [Cin][H][sW][colsT]: phase rx, index b at rx·colsT + b
        let colsT = colRanges.map { $0.1 }.max()!, pitchT = sW * colsT, planeT = h * pitchT
        let tmpCount = g.inChannels * planeT

        // per phase: taps, output vectors, packed weights
        struct Phase { var tapStart, k, vectorStart, vectors, weightStart: Int }
        var phases = [Phase](), tapOffsets = [Int](), inBase = [Int](), outBase = [Int](), lanes = [Int]()
        var weightCount = 0
        for ry in 0..<sH {
            for rx in 0..<sW {
                let ky = phaseTaps(g.kernelH, dH, sH, ry), kx = phaseTaps(kw, dW, sW, rx)
                let (a0, a1) = rowRanges[ry], (b0, b1) = colRanges[rx]
                guard !ky.isEmpty && !kx.isEmpty && a1 > a0 && b1 > b0 else { continue }   // dx there gets nothing
                let phase = Phase(tapStart: tapOffsets.count, k: opg * ky.count * kx.count, vectorStart: inBase.count,
                                  vectors: (a1 - a0) * ((b1 - b0 + 15) / 16), weightStart: weightCount)
                for co in 0..<opg { for (_, ey) in ky { for (_, ex) in kx {
                    tapOffsets.append(co * planeDy + (top - ey) * colsDy + (left - ex))
                }}}
                for a in a0..<a1 {
                    let iy = a * sH + ry - g.padH
                    var b = b0
                    while b < b1 {
                        let start = b0 + tailStart(b - b0, width: b1 - b0, index: inBase.count - phase.vectorStart, overlap: true)
                        inBase.append(a * colsDy + start)
                        outBase.append(iy * pitchT + rx * colsT + start)
                        lanes.append(min(16, b1 - start))
                        b += 16
                    }
                }
                phases.append(phase)
                weightCount += g.inChannels * phase.k
            }
        }
        let packedWeights = try Storage(count: max(1, weightCount))
        // pack: phase block of input channels (c0, mr) of a group at (group·ipg + c0)·k, [k][mr],
        // kk = (co·|ky| + i)·|kx| + j  →  W[group·opg + co, c0 + m, ki_i, kj_j]
        var phaseIndex = 0
        for ry in 0..<sH {
            for rx in 0..<sW {
                let ky = phaseTaps(g.kernelH, dH, sH, ry), kx = phaseTaps(kw, dW, sW, rx)
                let (a0, a1) = rowRanges[ry], (b0, b1) = colRanges[rx]
                guard !ky.isEmpty && !kx.isEmpty && a1 > a0 && b1 > b0 else { continue }
                let phase = phases[phaseIndex]
                phaseIndex += 1
                let base = packedWeights.pointer + phase.weightStart
                for group in 0..<g.groups {
                    var c0 = 0
                    while c0 < ipg {
                        let mr = blockHeight(ipg - c0)
                        let block = base + (group * ipg + c0) * phase.k
                        var kk = 0
                        for co in 0..<opg { for (ki, _) in ky { for (kj, _) in kx {
                            for m in 0..<mr {
                                block[kk * mr + m] = weight[((group * opg + co) * ipg + c0 + m) * taps + ki * kw + kj]
                            }
                            kk += 1
                        }}}
                        c0 += mr
                    }
                }
            }
        }

        let inImage = g.inChannels * h * w, outImage = g.outChannels * ho * wo
        let threads = min(ThreadPool.shared.threadCount, g.batch)
        let perThread = dyCount + tmpCount
        let scratch = try Storage(count: perThread * threads)
        tapOffsets.withUnsafeBufferPointer { tapOffsets in
        inBase.withUnsafeBufferPointer { inBase in
        outBase.withUnsafeBufferPointer { outBase in
        lanes.withUnsafeBufferPointer { lanes in
        phases.withUnsafeBufferPointer { phases in
            ThreadPool.shared.run(count: g.batch, maxParticipants: threads) { participant, lo, hi in
                let packed = scratch.pointer + participant * perThread, tmp = packed + dyCount
                // zeros written once: padding of dy, and phase positions no tap reaches
                (packed).update(repeating: 0, count: perThread)
                for n in lo..<hi {
                    // pack dy[n]
                    let rows = min(ho, rowsDy - top), cols = min(wo, colsDy - left)
                    for co in 0..<g.outChannels {
                        for oy in 0..<rows {
                            let src = dy + n * outImage + (co * ho + oy) * wo
                            let dst = packed + co * planeDy + (oy + top) * colsDy + left
                            var i = 0
                            while i + 16 <= cols { storeVector(dst + i, loadVector(src + i)); i += 16 }
                            while i < cols { dst[i] = src[i]; i += 1 }
                        }
                    }
                    for phase in phases {
                        let pass = TilePass(taps: tapOffsets.baseAddress! + phase.tapStart, k: phase.k,
                                            inBase: inBase.baseAddress! + phase.vectorStart,
                                            outBase: outBase.baseAddress! + phase.vectorStart,
                                            lanes: lanes.baseAddress! + phase.vectorStart,
                                            groups: g.groups, channelsPerGroup: ipg,
                                            weights: packedWeights.pointer + phase.weightStart,
                                            inputGroupStride: opg * planeDy, outStride: planeT, bias: nil, accumulate: false)
                        var v = 0
                        while v < phase.vectors {
                            runTiles(pass, input: packed, output: tmp, v, min(phase.vectors, v + chunk))
                            v += chunk
                        }
                    }
                    addPhases(tmp, g, colsT: colsT, into: dx + n * inImage)
                }
            }
        }}}}}
        withExtendedLifetime(scratch) {}
        withExtendedLifetime(packedWeights) {}
    }

    /// dx [Cin, H, W] += the phase-split rows of tmp [Cin, H, sW, colsT]: dx[iy, ix] takes phase
    /// (ix + padW) mod sW, index (ix + padW) / sW.
    package static func addPhases(_ tmp: UnsafePointer<Float>, _ g: ConvGeometry, colsT: Int, into dx: UnsafeMutablePointer<Float>) {
        let (h, w, s, pad) = (g.height, g.width, g.strideW, g.padW)
        let pitch = s * colsT
        for c in 0..<g.inChannels {
            for iy in 0..<h {
                let t = tmp + (c * h + iy) * pitch, d = dx + (c * h + iy) * w
                var ix = 0
                if s == 1 {
                    while ix + 16 <= w { storeVector(d + ix, loadVector(d + ix) + loadVector(t + ix + pad)); ix += 16 }
                } else if s == 2 {
                    // 32 columns from an even u = ix + pad: phases 0 and 1 at u/2 …, interleaved
                    if (ix + pad) & 1 == 1 { d[ix] += t[colsT + (ix + pad) >> 1]; ix += 1 }
                    while ix + 32 <= w {
                        let j = (ix + pad) >> 1
                        var lo = loadVector(t + j), hi = loadVector(t + colsT + j)
                        // interleaving undoes an unshuffle; four unshuffles of 32 values are the inverse of one
                        for _ in 0..<4 {
                            (lo, hi) = (evenElements(lo, hi), oddElements(lo, hi))
                        }
                        storeVector(d + ix, loadVector(d + ix) + lo)
                        storeVector(d + ix + 16, loadVector(d + ix + 16) + hi)
                        ix += 32
                    }
                }
                while ix < w {
                    let u = ix + pad
                    d[ix] += t[(u % s) * colsT + u / s]
                    ix += 1
                }
            }
        }
    }
}
