// Winograd F(4×4, 3×3) convolution (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
// Networks") for 3×3, stride-1, undilated, ungrouped convolutions: the U-Net's and the classifiers'
// most expensive layers. Each 4×4 output tile is
//   Y = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B) ] A          d: the 6×6 input tile, g: a 3×3 kernel
// so a tile costs 36 multiply-adds per channel pair instead of 144; the transforms only add.
// With U[ξ] = (G g Gᵀ)[ξ] and V[ξ] = (Bᵀ d B)[ξ] for the 36 positions ξ of a 6×6 tile, the sum over
// input channels is one matrix product per ξ, M[ξ] = U[ξ] · V[ξ], run on the direct forward tile
// (FwdTile) as a 1×1 convolution over tiles.
// Points 0, ±1, ±2 (the matrices below). Accuracy: the largest error over a layer's outputs is
// 2–6e-6 of the largest output, against 2–9e-7 for the direct sum (WinogradTests), far inside the
// engine's 1e-4 tolerances; the weights are transformed in Float, eight kernels per vector.
//
// Layout. Tiles are handled in "chunks" of four horizontally adjacent tiles (16 output columns of
// 4 rows), and lane l of a vector is tile l mod 4 of chunk l / 4 of the vector's four chunks: the
// 6×6 input values of 16 tiles come from 4×2 row loads of 16 floats per input row, split by a
// 4-way unshuffle (`deinterleave4`). Images are packed with their zero padding (rows of a whole
// number of chunks), so no load needs a bounds check; tiles past the output's edge are computed
// and not stored. A block of chunks of one image is transformed into V [36][Cin][slots], multiplied
// into M [36][Cout][slots] and transformed back, with V and M in L2.
// The input gradient of a 3×3 stride-1 convolution is the forward convolution of dy with the
// transposed, flipped kernel: it runs here too, adding into dx. The weight gradient is in
// Conv2dWinogradWeightGradient.swift.

