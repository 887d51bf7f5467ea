// Direct convolution, part 2 of 4: the forward micro-kernel (FwdTile) and the driver that runs it
// over images, channel blocks and output vectors (see Conv2dDirectLayout.swift for the layout).
// The input gradient reuses this driver on dy with the transposed, flipped kernel.

// MARK: - forward micro-kernel

/// Arguments of one forward tile: MR output channels × NV vectors of 16 output pixels.
package struct FwdTileArgs {
    /// Packed weights of the block, [k][MR].
    package var weights: UnsafePointer<Float>
    /// Packed input of the group.
    package var input: UnsafePointer<Float>
    package var taps: UnsafePointer<Int>
    package var k: Int
    /// Per vector: offset of its first pixel in the packed input and in the output plane.
    package var inBase: UnsafePointer<Int>, outBase: UnsafePointer<Int>
    /// Output plane of the block's first channel, and floats between channel planes.
    package var output: UnsafeMutablePointer<Float>
    package var outStride: Int
    /// Starting values of the accumulators: vector v of row m at initial + m·initialStride +
    /// initialBase[v]. The output itself when accumulating, a bias broadcast to [MR][16], or zeros
    /// (`TileConstants`): one unconditional load, which keeps the accumulators in registers.
    package var initial: UnsafePointer<Float>
    package var initialStride: Int
    package var initialBase: UnsafePointer<Int>
    /// Floats between the weights of consecutive k; 0 means MR (packed blocks).
    package var weightStride: Int = 0
}

/// Constant operands of the tiles: zeros to start accumulators from, and zero offsets.
package enum TileConstants {
    package static let zeros: UnsafePointer<Float> = {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 16)
        p.initialize(repeating: 0, count: 16)
        return UnsafePointer(p)
    }()
    package static let zeroOffsets: UnsafePointer<Int> = {
        let p = UnsafeMutablePointer<Int>.allocate(capacity: 12)
        p.initialize(repeating: 0, count: 12)
        return UnsafePointer(p)
    }()
}

/// out[m, v] (+)= Σ_k w[k·step + m] · in[tap_k + base_v], in registers (MR·NV ≤ 24 accumulators), for
/// whole vectors (the driver stages tiles with partial vectors, see `DirectConv.runTiles`).
/// Written so that the accumulators are only ever indexed by constants and set and stored without
/// conditions: LLVM then keeps all of them in registers (a conditional on either side, or handing
/// them to a call, sends them through a 1.5 KB stack buffer, stored again on every k: half speed).
package enum FwdTile<let MR: Int, let NV: Int> {
    @inline(never)
    static func run(_ a: FwdTileArgs) {
        // literals, not InlineArray(repeating:): LLVM outlines that initialiser, and an array whose
        // address is handed to a call stays in memory
        let z = ConvVector()
        var acc: InlineArray<24, ConvVector> = [z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z]
        for m in 0..<MR {
            let row = a.initial + m * a.initialStride
            for v in 0..<NV { acc[m * NV + v] = loadVector(row + a.initialBase[v]) }
        }
        let i = a.input
        var x: InlineArray<12, UnsafePointer<Float>> = [i, i, i, i, i, i, i, i, i, i, i, i]
        for v in 0..<NV { x[v] = a.input + a.inBase[v] }
        var w = a.weights
        let step = a.weightStride == 0 ? MR : a.weightStride
        for kk in 0..<a.k {
            let o = a.taps[kk]
            for m in 0..<MR {
                let s = ConvVector(repeating: w[m])
                for v in 0..<NV { acc[m * NV + v] = acc[m * NV + v].addingProduct(loadVector(x[v] + o), s) }
            }
            w += step
        }
        for m in 0..<MR {
            let row = a.output + m * a.outStride
            for v in 0..<NV { storeVector(row + a.outBase[v], acc[m * NV + v]) }
        }
    }
}

// MARK: - drivers

/// What the forward tiles of one image need besides its packed input and output: the tap offsets,
/// the output vectors, the packed weights (`DirectConv.packWeights` layout: channel c's block at
/// c·k) and where channel planes and groups sit.
package struct TilePass {
    package var taps: UnsafePointer<Int>
    package var k: Int
    package var inBase: UnsafePointer<Int>, outBase: UnsafePointer<Int>, lanes: UnsafePointer<Int>
    package var groups: Int, channelsPerGroup: Int
    package var weights: UnsafePointer<Float>
    /// Floats between groups in the packed input, and between output channel planes.
    package var inputGroupStride: Int, outStride: Int
    package var bias: UnsafePointer<Float>?
    package var accumulate: Bool
}

