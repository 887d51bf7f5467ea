// The column path's forward (Conv2dColumns.swift), by classes of output pixels: each output pixel
// multiplies only the taps that read the image, never the padding.
//
// Why: at the small maps where the column path runs, much of each receptive field is padding. A
// 3×3 convolution with padding 1 reads the image at 16 of the 36 taps of a 2×2 map's pixels, 100 of
// 144 over 4×4, 484 of 576 over 8×8; im2col writes zeros for the rest and the product multiplies
// them (ResNet-18 at 64 px spent a third of its last stage so). Output pixels whose receptive
// fields leave the image at the same taps form a class (a corner, an edge, the interior), and each
// class is one product over its valid taps only:
//   Y'_c[co][j] = Σ_{k ∈ K_c} W[co][k] · col_c[k][j],   j = (n, i), i over the class's pixels,
//   K_c = {k = (t, ci) : tap t of the class's pixels reads the image}.
// The terms left out are exact zeros (padding × weight). K runs tap-major, k = t·Cin + ci, so a
// class's K is a few runs of whole taps: W is packed once per call in that order (8-row blocks,
// [k][8], as the forward tile reads them), and each class's product reads its runs in place
// instead of gathering its own copy of W. A class reading no tap at all gets the bias.

extension ColumnConv {
    /// Output pixels that read the image at the same taps.
    struct PixelClass {
        /// Their indices in the output plane, in plane order.
        var pixels: [Int32]
        /// The rows of the tap-major K they multiply: k = t·Cin + ci for every valid tap t, in order.
        var columns: [Int]
    }

    /// The classes of g's output pixels, in the order of their first pixel, from `tapTable`.
    static func pixelClasses(_ g: ConvGeometry, table: [Int32]) -> [PixelClass] {
        let (taps, p) = (g.kernelH * g.kernelW, g.outPlane)
        var classes: [PixelClass] = [], index: [[Bool]: Int] = [:]
        for pixel in 0..<p {
            let valid = (0..<taps).map { table[$0 * p + pixel] >= 0 }
            if let c = index[valid] {
                classes[c].pixels.append(Int32(pixel))
            } else {
                index[valid] = classes.count
                var columns: [Int] = []
                for t in 0..<taps where valid[t] { for ci in 0..<g.inPerGroup { columns.append(t * g.inPerGroup + ci) } }
                classes.append(PixelClass(pixels: [Int32(pixel)], columns: columns))
            }
        }
        return classes
    }