package enum Winograd {
    /// Whether the Winograd path runs this convolution: 3×3, stride 1, no dilation, one group,
    /// padding at most 2, enough channels for the transforms to pay, and output maps that fill
    /// the 4×4 tiles of whole chunks well enough.
    package static func applies(_ g: ConvGeometry) -> Bool {
        guard g.kernelH == 3, g.kernelW == 3, g.strideH == 1, g.strideW == 1, g.dilationH == 1, g.dilationW == 1,
              g.groups == 1, g.padH <= 2, g.padW <= 2, g.inChannels >= 16, g.outChannels >= 16,
              g.outHeight >= 8, g.outWidth >= 12 else { return false }
        let plan = WinogradPlan(g)
        // outputs over computed tile outputs (whole vectors of 4 chunks of 4×16)
        let computed = plan.blocksPerImage * plan.slots * 16
        return Double(g.outPlane) >= 0.5 * Double(computed)
    }

    /// The kernel transform U = G g Gᵀ, with
    /// G = [[1/4, 0, 0], [−1/6, −1/6, −1/6], [−1/6, 1/6, −1/6], [1/24, 1/12, 1/6], [1/24, −1/12, 1/6], [0, 0, 1]].
    package static let gMatrix: [[Double]] = [
        [1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1],
    ]

    /// The six values of G v for one column (or row) v of three: the rows of `gMatrix` (which the
    /// weight gradient reads) written out, lane by lane.
    @inline(__always)
    static func gColumn(_ v0: SIMD8<Float>, _ v1: SIMD8<Float>, _ v2: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let even = v0 + v2, outer = v0 * (1.0 / 24) + v2 * (1.0 / 6), middle = v1 * (1.0 / 12)
        return (v0 * 0.25, (even + v1) * (-1.0 / 6), (even - v1) * (-1.0 / 6), outer + middle, outer - middle, v2)
    }

    /// U = G g Gᵀ for eight 3×3 kernels at once (lane l: kernel l, g[i][j] = k[i·3 + j]), in
    /// Float: U[ξ] lane l into out(ξ), ξ = a·6 + b.
    @inline(__always)
    static func transformKernels(_ k: InlineArray<9, SIMD8<Float>>, _ out: (Int, SIMD8<Float>) -> Void) {
        var t = InlineArray<18, SIMD8<Float>>(repeating: SIMD8())   // G·g, [6][3]
        for j in 0..<3 {
            let c = gColumn(k[j], k[3 + j], k[6 + j])
            t[j] = c.0; t[3 + j] = c.1; t[6 + j] = c.2; t[9 + j] = c.3; t[12 + j] = c.4; t[15 + j] = c.5
        }
        for a in 0..<6 {
            let r = gColumn(t[a * 3], t[a * 3 + 1], t[a * 3 + 2])
            out(a * 6, r.0); out(a * 6 + 1, r.1); out(a * 6 + 2, r.2)
            out(a * 6 + 3, r.3); out(a * 6 + 4, r.4); out(a * 6 + 5, r.5)
        }
    }

    /// Transformed weights for the forward tiles: per ξ, blocks of output channels as
    /// `DirectConv.packWeights` lays them out ([Cin][mr] at co0·Cin), ξ blocks Cout·Cin apart. With
    /// `transposed`, the weights of the input gradient: output channel ci, input channel co, kernel
    /// W[co, ci] flipped.
    package static func packWeights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>, transposed: Bool,
                                    into dst: UnsafeMutablePointer<Float>) {
        let (rows, cols) = transposed ? (g.inChannels, g.outChannels) : (g.outChannels, g.inChannels)
        let perXi = rows * cols
        let slots = (rows + 7) / 8
        ThreadPool.shared.forRanges(slots, grain: max(1, 4096 / max(1, 8 * cols))) { lo, hi in
            for slot in lo..<hi {
                let r0 = slot * 8, r1 = min(rows, r0 + 8)
                var b0 = r0
                while b0 < r1 {
                    let mr = DirectConv.blockHeight(r1 - b0)
                    for c in 0..<cols {
                        // lane m: the kernel of (row b0 + m, column c), W[co, ci] by orientation
                        var k = InlineArray<9, SIMD8<Float>>(repeating: SIMD8())
                        for m in 0..<mr {
                            let (co, ci) = transposed ? (c, b0 + m) : (b0 + m, c)
                            let kernel = weight + (co * g.inChannels + ci) * 9
                            for tap in 0..<9 { k[tap][m] = kernel[transposed ? 8 - tap : tap] }
                        }
                        let block = dst + b0 * cols + c * mr
                        transformKernels(k) { xi, u in
                            if mr == 8 {
                                UnsafeMutableRawPointer(block + xi * perXi).storeBytes(of: u, as: SIMD8<Float>.self)
                            } else {
                                for m in 0..<mr { block[xi * perXi + m] = u[m] }
                            }
                        }
                    }
                    b0 += mr
                }
            }
        }
    }

    /// y (+)= conv3×3(x, W) (+ bias) through the transforms, for a geometry `applies` accepts;
    /// `packedWeights` from `packWeights` (transposed for the input gradient, whose output dx is
    /// accumulated into).
    package static func convolve(_ g: ConvGeometry, x: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, accumulate: Bool) throws {
        let plan = WinogradPlan(g)
        let (cin, cout, s) = (g.inChannels, g.outChannels, plan.slots)
        let items = g.batch * plan.blocksPerImage
        let threads = min(ThreadPool.shared.threadCount, items)
        let vCount = 36 * cin * s, mCount = 36 * cout * s
        let perThread = plan.imageCount + vCount + mCount
        let scratch = try Storage(count: perThread * threads)
        let inImage = cin * g.height * g.width, outImage = cout * g.outPlane
        // GEMM operands: V[ξ] rows (input channels) s apart, vectors of 16 slots
        let taps = (0..<cin).map { $0 * s }, bases = (0..<12).map { $0 * 16 }
        taps.withUnsafeBufferPointer { taps in
        bases.withUnsafeBufferPointer { bases in
            ThreadPool.shared.run(count: items, maxParticipants: threads) { participant, lo, hi in
                let packed = scratch.pointer + participant * perThread
                let v = packed + plan.imageCount, m = v + vCount
                plan.clear(packed)
                var packedImage = -1
                var chunks = InlineArray<48, Int>(repeating: -1)
                for item in lo..<hi {
                    let n = item / plan.blocksPerImage, block = item % plan.blocksPerImage
                    if n != packedImage {
                        plan.pack(x + n * inImage, channels: cin, into: packed)
                        packedImage = n
                    }
                    let vectors = plan.chunks(ofBlock: block, into: &chunks)
                    // V = Bᵀ d B for every input channel and vector of tiles
                    for c in 0..<cin {
                        for vec in 0..<vectors {
                            let q = (chunks[4 * vec], chunks[4 * vec + 1], chunks[4 * vec + 2], chunks[4 * vec + 3])
                            inputTile(packed + c * plan.plane, plan.chunkOffsets(q), pitch: plan.pitch,
                                      into: v + c * s + vec * 16, stride: cin * s)
                        }
                    }
                    // M[ξ] = U[ξ] · V[ξ]
                    for xi in 0..<36 {
                        var co0 = 0
                        while co0 < cout {
                            let mr = DirectConv.blockHeight(cout - co0)
                            let vXi = UnsafePointer(v + xi * cin * s), mBlock = m + (xi * cout + co0) * s
                            var args = FwdTileArgs(weights: packedWeights + (xi * cout + co0) * cin, input: vXi,
                                                   taps: taps.baseAddress!, k: cin, inBase: bases.baseAddress!,
                                                   outBase: bases.baseAddress!, output: mBlock,
                                                   outStride: s, initial: TileConstants.zeros, initialStride: 0,
                                                   initialBase: TileConstants.zeroOffsets)
                            var vec = 0
                            while vec < vectors {
                                let width = DirectConv.tileWidth(mr: mr, remaining: vectors - vec)
                                let offset = vec * 16
                                args.input = vXi + offset
                                args.output = mBlock + offset
                                DirectConv.forwardTile(mr: mr, nv: width, args)
                                vec += width
                            }
                            co0 += mr
                        }
                    }
                    // Y = Aᵀ M A (+ bias) into the output planes
                    let out = y + n * outImage
                    for co in 0..<cout {
                        for vec in 0..<vectors {
                            outputTile(m + co * s + vec * 16, stride: cout * s, plan: plan, chunks: &chunks, vector: vec,
                                       bias: bias.map { $0[co] } ?? 0, into: out + co * g.outPlane, accumulate: accumulate)
                        }
                    }
                }
            }
        }}
        withExtendedLifetime(scratch) {}
    }

    /// y = conv3×3(x, W) + bias.
    package static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, cacheWeights: Bool = false) throws {
        let packed = try forwardWeights(g, weight, cached: cacheWeights)
        try convolve(g, x: x, packedWeights: packed.pointer, bias: bias, y: y, accumulate: false)
        withExtendedLifetime(packed) {}
    }

    /// The forward weights packed by `packWeights`, from `WinogradWeightCache` when `cached`.
    package static func forwardWeights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>, cached: Bool) throws -> Storage {
        if cached { return try WinogradWeightCache.shared.packedWeights(g, weight) }
        let packed = try Storage(count: 36 * g.outChannels * g.inChannels)
        packWeights(g, weight, transposed: false, into: packed.pointer)
        return packed
    }

    /// dx += ∂L/∂x for geometry g, as the forward convolution `t` (`DirectConv.inputGradientGeometry`)
    /// of dy with the transposed, flipped kernel.
    package static func inputGradient(_ g: ConvGeometry, _ t: ConvGeometry, weight: UnsafePointer<Float>,
                                      dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) throws {
        let packed = try Storage(count: 36 * g.outChannels * g.inChannels)
        packWeights(g, weight, transposed: true, into: packed.pointer)
        try convolve(t, x: dy, packedWeights: packed.pointer, bias: nil, y: dx, accumulate: true)
        withExtendedLifetime(packed) {}
    }

    // MARK: - transforms of 16 tiles at once

    /// Splits 64 consecutive floats (four vectors a, b, c, d) by index mod 4: result j holds
    /// elements 4l + j. Written lane by lane, which LLVM turns into two-source permutes
    /// (as `evenElements`).
    @inline(__always)
    package static func deinterleave4(_ a: ConvVector, _ b: ConvVector, _ c: ConvVector, _ d: ConvVector)
        -> (ConvVector, ConvVector, ConvVector, ConvVector) {
        let r0 = ConvVector(a[0], a[4], a[8], a[12], b[0], b[4], b[8], b[12],
                           c[0], c[4], c[8], c[12], d[0], d[4], d[8], d[12])
        let r1 = ConvVector(a[1], a[5], a[9], a[13], b[1], b[5], b[9], b[13],
                           c[1], c[5], c[9], c[13], d[1], d[5], d[9], d[13])
        let r2 = ConvVector(a[2], a[6], a[10], a[14], b[2], b[6], b[10], b[14],
                           c[2], c[6], c[10], c[14], d[2], d[6], d[10], d[14])
        let r3 = ConvVector(a[3], a[7], a[11], a[15], b[3], b[7], b[11], b[15],
                           c[3], c[7], c[11], c[15], d[3], d[7], d[11], d[15])
        return (r0, r1, r2, r3)
    }

    /// Inverse of `deinterleave4`: result k lane 4l + c is input c's lane 4k + l.
    @inline(__always)
    package static func interleave4(_ a: ConvVector, _ b: ConvVector, _ c: ConvVector, _ d: ConvVector)
        -> (ConvVector, ConvVector, ConvVector, ConvVector) {
        let r0 = ConvVector(a[0], b[0], c[0], d[0], a[1], b[1], c[1], d[1],
                           a[2], b[2], c[2], d[2], a[3], b[3], c[3], d[3])
        let r1 = ConvVector(a[4], b[4], c[4], d[4], a[5], b[5], c[5], d[5],
                           a[6], b[6], c[6], d[6], a[7], b[7], c[7], d[7])
        let r2 = ConvVector(a[8], b[8], c[8], d[8], a[9], b[9], c[9], d[9],
                           a[10], b[10], c[10], d[10], a[11], b[11], c[11], d[11])
        let r3 = ConvVector(a[12], b[12], c[12], d[12], a[13], b[13], c[13], d[13],
                           a[14], b[14], c[14], d[14], a[15], b[15], c[15], d[15])
        return (r0, r1, r2, r3)
    }

    /// (t0 … t5) = Bᵀ (d0 … d5), Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
    /// [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]].
    @inline(__always)
    package static func bt(_ d: inout InlineArray<6, ConvVector>) {
        let (d0, d1, d2, d3, d4, d5) = (d[0], d[1], d[2], d[3], d[4], d[5])
        let a = d4.addingProduct(d2, -4), b = d3.addingProduct(d1, -4)
        let c = d4 - d2, e = (d3 - d1) * 2
        d[0] = d4.addingProduct(d2, -5).addingProduct(d0, 4)
        d[1] = a + b
        d[2] = a - b
        d[3] = c + e
        d[4] = c - e
        d[5] = d5.addingProduct(d3, -5).addingProduct(d1, 4)
    }

    /// (o0 … o3) = Aᵀ (m0 … m5), Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0],
    /// [0, 1, −1, 8, −8, 1]].
    @inline(__always)
    package static func at(_ m0: ConvVector, _ m1: ConvVector, _ m2: ConvVector, _ m3: ConvVector, _ m4: ConvVector,
                           _ m5: ConvVector) -> (ConvVector, ConvVector, ConvVector, ConvVector) {
        let p = m1 + m2, q = m1 - m2, r = m3 + m4, s = m3 - m4
        return (m0 + p + r, q.addingProduct(s, 2), p.addingProduct(r, 4), q.addingProduct(s, 8) + m5)
    }

    /// V[ξ] = (Bᵀ d B)[ξ] for the 16 tiles of four chunks (`offsets`: each chunk's top-left in the
    /// packed plane `src`), into out[ξ·stride], ξ = a·6 + b.
    @inline(__always)
    package static func inputTile(_ src: UnsafePointer<Float>, _ offsets: (Int, Int, Int, Int), pitch: Int,
                                  into out: UnsafeMutablePointer<Float>, stride: Int) {
        var e = zeroVectors36()   // [row i][b]
        for i in 0..<6 {
            let r = src + i * pitch
            let (p0, p1, p2, p3) = (r + offsets.0, r + offsets.1, r + offsets.2, r + offsets.3)
            let (c0, c1, c2, c3) = deinterleave4(loadVector(p0), loadVector(p1), loadVector(p2), loadVector(p3))
            let (c4, c5, _, _) = deinterleave4(loadVector(p0 + 4), loadVector(p1 + 4), loadVector(p2 + 4), loadVector(p3 + 4))
            var d = zeroVectors6()
            d[0] = c0; d[1] = c1; d[2] = c2; d[3] = c3; d[4] = c4; d[5] = c5
            bt(&d)
            for b in 0..<6 { e[i * 6 + b] = d[b] }
        }
        for b in 0..<6 {
            var d = zeroVectors6()
            for i in 0..<6 { d[i] = e[i * 6 + b] }
            bt(&d)
            for a in 0..<6 { storeVector(out + (a * 6 + b) * stride, d[a]) }
        }
    }

    /// Y = Aᵀ M A for the 16 tiles of vector `vector` of a block (M[ξ] at m + ξ·stride), plus
    /// `bias`, written (or added) into the output plane `out` for the tiles inside it.
    @inline(__always)
    package static func outputTile(_ m: UnsafePointer<Float>, stride: Int, plan: WinogradPlan, chunks: inout InlineArray<48, Int>,
                                   vector: Int, bias: Float, into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        var col = zeroVectors24()   // [row r][b]
        for b in 0..<6 {
            let (o0, o1, o2, o3) = at(loadVector(m + b * stride), loadVector(m + (6 + b) * stride),
                                      loadVector(m + (12 + b) * stride), loadVector(m + (18 + b) * stride),
                                      loadVector(m + (24 + b) * stride), loadVector(m + (30 + b) * stride))
            col[b] = o0; col[6 + b] = o1; col[12 + b] = o2; col[18 + b] = o3
        }
        let biasVector = ConvVector(repeating: bias)
        let (ho, wo) = (plan.g.outHeight, plan.g.outWidth)
        for r in 0..<4 {
            let (y0, y1, y2, y3) = at(col[r * 6], col[r * 6 + 1], col[r * 6 + 2], col[r * 6 + 3], col[r * 6 + 4], col[r * 6 + 5])
            let rows = interleave4(y0 + biasVector, y1 + biasVector, y2 + biasVector, y3 + biasVector)
            var row = InlineArray<4, ConvVector>(repeating: ConvVector())
            row[0] = rows.0; row[1] = rows.1; row[2] = rows.2; row[3] = rows.3
            for k in 0..<4 {
                let chunk = chunks[4 * vector + k]
                guard chunk >= 0 else { continue }
                let ty = chunk / plan.chunksX, cx = chunk % plan.chunksX
                let oy = 4 * ty + r, ox = 16 * cx
                guard oy < ho else { continue }
                let dst = out + oy * wo + ox
                let count = min(16, wo - ox)
                if count == 16 {
                    storeVector(dst, accumulate ? loadVector(dst) + row[k] : row[k])
                } else {
                    let v = row[k]
                    for l in 0..<count { dst[l] = accumulate ? dst[l] + v[l] : v[l] }
                }
            }
        }
    }
}