package enum DirectConv {
    /// Height of the next output-channel block when `remaining` channels are left: 8, 4, 2 or 1.
    @inline(__always)
    package static func blockHeight(_ remaining: Int) -> Int {
        remaining >= 8 ? 8 : remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1
    }

    /// Vectors in the next forward tile of an MR-channel block when `remaining` vectors are left:
    /// MR·NV ≤ 24 accumulators (8×3, 4×6, 2×8, 1×12), and a remainder splits greedily into the
    /// instantiated smaller widths.
    @inline(__always)
    package static func tileWidth(mr: Int, remaining r: Int) -> Int {
        switch mr {
        case 8: return r == 4 ? 2 : min(r, 3)               // 16 = 3+3+3+3+2+2, not …+3+1
        case 4: return r == 4 ? 2 : r == 5 || r == 7 ? 3 : min(r, 6)
        case 2: return r >= 8 ? 8 : r >= 4 ? 4 : r >= 2 ? 2 : 1
        default: return r >= 12 ? 12 : r >= 6 ? 6 : r >= 3 ? 3 : r
        }
    }

    @inline(__always)
    package static func forwardTile(mr: Int, nv: Int, _ a: FwdTileArgs) {
        switch (mr, nv) {
        case (8, 3): FwdTile<8, 3>.run(a)
        case (8, 2): FwdTile<8, 2>.run(a)
        case (8, _): FwdTile<8, 1>.run(a)
        case (4, 6): FwdTile<4, 6>.run(a)
        case (4, 3): FwdTile<4, 3>.run(a)
        case (4, 2): FwdTile<4, 2>.run(a)
        case (4, _): FwdTile<4, 1>.run(a)
        case (2, 8): FwdTile<2, 8>.run(a)
        case (2, 4): FwdTile<2, 4>.run(a)
        case (2, 2): FwdTile<2, 2>.run(a)
        case (2, _): FwdTile<2, 1>.run(a)
        case (_, 12): FwdTile<1, 12>.run(a)
        case (_, 6): FwdTile<1, 6>.run(a)
        case (_, 3): FwdTile<1, 3>.run(a)
        case (_, 2): FwdTile<1, 2>.run(a)
        default: FwdTile<1, 1>.run(a)
        }
    }

    /// Packs weights for the forward kernel: per group, per channel block (co0, mr), [k][mr]; blocks
    /// sit at (group·outPerGroup + co0)·K. Element (kk, m) of a block is weight[row(co0 + m) + kk]
    /// when `transposed` is false (rows of K floats), and for the input gradient's transposed,
    /// flipped kernel W'[ci, co, tap'] = W[co, ci, taps − 1 − tap'] when it is true.
    package static func packWeights(_ g: ConvGeometry, _ weight: UnsafePointer<Float>, transposed: Bool,
                            into dst: UnsafeMutablePointer<Float>) {
        let taps = g.kernelH * g.kernelW
        let (groups, rowsPerGroup) = (g.groups, transposed ? g.inPerGroup : g.outPerGroup)
        let k = transposed ? g.outPerGroup * taps : g.colRows
        // blocks of 8 rows (the last ones of a group smaller) over the threads
        let slots = (rowsPerGroup + 7) / 8
        ThreadPool.shared.forRanges(groups * slots, grain: max(1, 32768 / max(1, 8 * k))) { lo, hi in
            for item in lo..<hi {
                let group = item / slots, r0 = (item % slots) * 8, r1 = min(rowsPerGroup, r0 + 8)
                var b0 = r0
                while b0 < r1 {
                    let mr = blockHeight(r1 - b0)
                    let block = dst + (group * rowsPerGroup + b0) * k
                    if transposed {
                        for m in 0..<mr {
                            // block row m is input channel ci = b0 + m: kk' = co·taps + tap'
                            let ci = b0 + m
                            for co in 0..<g.outPerGroup {
                                let src = weight + ((group * g.outPerGroup + co) * g.inPerGroup + ci) * taps
                                let d = block + co * taps * mr + m
                                for tap in 0..<taps { d[tap * mr] = src[taps - 1 - tap] }
                            }
                        }
                    } else {
                        // k outer: the block is written in order, its mr source rows read side by side
                        let src = weight + (group * rowsPerGroup + b0) * k
                        if mr == 8 {
                            for kk in 0..<k { for m in 0..<8 { block[kk * 8 + m] = src[m * k + kk] } }
                        } else {
                            for kk in 0..<k { for m in 0..<mr { block[kk * mr + m] = src[m * k + kk] } }
                        }
                    }
                    b0 += mr
                }
            }
        }
    }

    /// y (+)= conv(x, W) (+ bias) for geometry g, with weights already packed by `packWeights`.
    /// Accumulating adds to y instead of overwriting it.
    package static func convolve(_ g: ConvGeometry, x: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, accumulate: Bool) throws {
        let layout = DirectLayout(g)
        let taps = layout.tapOffsets()
        let (ho, wo) = (g.outHeight, g.outWidth)
        // vectors along each output row, or along the whole plane when the layout is flat
        let (rowCount, rowWidth) = layout.isFlat ? (1, g.outPlane) : (ho, wo)
        let perRow = (rowWidth + 15) / 16, vectors = rowCount * perRow
        var inBase = [Int](repeating: 0, count: vectors), outBase = inBase, lanes = inBase
        for oy in 0..<rowCount {
            for vx in 0..<perRow {
                let i = oy * perRow + vx
                let x0 = tailStart(vx * 16, width: rowWidth, index: i, overlap: !accumulate)
                inBase[i] = oy * g.strideH * layout.rowPitch + x0
                outBase[i] = oy * wo + x0
                lanes[i] = min(16, rowWidth - x0)
            }
        }
        let inImage = g.inChannels * g.height * g.width, outImage = g.outChannels * g.outPlane
        let chunks = (vectors + chunk - 1) / chunk

        try taps.withUnsafeBufferPointer { taps in
        try inBase.withUnsafeBufferPointer { inBase in
        try outBase.withUnsafeBufferPointer { outBase in
        try lanes.withUnsafeBufferPointer { lanes in
            let pass = TilePass(taps: taps.baseAddress!, k: g.colRows, inBase: inBase.baseAddress!, outBase: outBase.baseAddress!,
                                lanes: lanes.baseAddress!, groups: g.groups, channelsPerGroup: g.outPerGroup,
                                weights: packedWeights, inputGroupStride: g.inPerGroup * layout.plane,
                                outStride: g.outPlane, bias: bias, accumulate: accumulate)
            /// Chunks [c0, c1) of image n, from its packed copy.
            func run(_ n: Int, _ c0: Int, _ c1: Int, _ packed: UnsafePointer<Float>) {
                for c in c0..<c1 { runTiles(pass, input: packed, output: y + n * outImage, c * chunk, min(vectors, (c + 1) * chunk)) }
            }

            let threads = ThreadPool.shared.threadCount
            if layout.isIdentity {
                // no copy: (image, chunk) pairs over the threads
                ThreadPool.shared.run(count: g.batch * chunks) { _, lo, hi in
                    var item = lo
                    while item < hi {
                        let n = item / chunks, c0 = item % chunks, c1 = min(chunks, c0 + (hi - item))
                        run(n, c0, c1, x + n * inImage)
                        item += c1 - c0
                    }
                }
            } else if g.batch >= threads || chunks == 1 {
                // images over threads, each packed into its thread's buffer just before use
                let scratch = try Storage(count: layout.imageCount * min(threads, g.batch))
                ThreadPool.shared.run(count: g.batch) { participant, lo, hi in
                    let packed = scratch.pointer + participant * layout.imageCount
                    layout.clear(packed)
                    for n in lo..<hi {
                        layout.pack(x + n * inImage, into: packed)
                        run(n, 0, chunks, packed)
                    }
                }
                withExtendedLifetime(scratch) {}
            } else {
                // fewer images than threads: pack them all, then share out their chunks
                let scratch = try Storage(count: layout.imageCount * g.batch)
                layout.clear(scratch.pointer, images: g.batch)
                for n in 0..<g.batch { layout.pack(x + n * inImage, into: scratch.pointer + n * layout.imageCount) }
                ThreadPool.shared.run(count: g.batch * chunks) { _, lo, hi in
                    var item = lo
                    while item < hi {
                        let n = item / chunks, c0 = item % chunks, c1 = min(chunks, c0 + (hi - item))
                        run(n, c0, c1, scratch.pointer + n * layout.imageCount)
                        item += c1 - c0
                    }
                }
                withExtendedLifetime(scratch) {}
            }
        }}}}
    }

    /// Output vectors per chunk: a chunk's input rows stay in L2 while every channel block passes
    /// over them, and a block's weights stay in L1 while its tiles cover the chunk.
    package static let chunk = 24

    /// Where the vector that would start at `x0` of a row `width` wide starts. A row's last vector
    /// is partial when the width is not a multiple of 16; when overwriting (not accumulating) and
    /// the row is at least 16 wide, it moves back to end at the row's end instead, overlapping its
    /// neighbour, whose lanes it recomputes bit for bit. Not across a chunk boundary (`index`
    /// counts vectors from the start of the chunked sequence), which another thread may own.
    @inline(__always)
    package static func tailStart(_ x0: Int, width: Int, index: Int, overlap: Bool) -> Int {
        x0 + 16 <= width || !overlap || width < 16 || index % chunk == 0 ? x0 : width - 16
    }

    /// Forward tiles over output vectors [v0, v1) of one image: every group, every channel block.
    /// A tile with a partial vector (the end of a row whose width is not a multiple of 16) runs on a
    /// staging buffer of whole vectors, and only its real lanes are copied to the output.
    @inline(never)   // inlined into its callers, its vector copies stopped being inlined themselves
    package static func runTiles(_ p: TilePass, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, _ v0: Int, _ v1: Int) {
        // staging: 24 vectors, then 8 of broadcast bias, then the 12 offsets of a staged tile's vectors
        withUnsafeTemporaryAllocation(of: ConvVector.self, capacity: 32) { staging in
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 12) { stagedBase in
            let stage = UnsafeMutableRawPointer(staging.baseAddress!).assumingMemoryBound(to: Float.self)
            let biasBlock = stage + 24 * 16
            let stagedBase = stagedBase.baseAddress!
            for v in 0..<12 { stagedBase[v] = v * 16 }
            for group in 0..<p.groups {
                var c0 = 0
                while c0 < p.channelsPerGroup {
                    let mr = blockHeight(p.channelsPerGroup - c0)
                    let c = group * p.channelsPerGroup + c0
                    let out = output + c * p.outStride
                    var args = FwdTileArgs(weights: p.weights + c * p.k, input: input + group * p.inputGroupStride,
                                           taps: p.taps, k: p.k, inBase: p.inBase, outBase: p.outBase,
                                           output: out, outStride: p.outStride, initial: TileConstants.zeros,
                                           initialStride: 0, initialBase: TileConstants.zeroOffsets)
                    if p.accumulate {
                        (args.initial, args.initialStride) = (UnsafePointer(out), p.outStride)
                    } else if let bias = p.bias {
                        for m in 0..<mr { storeVector(biasBlock + m * 16, ConvVector(repeating: bias[c + m])) }
                        (args.initial, args.initialStride) = (UnsafePointer(biasBlock), 16)
                    }
                    var v = v0
                    while v < v1 {
                        let width = tileWidth(mr: mr, remaining: v1 - v)
                        args.inBase = p.inBase + v
                        var whole = true
                        for i in v..<(v + width) where p.lanes[i] != 16 { whole = false }
                        if whole {
                            args.outBase = p.outBase + v
                            if p.accumulate { args.initialBase = args.outBase }
                            forwardTile(mr: mr, nv: width, args)
                        } else {
                            // stage [mr][width][16]: old values first when accumulating
                            var staged = args
                            staged.output = stage
                            staged.outStride = width * 16
                            staged.outBase = UnsafePointer(stagedBase)
                            if p.accumulate {
                                (staged.initial, staged.initialStride, staged.initialBase) = (UnsafePointer(stage), width * 16, staged.outBase)
                                for m in 0..<mr {
                                    for i in 0..<width {
                                        let n = p.lanes[v + i], src = out + m * p.outStride + p.outBase[v + i]
                                        let dst = stage + (m * width + i) * 16
                                        if n == 16 {
                                            storeVector(dst, loadVector(src))
                                        } else {
                                            for l in 0..<16 { dst[l] = l < n ? src[l] : 0 }
                                        }
                                    }
                                }
                            }
                            forwardTile(mr: mr, nv: width, staged)
                            for m in 0..<mr {
                                for i in 0..<width {
                                    let n = p.lanes[v + i], dst = out + m * p.outStride + p.outBase[v + i]
                                    let src = stage + (m * width + i) * 16
                                    if n == 16 { storeVector(dst, loadVector(src)) } else { for l in 0..<n { dst[l] = src[l] } }
                                }
                            }
                        }
                        v += width
                    }
                    c0 += mr
                }
            }
        }}
    }

    // MARK: forward

    /// y = conv(x, weight) + bias.
    package static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) throws {
        let k = g.colRows
        let packed = try Storage(count: g.outChannels * k)
        packWeights(g, weight, transposed: false, into: packed.pointer)
        try convolve(g, x: x, packedWeights: packed.pointer, bias: bias, y: y, accumulate: false)
        withExtendedLifetime(packed) {}
    }
}