    /// y = conv(x, W) + bias.
    package static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, chunkFloats: Int = chunkFloats) throws {
        let (k, p, cout) = (g.colRows, g.outPlane, g.outChannels)
        let chunkImages = imagesPerChunk(g, budget: chunkFloats)
        let maxLd = rowLength(g, images: chunkImages)
        let inPlane = g.height * g.width
        let scratch = try Storage(count: (k + cout) * maxLd + cout * k + g.inChannels * chunkImages * inPlane)
        let col = scratch.pointer, product = col + k * maxLd, packed = product + cout * maxLd, planes = packed + cout * k
        packTapMajor(g, weight, into: packed)
        let tapTable = tapTable(g)
        let classes = pixelClasses(g, table: tapTable)
        tapTable.withUnsafeBufferPointer { table in
        let table = table.baseAddress!
        var n0 = 0
        while n0 < g.batch {
            let images = min(chunkImages, g.batch - n0)
            // the chunk's planes channel by channel, [Cin][images][H·W]: every class then gathers a
            // channel from one contiguous block instead of planes Cin·H·W floats apart
            parallelRanges(g.inChannels, grain: max(1, 16_384 / max(1, images * inPlane))) { lo, hi in
                for c in lo..<hi {
                    for n in 0..<images {
                        (planes + (c * images + n) * inPlane).update(from: x + ((n0 + n) * g.inChannels + c) * inPlane, count: inPlane)
                    }
                }
            }
            for cls in classes {
                cls.pixels.withUnsafeBufferPointer { pixels in
                cls.columns.withUnsafeBufferPointer { columns in
                    let (pc, kc) = (pixels.count, columns.count), ld = (images * pc + 15) / 16 * 16
                    let pixels = pixels.baseAddress!
                    if kc > 0, let columns = columns.baseAddress {
                        im2colClass(g, table: table, planes: planes, images: images, pixels: pixels, count: pc,
                                    columns: columns, rows: kc, into: col, ld: ld)
                        classProduct(m: cout, k: k, rows: kc, positions: columns, ld: ld, packed: packed, b: col, c: product)
                    }
                    // Y'_c → y, adding the bias; the whole plane in order is a copy
                    let whole = pc == p
                    parallelRanges(cout, grain: max(1, 16_384 / max(1, images * pc))) { lo, hi in
                        for co in lo..<hi {
                            let b = bias?[co] ?? 0
                            for n in 0..<images {
                                let src = product + co * ld + n * pc, dst = y + ((n0 + n) * cout + co) * p
                                if kc == 0 {
                                    for i in 0..<pc { dst[Int(pixels[i])] = b }
                                } else if whole {
                                    for i in 0..<pc { dst[i] = src[i] + b }
                                } else {
                                    for i in 0..<pc { dst[Int(pixels[i])] = src[i] + b }
                                }
                            }
                        }
                    }
                }}
            }
            n0 += images
        }
        }
        withExtendedLifetime(scratch) {}
    }

    /// col_c[r][j] = planes[ci, n, the pixel tap t of pixel i reads] for row r = (u, ci) of the
    /// class's u-th valid tap t = positions[u·Cin] / Cin, and j = n·count + i, in panels
    /// (`storePanelRow`) of `rows` rows `ld` wide (the columns past the images' zeroed). Channels
    /// over the threads.
    static func im2colClass(_ g: ConvGeometry, table: UnsafePointer<Int32>, planes: UnsafePointer<Float>, images: Int,
                            pixels: UnsafePointer<Int32>, count pc: Int, columns: UnsafePointer<Int>, rows: Int,
                            into col: UnsafeMutablePointer<Float>, ld: Int) {
        let (plane, p, cin) = (g.height * g.width, g.outPlane, g.inChannels)
        let validTaps = rows / cin
        // offsets[u·pc + i]: where pixel i reads tap u in an input plane
        var offsets = [Int](repeating: 0, count: validTaps * pc)
        for u in 0..<validTaps {
            let t = columns[u * cin] / cin
            for i in 0..<pc { offsets[u * pc + i] = Int(table[t * p + Int(pixels[i])]) }
        }
        offsets.withUnsafeBufferPointer { offsets in
        let offsets = offsets.baseAddress!
        ThreadPool.shared.run(count: cin, maxParticipants: max(1, rows * ld / 8192)) { _, lo, hi in
            // one row per valid tap: a plane is read for all its taps at once
            withUnsafeTemporaryAllocation(of: Float.self, capacity: validTaps * ld) { tmp in
                let tmp = tmp.baseAddress!
                for u in 0..<validTaps { for j in (images * pc)..<ld { tmp[u * ld + j] = 0 } }
                for c in lo..<hi {
                    for n in 0..<images {
                        let src = planes + (c * images + n) * plane
                        for u in 0..<validTaps {
                            let off = offsets + u * pc, d = tmp + u * ld + n * pc
                            for i in 0..<pc { d[i] = src[off[i]] }
                        }
                    }
                    for u in 0..<validTaps { storePanelRow(tmp + u * ld, row: u * cin + c, rows: rows, ld: ld, into: col) }
                }
            }
        }
        }
    }

    /// W [Cout][Cin·taps] packed tap-major for the forward tile: 8-row blocks (the last rows in
    /// blocks of 4, 2, 1, as `DirectConv.blockHeight`) at co0·K, element (k = t·Cin + ci, m) at k·mr + m.
    static func packTapMajor(_ g: ConvGeometry, _ weight: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let (taps, cin, cout, k) = (g.kernelH * g.kernelW, g.inChannels, g.outChannels, g.colRows)
        let slots = (cout + 7) / 8
        ThreadPool.shared.forRanges(slots, grain: max(1, 32768 / max(1, 8 * k))) { lo, hi in
            for slot in lo..<hi {
                let r1 = min(cout, slot * 8 + 8)
                var b0 = slot * 8
                while b0 < r1 {
                    let mr = DirectConv.blockHeight(r1 - b0)
                    let block = dst + b0 * k, src = weight + b0 * k
                    // channel outer: the block's reads stay within a few lines, its writes are
                    // `taps` sequential streams
                    for ci in 0..<cin {
                        for t in 0..<taps {
                            let d = block + (t * cin + ci) * mr, s = src + ci * taps + t
                            for m in 0..<mr { d[m] = s[m * k] }
                        }
                    }
                    b0 += mr
                }
            }
        }
    }

    /// C[m][j] = Σ_r A(positions[r], m)·B[r][j] for j < ld (a multiple of 16), A packed by
    /// `packTapMajor` (k rows per block) and B in panels of `rows` rows. K in slices of consecutive
    /// positions, at most `kSlice` long, read from the packed blocks in place; as `tileProduct`
    /// otherwise (row blocks, or for wide products panels, over the threads).
    static func classProduct(m: Int, k: Int, rows: Int, positions: UnsafePointer<Int>, ld: Int, packed: UnsafePointer<Float>,
                             b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        var slices: [(start: Int, count: Int)] = []
        var r = 0
        while r < rows {
            var e = r + 1
            while e < rows && e - r < kSlice && positions[e] == positions[e - 1] + 1 { e += 1 }
            slices.append((r, e - r))
            r = e
        }
        let panels = panelCount(ld)
        let (taps, bases) = panelOffsets(slice: kSlice)
        let blocks = (m + 7) / 8
        let byRows = blocks >= panels
        taps.withUnsafeBufferPointer { taps in
        bases.withUnsafeBufferPointer { bases in
        slices.withUnsafeBufferPointer { slices in
            let bases = bases.baseAddress!
            ThreadPool.shared.run(count: byRows ? blocks : panels) { _, lo, hi in
                let (r0, r1) = byRows ? (lo * 8, min(m, hi * 8)) : (0, m)
                let (p0, p1) = byRows ? (0, panels) : (lo, hi)
                for slice in slices {
                    let (s0, kk) = slice
                    var row = r0
                    while row < r1 {
                        let mr = DirectConv.blockHeight(min(8, r1 - row))
                        let weights = packed + row * k + positions[s0] * mr
                        for p in p0..<p1 {
                            let j0 = p * panelWidth, nv = panelSpan(p, ld: ld) / 16
                            let panel = b + j0 * rows + s0 * nv * 16
                            let out = c + row * ld + j0
                            var args = FwdTileArgs(weights: weights, input: panel, taps: taps.baseAddress! + (nv - 1) * kSlice,
                                                   k: kk, inBase: bases, outBase: bases, output: out, outStride: ld,
                                                   initial: TileConstants.zeros, initialStride: 0,
                                                   initialBase: TileConstants.zeroOffsets)
                            sweepPanel(&args, mr: mr, nv: nv, panel: panel, out: out, accumulate: s0 > 0, ld: ld, bases: bases)
                        }
                        row += mr
                    }
                }
            }
        }}}
    }
}