/// How a geometry's output is cut into 4×4 tiles, chunks of four tiles and blocks of chunks, and
/// the packed (zero-padded) copy of one image that the input transform reads.
package struct WinogradPlan {
    package let g: ConvGeometry
    package let tilesY: Int, chunksX: Int, chunksPerImage: Int
    /// Packed image: `rows` rows of `pitch` floats per channel, input (iy, ix) at (iy + padH, ix + padW).
    package let rows: Int, pitch: Int, plane: Int, imageCount: Int
    /// Chunks per block (four per vector of 16 tiles) and blocks per image; `slots` = 16 × vectors
    /// of a full block.
    package let vectorsPerBlock: Int, blocksPerImage: Int, slots: Int

    package init(_ g: ConvGeometry) {
        self.g = g
        tilesY = (g.outHeight + 3) / 4
        chunksX = (g.outWidth + 15) / 16
        chunksPerImage = tilesY * chunksX
        rows = 4 * tilesY + 2
        pitch = 16 * chunksX + 4          // the +4 load of the last chunk reads up to column 16·chunksX + 3
        plane = rows * pitch
        imageCount = max(g.inChannels, 1) * plane + 16
        // V and M of a block in about 1.2 MB of L2; at least one vector (up to 12, the tile width)
        let perVector = 36 * 16 * (g.inChannels + g.outChannels)
        let vectorsPerImage = (chunksPerImage + 3) / 4
        vectorsPerBlock = max(1, min(12, vectorsPerImage, 300_000 / max(1, perVector)))
        blocksPerImage = (vectorsPerImage + vectorsPerBlock - 1) / vectorsPerBlock
        slots = 16 * vectorsPerBlock
    }

    /// Zeroes a packed-image buffer (padding is never written by `pack`).
    package func clear(_ dst: UnsafeMutablePointer<Float>) { dst.update(repeating: 0, count: imageCount) }

    /// Writes an image [channels, H, W] into a buffer prepared by `clear`.
    package func pack(_ x: UnsafePointer<Float>, channels: Int, into dst: UnsafeMutablePointer<Float>) {
        let (h, w) = (g.height, g.width)
        let rowsIn = min(h, rows - g.padH), colsIn = min(w, pitch - g.padW)
        for c in 0..<channels {
            for iy in 0..<rowsIn {
                (dst + c * plane + (iy + g.padH) * pitch + g.padW).update(from: x + (c * h + iy) * w, count: colsIn)
            }
        }
    }

    /// The chunk indices (ty·chunksX + cx) of block `block`, four per vector, −1 past the image's
    /// last chunk; returns the number of vectors.
    @inline(__always)
    package func chunks(ofBlock block: Int, into dst: inout InlineArray<48, Int>) -> Int {
        let first = block * vectorsPerBlock * 4
        let count = min(vectorsPerBlock * 4, chunksPerImage - first)
        for i in 0..<(vectorsPerBlock * 4) { dst[i] = i < count ? first + i : -1 }
        return (count + 3) / 4
    }

    /// Offsets in a packed plane of the top-left input of four chunks (chunk −1 reads chunk 0).
    @inline(__always)
    package func chunkOffsets(_ q: (Int, Int, Int, Int)) -> (Int, Int, Int, Int) {
        @inline(__always) func offset(_ c: Int) -> Int { c < 0 ? 0 : (c / chunksX) * 4 * pitch + (c % chunksX) * 16 }
        return (offset(q.0), offset(q.1), offset(q.2), offset(q.3))
    }
}
