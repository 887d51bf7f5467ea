// Convolution as matrix products over the whole batch ("columns"), for small output maps.
//
// Why: the direct kernels (Conv2dDirect*.swift) vectorise along the output rows of one image, so a
// 4×4 or 2×2 output — the deep layers of the classifiers at 64×64 inputs — fills a quarter or an
// eighth of each 16-lane vector. Here the receptive fields of a chunk of images become the columns
// of one matrix (im2col over the batch),
//   col[k][j],   k = (ci, ki, kj),   j = (n, oy, ox),
// and the three products of the convolution are matrix products whose width is images × pixels:
//   forward       Y'[co][j] = Σ_k W[co][k] · col[k][j],     y[n, co, p] = Y'[co][j] + b[co]
//                 (by classes of output pixels, without the padding's taps: Conv2dColumnClasses.swift)
//   weight grad   dW[co][k] += Σ_j dY'[co][j] · col[k][j]
//   input grad    dcol[k][j] = Σ_co W[co][k] · dY'[co][j],   dx += col2im(dcol)
// Rows of col, Y' and dY' are `ld` floats: the chunk's columns rounded up to 16, the extra ones zero.
// The products run on OpenBLAS (one thread per block of C, `BLAS.parallelGemm`); copies are
// parallel over rows or channels. Every output element is summed by one thread in a fixed order, so
// results are bit-identical run to run for a given thread count.

