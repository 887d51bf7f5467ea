// Direct convolution, part 4 of 4: the weight gradient, by tiles of vectors along output channels
// over dy transposed (WgtTileTaps, WgtTileRows), or along output pixels (PixelWgtTile).

// MARK: - weight-gradient micro-kernels

/// Arguments of one weight-gradient tile: NV vectors of 16 output channels × a block of taps, over
/// `rows` output rows of `width` pixels.
package struct WgtTileArgs {
    /// dy transposed, [pixel][ldd], at the block's first pixel and first channel.
    package var dyT: UnsafePointer<Float>
    package var ldd: Int
    /// Packed input of the group at the block's first output row (oy0·sH·rowPitch).
    package var input: UnsafePointer<Float>
    /// Tap offsets (WgtTileTaps) or offsets of (c, ki) rows of KW consecutive taps (WgtTileRows).
    package var offsets: UnsafePointer<Int>
    package var rows: Int, rowStep: Int, width: Int
    /// dW transposed, [k][ldw], at the block's first tap and first channel; accumulated into.
    package var dW: UnsafeMutablePointer<Float>
    package var ldw: Int
}

/// dWᵀ[j, co] += Σ_p in[offset_j + base(p)] · dyᵀ[p, co] for MJ arbitrary taps (any stride or
/// dilation): MJ input pointers, NV·MJ ≤ 24 accumulators.
package enum WgtTileTaps<let NV: Int, let MJ: Int> {
    @inline(never)
    static func run(_ a: WgtTileArgs) {
        var acc = zeroVectors24()
        for j in 0..<MJ { for v in 0..<NV { acc[j * NV + v] = loadVector(a.dW + j * a.ldw + v * 16) } }
        var x = InlineArray<8, UnsafePointer<Float>>(repeating: a.input)
        for j in 0..<MJ { x[j] = a.input + a.offsets[j] }
        var d = a.dyT
        for r in 0..<a.rows {
            let rb = r * a.rowStep
            for ox in 0..<a.width {
                var dv = InlineArray<4, ConvVector>(repeating: ConvVector())
                for v in 0..<NV { dv[v] = loadVector(d + v * 16) }
                for j in 0..<MJ {
                    let s = ConvVector(repeating: x[j][rb + ox])
                    for v in 0..<NV { acc[j * NV + v] = acc[j * NV + v].addingProduct(dv[v], s) }
                }
                d += a.ldd
            }
        }
        for j in 0..<MJ { for v in 0..<NV { storeVector(a.dW + j * a.ldw + v * 16, acc[j * NV + v]) } }
    }
}

/// The same product when the taps come as NR (c, ki) rows of KW consecutive floats (stride 1 and
/// dilation 1 along the width): one pointer per row and constant displacements for kj, which
/// leaves enough registers for 24 accumulators.
package enum WgtTileRows<let NV: Int, let NR: Int, let KW: Int> {
    @inline(never)
    static func run(_ a: WgtTileArgs) {
        var acc = zeroVectors24()
        for j in 0..<(NR * KW) { for v in 0..<NV { acc[j * NV + v] = loadVector(a.dW + j * a.ldw + v * 16) } }
        var x = InlineArray<8, UnsafePointer<Float>>(repeating: a.input)
        for q in 0..<NR { x[q] = a.input + a.offsets[q] }
        var d = a.dyT
        for r in 0..<a.rows {
            let rb = r * a.rowStep
            for ox in 0..<a.width {
                var dv = InlineArray<4, ConvVector>(repeating: ConvVector())
                for v in 0..<NV { dv[v] = loadVector(d + v * 16) }
                for q in 0..<NR {
                    let p = x[q] + rb + ox
                    for kj in 0..<KW {
                        let s = ConvVector(repeating: p[kj])
                        for v in 0..<NV { acc[(q * KW + kj) * NV + v] = acc[(q * KW + kj) * NV + v].addingProduct(dv[v], s) }
                    }
                }
                d += a.ldd
            }
        }
        for j in 0..<(NR * KW) { for v in 0..<NV { storeVector(a.dW + j * a.ldw + v * 16, acc[j * NV + v]) } }
    }
}

