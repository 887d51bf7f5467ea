// Direct convolution: register-blocked micro-kernels that read the receptive fields straight from a
// padded copy of each image, so no im2col matrix is written to memory and read back.
//
// Why: im2col + sgemm writes K×P floats per image (K = Cin·kH·kW, P = Ho·Wo), sgemm reads them
// and packs them again, and small products (Cout = 1 or 32, K = 9) run far below the machine's
// peak. Here a tile of MR output channels × NV vectors of 16 output pixels lives in 24 AVX-512
// registers while the K multiply-adds stream past it: about 220 GFLOP/s per core on this machine,
// against 150–180 for OpenBLAS sgemm on the same products.
//
// Packed image layout, one image [C, H, W] → `xq` [C, rows, phases, Q] (DirectLayout):
// zero padding around the image, and for a horizontal stride s the padded columns split into s
// phases (phase r holds padded columns r, r+s, r+2s, …), so that the 16 outputs of a vector read 16
// consecutive floats for every tap:
//   padded column ox·s + kj·dW   →   phase (kj·dW) mod s, index ox + ⌊kj·dW / s⌋.
// Tap (c, ki, kj) of output (oy, ox) then sits at
//   c·plane + (oy·sH + ki·dH)·rowPitch + ((kj·dW) mod s)·Q + ⌊kj·dW / s⌋ + ox
//   = tapOffset(c, ki, kj) + oy·sH·rowPitch + ox.
//
// 1-wide kernels at stride 1 line packed rows up with output rows, so vectors run over whole
// output planes ("flat"), and an unpadded 1×1 convolution reads its input in place.
//
// The three products of a convolution:
//   forward        y[co, p] = Σ_k W[co, k] · xq[tap_k + base(p)]       FwdTile: MR channels × NV
//                  vectors of 16 pixels; a row's last vector overlaps its neighbour instead of
//                  being partial, or (when accumulating) the tile is staged through a buffer
//   input grad     stride 1: dx += the forward kernel on dy with W transposed and flipped, padding
//                  d(k−1) − p; other strides (or wider padding): phase by phase (phasedInputGradient)
//   weight grad    dW[co, k] += Σ_p dy[co, p] · xq[tap_k + base(p)]    WgtTile*: vectors along co over
//                  dy transposed to [p, co]; or, for few channels per group or few taps,
//                  PixelWgtTile: vectors along p with per-lane partial sums
// Forward and input-gradient outputs are each summed by one thread in an order fixed by the
// geometry, so they are bit-identical run to run and for any thread count. Weight gradients sum
// one partial per thread, in thread order: bit-identical run to run for a given thread count.

import Glibc

// MARK: - vectors

package typealias ConvVector = SIMD16<Float>

@inline(__always) private func loadVector(_ p: UnsafePointer<Float>) -> ConvVector {
    UnsafeRawPointer(p).loadUnaligned(as: ConvVector.self)
}

@inline(__always) private func storeVector(_ p: UnsafeMutablePointer<Float>, _ v: ConvVector) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: ConvVector.self)
}

// MARK: - packed image layout