package enum ColumnConv {
    /// Floats of col (or dcol) per chunk of images, at most (unless one image needs more).
    package static let chunkFloats = 1 << 21

    /// Whether the column path runs this convolution: one group, and output rows (whole planes for
    /// the direct kernel's flat layout) that fill at most a quarter of the direct kernel's vectors,
    /// or less than 3/4 of them with 64 or more output channels (with fewer, building the columns
    /// costs more than the idle lanes; measured on the classifiers' shapes).
    package static func applies(_ g: ConvGeometry) -> Bool {
        guard g.groups == 1 else { return false }
        let layout = DirectLayout(g)
        let width = layout.isFlat ? g.outPlane : g.outWidth
        let lanes = (width + 15) / 16 * 16
        return 4 * width <= lanes || (4 * width < 3 * lanes && g.outChannels >= 64)
    }

    /// Images per chunk, and the padded row length of a chunk of `images`.
    @inline(__always)
    static func imagesPerChunk(_ g: ConvGeometry, budget: Int) -> Int {
        max(1, min(g.batch, budget / max(1, g.colRows * g.outPlane)))
    }

    @inline(__always)
    static func rowLength(_ g: ConvGeometry, images: Int) -> Int { (images * g.outPlane + 15) / 16 * 16 }

    /// For each kernel tap t = ki·kW + kj and output pixel p of a plane, the offset in the input
    /// plane that the tap reads, or −1 where it reads padding: [taps][outPlane]. The same for every
    /// channel and image, so im2col and col2im are gathers and scatters through it.
    static func tapTable(_ g: ConvGeometry) -> [Int32] {
        let (kh, kw, ho, wo, p) = (g.kernelH, g.kernelW, g.outHeight, g.outWidth, g.outPlane)
        var table = [Int32](repeating: -1, count: kh * kw * p)
        for ki in 0..<kh {
            for kj in 0..<kw {
                for oy in 0..<ho {
                    let iy = oy * g.strideH - g.padH + ki * g.dilationH
                    guard iy >= 0 && iy < g.height else { continue }
                    for ox in 0..<wo {
                        let ix = ox * g.strideW - g.padW + kj * g.dilationW
                        if ix >= 0 && ix < g.width { table[(ki * kw + kj) * p + oy * wo + ox] = Int32(iy * g.width + ix) }
                    }
                }
            }
        }
        return table
    }

    /// Row k of col (receptive-field value k of every output pixel j) for images [n0, n0 + images)
    /// of x, into `ld` floats at `row` (the columns past the images' are zeroed).
    @inline(__always)
    static func im2colRow(_ g: ConvGeometry, table: UnsafePointer<Int32>, x: UnsafePointer<Float>, n0: Int, images: Int,
                          k: Int, into row: UnsafeMutablePointer<Float>, ld: Int) {
        let (plane, p, taps) = (g.height * g.width, g.outPlane, g.kernelH * g.kernelW)
        let c = k / taps, index = table + (k % taps) * p
        for n in 0..<images {
            let src = x + ((n0 + n) * g.inChannels + c) * plane, d = row + n * p
            for j in 0..<p {
                let i = Int(index[j])
                d[j] = i >= 0 ? src[i] : 0
            }
        }
        for j in (images * p)..<ld { row[j] = 0 }
    }

    /// col[k][j] for images [n0, n0 + images) of x: rows `ld` apart, or in panels
    /// (`storePanelRow`) when `panelled`. Rows over the threads.
    package static func im2col(_ g: ConvGeometry, table: UnsafePointer<Int32>, x: UnsafePointer<Float>, n0: Int, images: Int,
                               into col: UnsafeMutablePointer<Float>, ld: Int, panelled: Bool) {
        let rows = g.colRows
        ThreadPool.shared.run(count: rows, maxParticipants: max(1, rows * ld / 8192)) { _, lo, hi in
            if panelled {
                withUnsafeTemporaryAllocation(of: Float.self, capacity: ld) { tmp in
                    for k in lo..<hi {
                        im2colRow(g, table: table, x: x, n0: n0, images: images, k: k, into: tmp.baseAddress!, ld: ld)
                        storePanelRow(tmp.baseAddress!, row: k, rows: rows, ld: ld, into: col)
                    }
                }
            } else {
                for k in lo..<hi { im2colRow(g, table: table, x: x, n0: n0, images: images, k: k, into: col + k * ld, ld: ld) }
            }
        }
    }

    /// dx[images n0 ..< n0 + images] += col2im(dcol): every column value added back to the input
    /// pixel it was read from. Channels over the threads, so no two threads add into one value.
    package static func col2im(_ g: ConvGeometry, table: UnsafePointer<Int32>, dcol: UnsafePointer<Float>, ld: Int,
                               n0: Int, images: Int, into dx: UnsafeMutablePointer<Float>) {
        let (plane, p, taps) = (g.height * g.width, g.outPlane, g.kernelH * g.kernelW)
        parallelRanges(g.inChannels, grain: max(1, 8192 / max(1, taps * images * p))) { lo, hi in
            for c in lo..<hi {
                for n in 0..<images {
                    let dst = dx + ((n0 + n) * g.inChannels + c) * plane
                    for t in 0..<taps {
                        let index = table + t * p, src = dcol + (c * taps + t) * ld + n * p
                        for j in 0..<p {
                            let i = Int(index[j])
                            if i >= 0 { dst[i] += src[j] }
                        }
                    }
                }
            }
        }
    }

    // MARK: - panels

    /// Columns of an operand B [rows][ld] are stored in panels of `panelWidth` (three vectors, one
    /// forward tile): panel p holds columns [48p, 48p + w) as [rows][w] from 48p·rows, w = 48 but for
    /// the last panel (`panelSpan`). A tile then reads its 48 columns of row after row from one contiguous block
    /// (rows `ld` apart would map to a few L1 sets when ld is a power of two, and thrash).
    package static let panelWidth = 48

    /// Panels of a row `ld` floats long: 48 columns each, but a last 16 joins the panel before it
    /// (64 columns: two tiles of two vectors instead of 3 + 1, whose one-vector tile loads a
    /// broadcast weight per multiply-add).
    @inline(__always)
    package static func panelCount(_ ld: Int) -> Int {
        let n = (ld + panelWidth - 1) / panelWidth
        return ld % panelWidth == 16 && n > 1 ? n - 1 : n
    }

    /// Columns of panel p (which starts at p·48) of a row `ld` floats long.
    @inline(__always)
    package static func panelSpan(_ p: Int, ld: Int) -> Int {
        p == panelCount(ld) - 1 ? ld - p * panelWidth : panelWidth
    }

    /// Writes row r (`ld` floats at `src`) of a panelled operand of `rows` rows.
    @inline(__always)
    package static func storePanelRow(_ src: UnsafePointer<Float>, row r: Int, rows: Int, ld: Int,
                                      into b: UnsafeMutablePointer<Float>) {
        for p in 0..<panelCount(ld) {
            let j0 = p * panelWidth, w = panelSpan(p, ld: ld)
            (b + j0 * rows + r * w).update(from: src + j0, count: w)
        }
    }

    /// C[m][j] = Σ_kk A(kk, m)·B[kk][j] for j < ld (a multiple of 16), on the direct forward tile.
    /// A(kk, m) is a[m·lda + kk] when `aRows` (W [Cout][K] in the forward: each block's slice is
    /// packed to [kk][mr] on the fly, in L1), else a[kk·lda + m] (Wᵀ in the input gradient: read in
    /// place). B is in panels (`storePanelRow`), C rows `ld` apart. K in slices of `kSlice`: a row
    /// block's slice of A stays in L1 while it passes over the slice of every panel (in L2); every
    /// slice after the first adds to C. Row blocks (or, for wide products, panels) over the threads.
    package static func tileProduct(m: Int, k: Int, ld: Int, a: UnsafePointer<Float>, lda: Int, aRows: Bool,
                                    b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let panels = panelCount(ld)
        let slice = min(k, kSlice)
        // tap offsets for panels of 4, 3, 2 and 1 vectors
        let (taps, bases) = panelOffsets(slice: slice)
        let blocks = (m + 7) / 8
        let byRows = blocks >= panels
        taps.withUnsafeBufferPointer { taps in
        bases.withUnsafeBufferPointer { bases in
            let bases = bases.baseAddress!
            ThreadPool.shared.run(count: byRows ? blocks : panels) { _, lo, hi in
                let (r0, r1) = byRows ? (lo * 8, min(m, hi * 8)) : (0, m)
                let (p0, p1) = byRows ? (0, panels) : (lo, hi)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: aRows ? kSlice * 8 : 1) { packed in
                    let packed = packed.baseAddress!
                    var k0 = 0
                    while k0 < k {
                        let kk = min(kSlice, k - k0)
                        var row = r0
                        while row < r1 {
                            let mr = DirectConv.blockHeight(min(8, r1 - row))
                            let weights: UnsafePointer<Float>
                            if aRows {
                                let src = a + row * lda + k0
                                if mr == 8 {
                                    for t in 0..<kk { for i in 0..<8 { packed[t * 8 + i] = src[i * lda + t] } }
                                } else {
                                    for t in 0..<kk { for i in 0..<mr { packed[t * mr + i] = src[i * lda + t] } }
                                }
                                weights = UnsafePointer(packed)
                            } else {
                                weights = a + k0 * lda + row
                            }
                            for p in p0..<p1 {
                                let j0 = p * panelWidth, nv = panelSpan(p, ld: ld) / 16
                                let panel = b + j0 * k + k0 * nv * 16
                                let out = c + row * ld + j0
                                var args = FwdTileArgs(weights: weights, input: panel, taps: taps.baseAddress! + (nv - 1) * slice,
                                                       k: kk, inBase: bases, outBase: bases, output: out, outStride: ld,
                                                       initial: TileConstants.zeros, initialStride: 0,
                                                       initialBase: TileConstants.zeroOffsets, weightStride: aRows ? 0 : lda)
                                sweepPanel(&args, mr: mr, nv: nv, panel: panel, out: out, accumulate: k0 > 0, ld: ld, bases: bases)
                            }
                            row += mr
                        }
                        k0 += kk
                    }
                }
            }
        }}
    }

    /// Runs the micro-kernel across one packed panel of `nv` vectors, `mr` output rows: the
    /// widest tiles first; with `accumulate`, each tile adds to what `out` already holds (the
    /// later slices of K).
    @inline(__always)
    static func sweepPanel(_ args: inout FwdTileArgs, mr: Int, nv: Int, panel: UnsafePointer<Float>,
                           out: UnsafeMutablePointer<Float>, accumulate: Bool, ld: Int, bases: UnsafePointer<Int>) {
        var v = 0
        while v < nv {
            let width = DirectConv.tileWidth(mr: mr, remaining: nv - v)
            args.input = panel + v * 16
            args.output = out + v * 16
            if accumulate { (args.initial, args.initialStride, args.initialBase) = (UnsafePointer(args.output), ld, bases) }
            DirectConv.forwardTile(mr: mr, nv: width, args)
            v += width
        }
    }

    /// Length of the slices of K in `tileProduct`.
    package static let kSlice = 128

    /// The micro-kernel's offsets into a packed panel: for panels of 4, 3, 2 and 1 vectors
    /// (`(w - 1) * slice + kk`: row kk of a panel w vectors wide), and the 12 vector bases.
    static func panelOffsets(slice: Int) -> (taps: [Int], bases: [Int]) {
        var taps = [Int](repeating: 0, count: 4 * slice)
        for w in 1...4 { for kk in 0..<slice { taps[(w - 1) * slice + kk] = kk * w * 16 } }
        return (taps, (0..<12).map { $0 * 16 })
    }

    /// Accumulates dx += ∂L/∂x and dW += ∂L/∂W (those asked for) from dy.
    package static func backward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                 dWeight: UnsafeMutablePointer<Float>?, chunkFloats: Int = chunkFloats) throws {
        guard dx != nil || dWeight != nil else { return }
        let (k, p, cout) = (g.colRows, g.outPlane, g.outChannels)
        let chunkImages = imagesPerChunk(g, budget: chunkFloats)
        let maxLd = rowLength(g, images: chunkImages)
        // col (then dcol), dY' by rows, dY' in panels
        let scratch = try Storage(count: (k + 2 * cout) * maxLd)
        let col = scratch.pointer, dyRows = col + k * maxLd, dyPanels = dyRows + cout * maxLd
        let tapTable = tapTable(g)
        tapTable.withUnsafeBufferPointer { table in
        let table = table.baseAddress!
        var n0 = 0
        while n0 < g.batch {
            let images = min(chunkImages, g.batch - n0), ld = rowLength(g, images: images)
            // dY'[co][j] from dy
            parallelRanges(cout, grain: max(1, 8192 / max(1, ld))) { lo, hi in
                for co in lo..<hi {
                    let row = dyRows + co * ld
                    for n in 0..<images { (row + n * p).update(from: dy + ((n0 + n) * cout + co) * p, count: p) }
                    for j in (images * p)..<ld { row[j] = 0 }
                    if dx != nil { storePanelRow(row, row: co, rows: cout, ld: ld, into: dyPanels) }
                }
            }
            if let dWeight {
                im2col(g, table: table, x: x, n0: n0, images: images, into: col, ld: ld, panelled: false)
                BLAS.parallelGemm(transB: true, m: cout, n: k, k: ld, a: dyRows, lda: ld, b: col, ldb: ld,
                                  beta: 1, c: dWeight, ldc: k)
            }
            if let dx {
                // dcol (in col's place) = Wᵀ · dY'
                tileProduct(m: k, k: cout, ld: ld, a: weight, lda: k, aRows: false, b: dyPanels, c: col)
                col2im(g, table: table, dcol: col, ld: ld, n0: n0, images: images, into: dx)
            }
            n0 += images
        }
        }
        withExtendedLifetime(scratch) {}
    }
}