/// Arguments of one pixel-vectorised weight-gradient tile: MR output channels × MJ taps, vectors
/// along the output pixels of each row, partial sums kept per lane.
package struct PixelWgtTileArgs {
    /// dy of the block's first channel, rows `pitch` apart, channel planes `dyStride` apart.
    package var dy: UnsafePointer<Float>
    package var dyStride: Int, pitch: Int
    /// Packed input of the group, and the MJ tap offsets.
    package var input: UnsafePointer<Float>
    package var offsets: UnsafePointer<Int>
    package var rows: Int, rowStep: Int, width: Int
    /// Lane partial sums [channel][k][16] at the block's first channel and tap; channels `ldl` apart.
    package var lanes: UnsafeMutablePointer<Float>
    package var ldl: Int
}

/// lanes[m, j] += dy[m, p] · in[offset_j + base(p)] over 16-pixel vectors, MR·MJ ≤ 16
/// accumulators. In a row's last, partial vector both the dy and the input lanes past the row are
/// masked to zero, so those lanes add exact zeros whatever the buffers hold there (the caller
/// makes sure whole-vector reads stay inside the buffers).
package enum PixelWgtTile<let MR: Int, let MJ: Int> {
    @inline(never)
    static func run(_ a: PixelWgtTileArgs) {
        var acc = zeroVectors16()
        for m in 0..<MR { for j in 0..<MJ { acc[m * MJ + j] = loadVector(a.lanes + m * a.ldl + j * 16) } }
        var x = InlineArray<8, UnsafePointer<Float>>(repeating: a.input)
        for j in 0..<MJ { x[j] = a.input + a.offsets[j] }
        let full = a.width / 16 * 16, rest = a.width - full
        let outside = ConvVector(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .>= ConvVector(repeating: Float(rest))
        for r in 0..<a.rows {
            let rb = r * a.rowStep, d = a.dy + r * a.pitch
            var ox = 0
            while ox < full {
                var dv = InlineArray<4, ConvVector>(repeating: ConvVector())
                for m in 0..<MR { dv[m] = loadVector(d + m * a.dyStride + ox) }
                for j in 0..<MJ {
                    let xv = loadVector(x[j] + rb + ox)
                    for m in 0..<MR { acc[m * MJ + j] = acc[m * MJ + j].addingProduct(dv[m], xv) }
                }
                ox += 16
            }
            if rest > 0 {
                var dv = InlineArray<4, ConvVector>(repeating: ConvVector())
                for m in 0..<MR { dv[m] = loadVector(d + m * a.dyStride + ox).replacing(with: 0, where: outside) }
                for j in 0..<MJ {
                    let xv = loadVector(x[j] + rb + ox).replacing(with: 0, where: outside)
                    for m in 0..<MR { acc[m * MJ + j] = acc[m * MJ + j].addingProduct(dv[m], xv) }
                }
            }
        }
        for m in 0..<MR { for j in 0..<MJ { storeVector(a.lanes + m * a.ldl + j * 16, acc[m * MJ + j]) } }
    }
}

extension DirectConv {
    // MARK: weight gradient

    /// dWeight += ∂L/∂W for groups of fewer than 8 output channels (Cout = 1, depthwise), where
    /// vectors along the channels would be mostly padding, and for small K, where transposing dy
    /// would cost as much as the products: vectors run along output pixels instead,
    /// each thread keeps 16 partial sums per weight, and the lanes are added up at the end (lanes in
    /// order, then threads in order).
    package static func pixelWeightGradient(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                    dWeight: UnsafeMutablePointer<Float>) throws {
        let layout = DirectLayout(g)
        let (opg, k) = (g.outPerGroup, g.colRows)
        // rows of pixels: output rows, or whole planes when the layout is flat
        let (ho, wo) = layout.isFlat ? (1, g.outPlane) : (g.outHeight, g.outWidth)
        let inImage = g.inChannels * g.height * g.width, outImage = g.outChannels * g.outPlane
        let offsets = layout.tapOffsets()
        let threads = min(ThreadPool.shared.threadCount, g.batch)
        let laneCount = g.outChannels * k * 16
        // dy is read in place, except for the batch's last image when its rows end in a partial
        // vector: the whole-vector read of its last row could run past dy, so that image goes
        // through a copy with rows padded to whole vectors
        let padded = (wo + 15) / 16 * 16, dyCount = padded == wo ? 0 : g.outChannels * ho * padded
        let packedCount = layout.isIdentity ? 0 : layout.imageCount
        let perThread = packedCount + laneCount + dyCount
        let scratch = try Storage(count: perThread * threads)
        offsets.withUnsafeBufferPointer { offsets in
            let offsets = offsets.baseAddress!
            ThreadPool.shared.run(count: g.batch, maxParticipants: threads) { participant, lo, hi in
                let lanes = scratch.pointer + participant * perThread, packed = lanes + laneCount
                let dyP = packed + packedCount
                if packedCount > 0 { layout.clear(packed) }
                lanes.update(repeating: 0, count: laneCount)
                for n in lo..<hi {
                    let input: UnsafePointer<Float>
                    if packedCount > 0 { layout.pack(x + n * inImage, into: packed); input = UnsafePointer(packed) } else { input = x + n * inImage }
                    let dyImage: UnsafePointer<Float>, pitch: Int
                    if dyCount == 0 || n < g.batch - 1 {
                        (dyImage, pitch) = (dy + n * outImage, wo)
                    } else {
                        for row in 0..<g.outChannels * ho {
                            (dyP + row * padded).update(from: dy + n * outImage + row * wo, count: wo)
                            (dyP + row * padded + wo).update(repeating: 0, count: padded - wo)
                        }
                        (dyImage, pitch) = (UnsafePointer(dyP), padded)
                    }
                    for group in 0..<g.groups {
                        var args = PixelWgtTileArgs(dy: dyImage, dyStride: ho * pitch, pitch: pitch,
                                                    input: input + group * g.inPerGroup * layout.plane,
                                                    offsets: offsets, rows: ho, rowStep: g.strideH * layout.rowPitch, width: wo,
                                                    lanes: lanes, ldl: k * 16)
                        var c0 = 0
                        while c0 < opg {
                            let r = opg - c0, mr = r >= 4 ? 4 : r >= 2 ? 2 : 1
                            let co = group * opg + c0
                            args.dy = dyImage + co * ho * pitch
                            var j = 0
                            while j < k {
                                // 4×4, 2×6, 1×8 tiles; remainders shrink MJ
                                let most = mr == 4 ? 4 : mr == 2 ? 6 : 8
                                let mj = min(most, k - j)
                                args.offsets = offsets + j
                                args.lanes = lanes + (co * k + j) * 16
                                pixelWeightTile(mr: mr, mj: mj, args)
                                j += mj
                            }
                            c0 += mr
                        }
                    }
                }
            }
        }
        // dWeight[co, kk] += Σ_t Σ_lane lanes_t[co, kk, lane]
        ThreadPool.shared.forRanges(g.outChannels * k, grain: 4096) { lo, hi in
            for i in lo..<hi {
                var s: Float = 0
                for t in 0..<threads { s += loadVector(scratch.pointer + t * perThread + i * 16).sum() }
                dWeight[i] += s
            }
        }
        withExtendedLifetime(scratch) {}
    }

    @inline(__always)
    package static func pixelWeightTile(mr: Int, mj: Int, _ a: PixelWgtTileArgs) {
        switch (mr, mj) {
        case (4, 4): PixelWgtTile<4, 4>.run(a)
        case (4, 3): PixelWgtTile<4, 3>.run(a)
        case (4, 2): PixelWgtTile<4, 2>.run(a)
        case (4, _): PixelWgtTile<4, 1>.run(a)
        case (2, 6): PixelWgtTile<2, 6>.run(a)
        case (2, 5): PixelWgtTile<2, 5>.run(a)
        case (2, 4): PixelWgtTile<2, 4>.run(a)
        case (2, 3): PixelWgtTile<2, 3>.run(a)
        case (2, 2): PixelWgtTile<2, 2>.run(a)
        case (2, _): PixelWgtTile<2, 1>.run(a)
        case (_, 8): PixelWgtTile<1, 8>.run(a)
        case (_, 7): PixelWgtTile<1, 7>.run(a)
        case (_, 6): PixelWgtTile<1, 6>.run(a)
        case (_, 5): PixelWgtTile<1, 5>.run(a)
        case (_, 4): PixelWgtTile<1, 4>.run(a)
        case (_, 3): PixelWgtTile<1, 3>.run(a)
        case (_, 2): PixelWgtTile<1, 2>.run(a)
        default: PixelWgtTile<1, 1>.run(a)
        }
    }

    /// dWeight += ∂L/∂W = Σ_n Σ_p dy[n, co, p] · x_n[tap_k(p)], for any geometry.
    package static func weightGradient(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>) throws {
        // Few channels per group, or few taps (where dyᵀ costs as much as the products): vectors
        // along pixels. Measured here: Cin = 1 → 32 channels at 64×64, 19 → 77 GFLOP/s per core.
        let (opg, k) = (g.outPerGroup, g.colRows)
        if opg < 8 || k < 48 || (k <= 144 && g.outWidth >= 32) {
            try pixelWeightGradient(g, x: x, dy: dy, dWeight: dWeight)
            return
        }
        let layout = DirectLayout(g)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let ldc = (opg + 15) / 16 * 16
        let inImage = g.inChannels * g.height * g.width, outImage = g.outChannels * g.outPlane
        // Taps in rows of three consecutive floats (3-wide kernels, stride and dilation 1 along the
        // width), else one by one.
        let byRows = g.kernelW == 3 && g.strideW == 1 && g.dilationW == 1
        var offsets = [Int]()
        if byRows {
            for c in 0..<g.inPerGroup { for ki in 0..<g.kernelH { offsets.append(layout.tapOffset(c, ki, 0)) } }
        } else {
            offsets = layout.tapOffsets()
        }
        // Pixel blocks of about 256, so a block of dyᵀ stays in L1 across the taps: output rows, or
        // stretches of a whole plane when the layout is flat.
        let (blockRows, blockWidth) = layout.isFlat ? (1, min(256, g.outPlane)) : (max(1, min(ho, 256 / wo)), wo)
        let blocks = layout.isFlat ? (g.outPlane + 255) / 256 : (ho + blockRows - 1) / blockRows
        let channelVectors = ldc / 16

        let threads = min(ThreadPool.shared.threadCount, g.batch)
        let partialCount = g.groups * k * ldc
        let packedCount = layout.isIdentity ? 0 : layout.imageCount
        let perThread = packedCount + ho * wo * ldc + partialCount
        let scratch = try Storage(count: perThread * threads)
        var used = [Bool](repeating: false, count: threads)
        offsets.withUnsafeBufferPointer { offsets in
        used.withUnsafeMutableBufferPointer { usedFlags in
            let offsets = offsets.baseAddress!
            ThreadPool.shared.run(count: g.batch, maxParticipants: threads) { participant, lo, hi in
                usedFlags[participant] = true
                let packed = scratch.pointer + participant * perThread
                let dyT = packed + packedCount
                let partial = dyT + ho * wo * ldc
                partial.update(repeating: 0, count: partialCount)
                if packedCount > 0 { layout.clear(packed) }
                dyT.update(repeating: 0, count: ho * wo * ldc)   // channels opg..<ldc stay zero
                for n in lo..<hi {
                    let image: UnsafePointer<Float>
                    if packedCount > 0 { layout.pack(x + n * inImage, into: packed); image = UnsafePointer(packed) } else { image = x + n * inImage }
                    for group in 0..<g.groups {
                        transpose(dy + n * outImage + group * opg * g.outPlane, rows: opg, cols: g.outPlane, into: dyT, ld: ldc)
                        let input = image + group * g.inPerGroup * layout.plane
                        let dWg = partial + group * k * ldc
                        for block in 0..<blocks {
                            // block of `rows` rows of `width` pixels, from output pixel p0 (row start oy0)
                            let (rows, width, p0, inOffset): (Int, Int, Int, Int)
                            if layout.isFlat {
                                let start = block * 256
                                (rows, width, p0, inOffset) = (1, min(blockWidth, g.outPlane - start), start, start)
                            } else {
                                let oy0 = block * blockRows
                                (rows, width, p0, inOffset) = (min(blockRows, ho - oy0), wo, oy0 * wo, oy0 * g.strideH * layout.rowPitch)
                            }
                            var cv0 = 0
                            while cv0 < channelVectors {
                                // channel vectors per tile: 4, 2 or 1
                                let r = channelVectors - cv0, nv = r >= 4 ? 4 : r >= 2 ? 2 : 1
                                var args = WgtTileArgs(dyT: dyT + p0 * ldc + cv0 * 16, ldd: ldc,
                                                       input: input + inOffset, offsets: offsets,
                                                       rows: rows, rowStep: g.strideH * layout.rowPitch, width: width,
                                                       dW: dWg + cv0 * 16, ldw: ldc)
                                if byRows {
                                    // NV·NR·3 ≤ 24 accumulators: 4×2, 2×4, 1×4 (remainders 2, 1)
                                    let count = g.inPerGroup * g.kernelH, most = nv == 4 ? 2 : 4
                                    var q = 0
                                    while q < count {
                                        let r = min(most, count - q), nr = r >= 4 ? 4 : r >= 2 ? 2 : 1
                                        args.offsets = offsets + q
                                        args.dW = dWg + q * 3 * ldc + cv0 * 16
                                        weightTileRows(nv: nv, nr: nr, args)
                                        q += nr
                                    }
                                } else {
                                    // one pointer per tap: 4×6, 2×8, 1×8 (remainders halve)
                                    var j = 0
                                    while j < k {
                                        let r = k - j
                                        let mj = nv == 4 ? (r >= 6 ? 6 : r >= 3 ? 3 : r) : (r >= 8 ? 8 : r >= 4 ? 4 : r >= 2 ? 2 : 1)
                                        args.offsets = offsets + j
                                        args.dW = dWg + j * ldc + cv0 * 16
                                        weightTileTaps(nv: nv, mj: mj, args)
                                        j += mj
                                    }
                                }
                                cv0 += nv
                            }
                        }
                    }
                }
            }
            // dWeight[group·opg + co, kk] += Σ_t partial_t[group, kk, co] (threads in order), by
            // 16×16 blocks transposed in registers, blocks of taps spread over the threads
            let partials = (0..<threads).filter { usedFlags[$0] }.map { scratch.pointer + $0 * perThread + packedCount + ho * wo * ldc }
            partials.withUnsafeBufferPointer { partials in
                let tapBlocks = (k + 15) / 16
                ThreadPool.shared.run(count: g.groups * tapBlocks) { _, lo, hi in
                    for item in lo..<hi {
                        let group = item / tapBlocks, kk0 = (item % tapBlocks) * 16, kk1 = min(k, kk0 + 16)
                        var co0 = 0
                        while co0 < opg {
                            let co1 = min(opg, co0 + 16)
                            let src = (group * k + kk0) * ldc + co0
                            if kk1 - kk0 == 16 && co1 - co0 == 16 {
                                var block = zeroVectors16()
                                for i in 0..<16 {
                                    var v = loadVector(partials[0] + src + i * ldc)
                                    for t in 1..<partials.count { v += loadVector(partials[t] + src + i * ldc) }
                                    block[i] = v
                                }
                                transpose16(&block)
                                for c in 0..<16 {
                                    let d = dWeight + (group * opg + co0 + c) * k + kk0
                                    storeVector(d, loadVector(d) + block[c])
                                }
                            } else {
                                for co in co0..<co1 {
                                    let d = dWeight + (group * opg + co) * k
                                    for kk in kk0..<kk1 {
                                        let at = (group * k + kk) * ldc + co
                                        var v = partials[0][at]
                                        for t in 1..<partials.count { v += partials[t][at] }
                                        d[kk] += v
                                    }
                                }
                            }
                            co0 = co1
                        }
                    }
                }
            }
        }}
        withExtendedLifetime(scratch) {}
    }

    @inline(__always)
    package static func weightTileRows(nv: Int, nr: Int, _ a: WgtTileArgs) {
        switch (nv, nr) {
        case (4, 2): WgtTileRows<4, 2, 3>.run(a)
        case (4, _): WgtTileRows<4, 1, 3>.run(a)
        case (2, 4): WgtTileRows<2, 4, 3>.run(a)
        case (2, 2): WgtTileRows<2, 2, 3>.run(a)
        case (2, _): WgtTileRows<2, 1, 3>.run(a)
        case (_, 4): WgtTileRows<1, 4, 3>.run(a)
        case (_, 2): WgtTileRows<1, 2, 3>.run(a)
        default: WgtTileRows<1, 1, 3>.run(a)
        }
    }

    @inline(__always)
    package static func weightTileTaps(nv: Int, mj: Int, _ a: WgtTileArgs) {
        switch (nv, mj) {
        case (4, 6): WgtTileTaps<4, 6>.run(a)
        case (4, 3): WgtTileTaps<4, 3>.run(a)
        case (4, 2): WgtTileTaps<4, 2>.run(a)
        case (4, _): WgtTileTaps<4, 1>.run(a)
        case (2, 8): WgtTileTaps<2, 8>.run(a)
        case (2, 4): WgtTileTaps<2, 4>.run(a)
        case (2, 2): WgtTileTaps<2, 2>.run(a)
        case (2, _): WgtTileTaps<2, 1>.run(a)
        case (_, 8): WgtTileTaps<1, 8>.run(a)
        case (_, 4): WgtTileTaps<1, 4>.run(a)
        case (_, 2): WgtTileTaps<1, 2>.run(a)
        default: WgtTileTaps<1, 1>.run(a)
        }
    }

    /// dst [cols][ld] ← srcᵀ for src [rows][cols] (columns rows..<ld untouched). Full 16×16 blocks go
    /// through registers: 16 whole-line loads and stores, where element by element the 16 source
    /// rows (often 4096 floats apart) fight over the same L1 sets.
    package static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, ld: Int) {
        var c0 = 0
        while c0 < cols {
            let c1 = min(cols, c0 + 16)
            var r0 = 0
            while r0 < rows {
                let r1 = min(rows, r0 + 16)
                if r1 - r0 == 16 && c1 - c0 == 16 {
                    var block = zeroVectors16()
                    for i in 0..<16 { block[i] = loadVector(src + (r0 + i) * cols + c0) }
                    transpose16(&block)
                    for i in 0..<16 { storeVector(dst + (c0 + i) * ld + r0, block[i]) }
                } else {
                    for c in c0..<c1 {
                        let d = dst + c * ld
                        for r in r0..<r1 { d[r] = src[r * cols + c] }
                    }
                }
                r0 = r1
            }
            c0 = c1
        }
    }

    /// Transposes a 16×16 block held as 16 row vectors. Four perfect unshuffles of the 256 values
    /// (the even elements of each pair of rows, then the odd ones) rotate the 8-bit index
    /// (row, column) by four bits, which swaps row and column: 64 two-register shuffles.
    @inline(__always)
    package static func transpose16(_ r: inout InlineArray<16, ConvVector>) {
        for _ in 0..<4 {
            var t = r   // every element is overwritten (a copy, not InlineArray(repeating:), an outlined call)
            for j in 0..<8 {
                t[j] = evenElements(r[2 * j], r[2 * j + 1])
                t[j + 8] = oddElements(r[2 * j], r[2 * j + 1])
            }
            r = t
        }
    }
}