/// Where each input value goes in the padded, phase-split copy of an image (see the file comment).
package struct DirectLayout {
    package let g: ConvGeometry
    /// Phases of a packed row (the horizontal stride) and floats per phase.
    package let phases: Int, phaseWidth: Int
    /// Floats per packed row and per packed channel.
    package let rowPitch: Int, plane: Int
    /// Packed rows per channel: exactly the padded rows some output reads.
    package let rows: Int
    /// Floats of one packed image, with zeroed slack after it for the last partial vector's reads.
    package let imageCount: Int

    package static let slack = 32

    package init(_ g: ConvGeometry) {
        self.g = g
        phases = g.strideW
        phaseWidth = g.outWidth + (g.kernelW - 1) * g.dilationW / g.strideW
        rowPitch = phases * phaseWidth
        rows = (g.outHeight - 1) * g.strideH + (g.kernelH - 1) * g.dilationH + 1
        plane = rows * rowPitch
        imageCount = g.inChannels * plane + DirectLayout.slack
    }

    /// 1-wide kernels at stride 1: packed rows are exactly Wo wide, so output (oy, ox) reads from
    /// oy·Wo + ox in every tap's frame and vectors can run over whole output planes.
    package var isFlat: Bool { g.kernelW == 1 && g.strideW == 1 && g.strideH == 1 }

    /// The packed image would be the image itself (flat, unpadded), and vectors over whole output
    /// planes never read past an image's last plane: use the input in place.
    package var isIdentity: Bool { isFlat && g.padH == 0 && g.padW == 0 && g.outPlane % 16 == 0 }

    /// Offset of tap (c, ki, kj) in a packed group (c counted from the group's first channel).
    @inline(__always)
    package func tapOffset(_ c: Int, _ ki: Int, _ kj: Int) -> Int {
        let col = kj * g.dilationW
        return c * plane + ki * g.dilationH * rowPitch + (col % phases) * phaseWidth + col / phases
    }

    /// The tap offsets of one group in weight order k = (c·kH + ki)·kW + kj.
    package func tapOffsets() -> [Int] {
        var taps = [Int]()
        taps.reserveCapacity(g.colRows)
        for c in 0..<g.inPerGroup { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW { taps.append(tapOffset(c, ki, kj)) } } }
        return taps
    }

    /// Zeroes a packed-image buffer: the padding is never written by `pack`, so one buffer packs
    /// image after image after a single clear.
    package func clear(_ dst: UnsafeMutablePointer<Float>, images: Int = 1) {
        dst.update(repeating: 0, count: imageCount * images)
    }

    /// Writes one image x [inChannels, H, W] into a buffer prepared by `clear`, padded and
    /// phase-split. Only positions that hold input values are written.
    package func pack(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let (h, w, s, q) = (g.height, g.width, phases, phaseWidth)
        // packed rows that hold input rows: r = iy + padH
        let r0 = max(0, g.padH), r1 = min(rows, g.padH + h)
        guard r1 > r0 else { return }
        if s == 1 {
            // packed column j holds input column j − padW
            let j0 = min(q, g.padW), j1 = max(j0, min(q, g.padW + w))
            let count = j1 - j0, srcOffset = j0 - g.padW
            guard count > 0 else { return }
            for c in 0..<g.inChannels {
                let src = x + c * h * w + srcOffset, dstPlane = dst + c * plane + j0
                for r in r0..<r1 { (dstPlane + r * rowPitch).update(from: src + (r - g.padH) * w, count: count) }
            }
        } else if s == 2 {
            // phase p, index j holds input column 2j + p − padW; 16 indices of both phases come
            // from 32 consecutive input columns: the even and odd halves of one 32-float load
            let jLo = (g.padW + 1) / 2                          // first j with 2j − padW ≥ 0
            let jHi = max(jLo, min(q, (w + g.padW) / 2))        // vectors end where 2j − padW reaches w
            for c in 0..<g.inChannels {
                for r in r0..<r1 {
                    let srow = x + (c * h + r - g.padH) * w, drow = dst + c * plane + r * rowPitch
                    if jHi - jLo >= 16 {
                        // vectors from jLo; the last one ends at jHi (overlapping writes are equal)
                        var j = jLo
                        while true {
                            let src = srow + 2 * j - g.padW
                            let pair = SIMD32<Float>(lowHalf: loadVector(src), highHalf: loadVector(src + 16))
                            storeVector(drow + j, pair.evenHalf)
                            storeVector(drow + q + j, pair.oddHalf)
                            if j == jHi - 16 { break }
                            j = min(j + 16, jHi - 16)
                        }
                        for jj in 0..<jLo { pack2(srow, drow, jj) }
                        for jj in jHi..<q { pack2(srow, drow, jj) }
                    } else {
                        for jj in 0..<q { pack2(srow, drow, jj) }
                    }
                }
            }
        } else {
            for c in 0..<g.inChannels {
                for r in r0..<r1 {
                    let srow = x + (c * h + r - g.padH) * w, drow = dst + c * plane + r * rowPitch
                    for phase in 0..<s {
                        let d = drow + phase * q
                        for j in 0..<q {
                            let ix = j * s + phase - g.padW
                            if ix >= 0 && ix < w { d[j] = srow[ix] }
                        }
                    }
                }
            }
        }
    }

    /// Index j of both phases of a stride-2 packed row, from the input row (out-of-image columns
    /// are left as they are: zero).
    @inline(__always)
    private func pack2(_ srow: UnsafePointer<Float>, _ drow: UnsafeMutablePointer<Float>, _ j: Int) {
        for phase in 0..<2 {
            let ix = 2 * j + phase - g.padW
            if ix >= 0 && ix < g.width { drow[phase * phaseWidth + j] = srow[ix] }
        }
    }
}

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
    /// Bias of the block's first channel; ignored when accumulating.
    package var bias: UnsafePointer<Float>?
    /// Add to the output instead of overwriting it.
    package var accumulate: Bool
}

/// out[m, v] (+)= Σ_k w[k, m] · in[tap_k + base_v], in registers (MR·NV ≤ 24 accumulators), for
/// whole vectors (the driver stages tiles with partial vectors, see `DirectConv.runTiles`).
/// Written so that the accumulators are only ever indexed by constants: LLVM then keeps all of
/// them in registers (a conditional on the store side, or handing them to a call, sends them
/// through a 1.5 KB stack buffer on every tile).
package enum FwdTile<let MR: Int, let NV: Int> {
    @inline(never)
    static func run(_ a: FwdTileArgs) {
        var acc = InlineArray<24, ConvVector>(repeating: ConvVector())
        if a.accumulate {
            for m in 0..<MR {
                let row = a.output + m * a.outStride
                for v in 0..<NV { acc[m * NV + v] = loadVector(row + a.outBase[v]) }
            }
        } else if let bias = a.bias {
            for m in 0..<MR {
                let b = ConvVector(repeating: bias[m])
                for v in 0..<NV { acc[m * NV + v] = b }
            }
        }
        var x = InlineArray<12, UnsafePointer<Float>>(repeating: a.input)
        for v in 0..<NV { x[v] = a.input + a.inBase[v] }
        var w = a.weights
        for kk in 0..<a.k {
            let o = a.taps[kk]
            for m in 0..<MR {
                let s = ConvVector(repeating: w[m])
                for v in 0..<NV { acc[m * NV + v] = acc[m * NV + v].addingProduct(loadVector(x[v] + o), s) }
            }
            w += MR
        }
        for m in 0..<MR {
            let row = a.output + m * a.outStride
            for v in 0..<NV { storeVector(row + a.outBase[v], acc[m * NV + v]) }
        }
    }
}

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
        var acc = InlineArray<24, ConvVector>(repeating: ConvVector())
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
        var acc = InlineArray<24, ConvVector>(repeating: ConvVector())
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
        var acc = InlineArray<16, ConvVector>(repeating: ConvVector())
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
                    for m in 0..<mr {
                        if transposed {
                            // block row m is input channel ci = b0 + m: kk' = co·taps + tap'
                            let ci = b0 + m
                            for co in 0..<g.outPerGroup {
                                let src = weight + ((group * g.outPerGroup + co) * g.inPerGroup + ci) * taps
                                let d = block + co * taps * mr + m
                                for tap in 0..<taps { d[tap * mr] = src[taps - 1 - tap] }
                            }
                        } else {
                            let src = weight + (group * rowsPerGroup + b0 + m) * k
                            for kk in 0..<k { block[kk * mr + m] = src[kk] }
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
        // staging: 24 vectors, then the 12 offsets of a staged tile's vectors
        withUnsafeTemporaryAllocation(of: ConvVector.self, capacity: 24) { staging in
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 12) { stagedBase in
            let stage = UnsafeMutableRawPointer(staging.baseAddress!).assumingMemoryBound(to: Float.self)
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
                                           output: out, outStride: p.outStride,
                                           bias: p.bias.map { $0 + c }, accumulate: p.accumulate)
                    var v = v0
                    while v < v1 {
                        let width = tileWidth(mr: mr, remaining: v1 - v)
                        args.inBase = p.inBase + v
                        var whole = true
                        for i in v..<(v + width) where p.lanes[i] != 16 { whole = false }
                        if whole {
                            args.outBase = p.outBase + v
                            forwardTile(mr: mr, nv: width, args)
                        } else {
                            // stage [mr][width][16]: old values first when accumulating
                            var staged = args
                            staged.output = stage
                            staged.outStride = width * 16
                            staged.outBase = UnsafePointer(stagedBase)
                            if p.accumulate {
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
                            let pair = SIMD32<Float>(lowHalf: lo, highHalf: hi)
                            lo = pair.evenHalf; hi = pair.oddHalf
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
                                var block = InlineArray<16, ConvVector>(repeating: ConvVector())
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
                    var block = InlineArray<16, ConvVector>(repeating: ConvVector())
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
            var t = InlineArray<16, ConvVector>(repeating: ConvVector())
            for j in 0..<8 {
                let pair = SIMD32<Float>(lowHalf: r[2 * j], highHalf: r[2 * j + 1])
                t[j] = pair.evenHalf
                t[j + 8] = pair.oddHalf
            }
            r = t
        }
    }
}
