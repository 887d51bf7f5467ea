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
// The three products of a convolution:
//   forward        y[co, p]  = Σ_k W[co, k] · xq[tap_k + base(p)]           (FwdTile: vectors along p)
//   input grad     dx = the forward kernel on dy, with W transposed and flipped, padding d(k−1) − p,
//                  accumulating into dx (stride 1; other strides use im2col, see ConvKernel)
//   weight grad    dW[co, k] += Σ_p dy[co, p] · xq[tap_k + base(p)]          (WgtTile*: vectors along co,
//                  over dy transposed to [p, co], one partial dW per thread summed in a fixed order)
// Every output element is summed by one thread in an order fixed by the geometry alone, so results
// are bit-identical run to run (the weight gradient for a given thread count).

import Glibc

// MARK: - vectors

typealias ConvVector = SIMD16<Float>

@inline(__always) private func loadVector(_ p: UnsafePointer<Float>) -> ConvVector {
    UnsafeRawPointer(p).loadUnaligned(as: ConvVector.self)
}

@inline(__always) private func storeVector(_ p: UnsafeMutablePointer<Float>, _ v: ConvVector) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: ConvVector.self)
}

/// The first `n` lanes from p (1 ≤ n ≤ 16), zeros after: never reads past p + n.
@inline(__always) private func loadVector(_ p: UnsafePointer<Float>, lanes n: Int) -> ConvVector {
    if n == 16 { return loadVector(p) }
    var v = ConvVector()
    for l in 0..<n { v[l] = p[l] }
    return v
}

@inline(__always) private func storeVector(_ p: UnsafeMutablePointer<Float>, _ v: ConvVector, lanes n: Int) {
    if n == 16 { storeVector(p, v); return }
    for l in 0..<n { p[l] = v[l] }
}

// MARK: - packed image layout

/// Where each input value goes in the padded, phase-split copy of an image (see the file comment).
struct DirectLayout {
    let g: ConvGeometry
    /// Phases of a packed row (the horizontal stride) and floats per phase.
    let phases: Int, phaseWidth: Int
    /// Floats per packed row and per packed channel.
    let rowPitch: Int, plane: Int
    /// Packed rows per channel: exactly the padded rows some output reads.
    let rows: Int
    /// Floats of one packed image, with zeroed slack after it for the last partial vector's reads.
    let imageCount: Int

    static let slack = 32

    init(_ g: ConvGeometry) {
        self.g = g
        phases = g.strideW
        phaseWidth = g.outWidth + (g.kernelW - 1) * g.dilationW / g.strideW
        rowPitch = phases * phaseWidth
        rows = (g.outHeight - 1) * g.strideH + (g.kernelH - 1) * g.dilationH + 1
        plane = rows * rowPitch
        imageCount = g.inChannels * plane + DirectLayout.slack
    }

    /// Offset of tap (c, ki, kj) in a packed group (c counted from the group's first channel).
    @inline(__always)
    func tapOffset(_ c: Int, _ ki: Int, _ kj: Int) -> Int {
        let col = kj * g.dilationW
        return c * plane + ki * g.dilationH * rowPitch + (col % phases) * phaseWidth + col / phases
    }

    /// The tap offsets of one group in weight order k = (c·kH + ki)·kW + kj.
    func tapOffsets() -> [Int] {
        var taps = [Int]()
        taps.reserveCapacity(g.colRows)
        for c in 0..<g.inPerGroup { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW { taps.append(tapOffset(c, ki, kj)) } } }
        return taps
    }

    /// dst [imageCount] ← one image x [inChannels, H, W], padded and phase-split.
    func pack(_ x: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let (h, w, s, q) = (g.height, g.width, phases, phaseWidth)
        for c in 0..<g.inChannels {
            let src = x + c * h * w, dstPlane = dst + c * plane
            for r in 0..<rows {
                let iy = r - g.padH
                let drow = dstPlane + r * rowPitch
                if iy < 0 || iy >= h { drow.update(repeating: 0, count: rowPitch); continue }
                let srow = src + iy * w
                if s == 1 {
                    // packed column j holds input column j − padW
                    let lo = min(q, g.padW), hi = max(lo, min(q, g.padW + w))
                    if lo > 0 { drow.update(repeating: 0, count: lo) }
                    if hi > lo { (drow + lo).update(from: srow + (lo - g.padW), count: hi - lo) }
                    if hi < q { (drow + hi).update(repeating: 0, count: q - hi) }
                } else {
                    for phase in 0..<s {
                        let d = drow + phase * q
                        for j in 0..<q {
                            let ix = j * s + phase - g.padW
                            d[j] = ix >= 0 && ix < w ? srow[ix] : 0
                        }
                    }
                }
            }
        }
        (dst + g.inChannels * plane).update(repeating: 0, count: DirectLayout.slack)
    }
}

// MARK: - forward micro-kernel

/// Arguments of one forward tile: MR output channels × NV vectors of 16 output pixels.
struct FwdTileArgs {
    /// Packed weights of the block, [k][MR].
    var weights: UnsafePointer<Float>
    /// Packed input of the group.
    var input: UnsafePointer<Float>
    var taps: UnsafePointer<Int>
    var k: Int
    /// Per vector: offset of its first pixel in the packed input, in the output plane, and how many
    /// of its 16 lanes are real outputs.
    var inBase: UnsafePointer<Int>, outBase: UnsafePointer<Int>, lanes: UnsafePointer<Int>
    /// Output plane of the block's first channel, and floats between channel planes.
    var output: UnsafeMutablePointer<Float>
    var outStride: Int
    /// Bias of the block's first channel; ignored when accumulating.
    var bias: UnsafePointer<Float>?
    /// Add to the output instead of overwriting it.
    var accumulate: Bool
}

/// out[m, v] (+)= Σ_k w[k, m] · in[tap_k + base_v], in registers (MR·NV ≤ 24 accumulators).
enum FwdTile<let MR: Int, let NV: Int> {
    @inline(never)
    static func run(_ a: FwdTileArgs) {
        var acc = InlineArray<24, ConvVector>(repeating: ConvVector())
        for m in 0..<MR {
            let row = a.output + m * a.outStride
            let b = a.accumulate ? ConvVector() : a.bias.map { ConvVector(repeating: $0[m]) } ?? ConvVector()
            for v in 0..<NV {
                acc[m * NV + v] = a.accumulate ? loadVector(row + a.outBase[v], lanes: a.lanes[v]) : b
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
            for v in 0..<NV { storeVector(row + a.outBase[v], acc[m * NV + v], lanes: a.lanes[v]) }
        }
    }
}

// MARK: - weight-gradient micro-kernels

/// Arguments of one weight-gradient tile: NV vectors of 16 output channels × a block of taps, over
/// `rows` output rows of `width` pixels.
struct WgtTileArgs {
    /// dy transposed, [pixel][ldd], at the block's first pixel and first channel.
    var dyT: UnsafePointer<Float>
    var ldd: Int
    /// Packed input of the group at the block's first output row (oy0·sH·rowPitch).
    var input: UnsafePointer<Float>
    /// Tap offsets (WgtTileTaps) or offsets of (c, ki) rows of KW consecutive taps (WgtTileRows).
    var offsets: UnsafePointer<Int>
    var rows: Int, rowStep: Int, width: Int
    /// dW transposed, [k][ldw], at the block's first tap and first channel; accumulated into.
    var dW: UnsafeMutablePointer<Float>
    var ldw: Int
}

/// dWᵀ[j, co] += Σ_p in[offset_j + base(p)] · dyᵀ[p, co] for MJ arbitrary taps (any stride or
/// dilation): MJ input pointers, NV·MJ ≤ 24 accumulators.
enum WgtTileTaps<let NV: Int, let MJ: Int> {
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
enum WgtTileRows<let NV: Int, let NR: Int, let KW: Int> {
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

// MARK: - drivers

enum DirectConv {
    /// Height of the next output-channel block when `remaining` channels are left: 8, 4, 2 or 1.
    @inline(__always)
    static func blockHeight(_ remaining: Int) -> Int {
        remaining >= 8 ? 8 : remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1
    }

    /// Vectors in the next forward tile of an MR-channel block when `remaining` vectors are left:
    /// MR·NV ≤ 24 accumulators (8×3, 4×6, 2×8, 1×12), and a remainder splits greedily into the
    /// instantiated smaller widths.
    @inline(__always)
    static func tileWidth(mr: Int, remaining r: Int) -> Int {
        switch mr {
        case 8: return min(r, 3)
        case 4: return r >= 6 ? 6 : r >= 3 ? 3 : r
        case 2: return r >= 8 ? 8 : r >= 4 ? 4 : r >= 2 ? 2 : 1
        default: return r >= 12 ? 12 : r >= 6 ? 6 : r >= 3 ? 3 : r
        }
    }

    @inline(__always)
    static func forwardTile(mr: Int, nv: Int, _ a: FwdTileArgs) {
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

    /// Packs weights for the forward kernel: per group, per channel block (co0, mr), [k][mr] with
    /// element (k, m) = value(group, co0 + m, k); blocks sit at (group·outPerGroup + co0)·K.
    static func packWeights(groups: Int, outPerGroup: Int, k: Int, into dst: UnsafeMutablePointer<Float>,
                            _ value: (Int, Int, Int) -> Float) {
        for group in 0..<groups {
            var co0 = 0
            while co0 < outPerGroup {
                let mr = blockHeight(outPerGroup - co0)
                let block = dst + (group * outPerGroup + co0) * k
                for kk in 0..<k { for m in 0..<mr { block[kk * mr + m] = value(group, co0 + m, kk) } }
                co0 += mr
            }
        }
    }

    /// y (+)= conv(x, W) (+ bias) for geometry g, with weights already packed by `packWeights`.
    /// Accumulating adds to y instead of overwriting it.
    static func convolve(_ g: ConvGeometry, x: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let layout = DirectLayout(g)
        let taps = layout.tapOffsets()
        let (ho, wo) = (g.outHeight, g.outWidth)
        let perRow = (wo + 15) / 16, vectors = ho * perRow
        var inBase = [Int](repeating: 0, count: vectors), outBase = inBase, lanes = inBase
        for oy in 0..<ho {
            for vx in 0..<perRow {
                let i = oy * perRow + vx
                inBase[i] = oy * g.strideH * layout.rowPitch + vx * 16
                outBase[i] = oy * wo + vx * 16
                lanes[i] = min(16, wo - vx * 16)
            }
        }
        let k = g.colRows, inImage = g.inChannels * g.height * g.width, outImage = g.outChannels * g.outPlane
        // Vectors per chunk: a chunk's input rows stay in L2 while every channel block passes
        // over them, and a block's weights stay in L1 while its tiles cover the chunk.
        let chunk = 24, chunks = (vectors + chunk - 1) / chunk

        taps.withUnsafeBufferPointer { taps in
        inBase.withUnsafeBufferPointer { inBase in
        outBase.withUnsafeBufferPointer { outBase in
        lanes.withUnsafeBufferPointer { lanes in
            let (taps, inBase, outBase, lanes) = (taps.baseAddress!, inBase.baseAddress!, outBase.baseAddress!, lanes.baseAddress!)
            /// Chunks [c0, c1) of image n, from its packed copy.
            func run(_ n: Int, _ c0: Int, _ c1: Int, _ packed: UnsafePointer<Float>) {
                let yn = y + n * outImage
                for c in c0..<c1 {
                    let v0 = c * chunk, v1 = min(vectors, v0 + chunk)
                    for group in 0..<g.groups {
                        let input = packed + group * g.inPerGroup * layout.plane
                        var co0 = 0
                        while co0 < g.outPerGroup {
                            let mr = blockHeight(g.outPerGroup - co0)
                            let co = group * g.outPerGroup + co0
                            var args = FwdTileArgs(weights: packedWeights + co * k, input: input, taps: taps, k: k,
                                                   inBase: inBase, outBase: outBase, lanes: lanes,
                                                   output: yn + co * g.outPlane, outStride: g.outPlane,
                                                   bias: bias.map { $0 + co }, accumulate: accumulate)
                            var v = v0
                            while v < v1 {
                                let width = tileWidth(mr: mr, remaining: v1 - v)
                                args.inBase = inBase + v; args.outBase = outBase + v; args.lanes = lanes + v
                                forwardTile(mr: mr, nv: width, args)
                                v += width
                            }
                            co0 += mr
                        }
                    }
                }
            }

            let threads = ThreadPool.shared.threadCount
            if g.batch >= threads || chunks == 1 {
                // images over threads, each packed into its thread's buffer just before use
                let scratch = Storage(count: layout.imageCount * min(threads, g.batch))
                ThreadPool.shared.run(count: g.batch) { participant, lo, hi in
                    let packed = scratch.pointer + participant * layout.imageCount
                    for n in lo..<hi {
                        layout.pack(x + n * inImage, into: packed)
                        run(n, 0, chunks, packed)
                    }
                }
                withExtendedLifetime(scratch) {}
            } else {
                // fewer images than threads: pack them all, then share out their chunks
                let scratch = Storage(count: layout.imageCount * g.batch)
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

    // MARK: forward

    /// y = conv(x, weight) + bias.
    static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let k = g.colRows
        let packed = Storage(count: g.outChannels * k)
        packWeights(groups: g.groups, outPerGroup: g.outPerGroup, k: k, into: packed.pointer) { group, co, kk in
            weight[(group * g.outPerGroup + co) * k + kk]
        }
        convolve(g, x: x, packedWeights: packed.pointer, bias: bias, y: y, accumulate: false)
        withExtendedLifetime(packed) {}
    }

    // MARK: input gradient

    /// The forward geometry whose output is dx: dy convolved with the transposed, flipped kernel.
    /// Nil when the direct kernel does not apply (strides above 1, or padding wider than the
    /// dilated kernel's reach).
    static func inputGradientGeometry(_ g: ConvGeometry) -> ConvGeometry? {
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
    static func inputGradient(_ g: ConvGeometry, _ t: ConvGeometry, weight: UnsafePointer<Float>,
                              dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let (kh, kw) = (g.kernelH, g.kernelW), taps = kh * kw
        let k = t.colRows   // outPerGroup · kh · kw
        let packed = Storage(count: t.outChannels * k)
        packWeights(groups: g.groups, outPerGroup: g.inPerGroup, k: k, into: packed.pointer) { group, ci, kk in
            // kk = (co·kh + ki')·kw + kj' reads W[co, ci, kh−1−ki', kw−1−kj']
            let co = kk / taps, tap = kk % taps
            let flipped = taps - 1 - tap
            return weight[((group * g.outPerGroup + co) * g.inPerGroup + ci) * taps + flipped]
        }
        convolve(t, x: dy, packedWeights: packed.pointer, bias: nil, y: dx, accumulate: true)
        withExtendedLifetime(packed) {}
    }

    // MARK: weight gradient

    /// dWeight += ∂L/∂W = Σ_n Σ_p dy[n, co, p] · x_n[tap_k(p)], for any geometry.
    static func weightGradient(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>) {
        let layout = DirectLayout(g)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let opg = g.outPerGroup, ldc = (opg + 15) / 16 * 16
        let k = g.colRows, inImage = g.inChannels * g.height * g.width, outImage = g.outChannels * g.outPlane
        // Taps in rows of three consecutive floats (3-wide kernels, stride and dilation 1 along the
        // width), else one by one.
        let byRows = g.kernelW == 3 && g.strideW == 1 && g.dilationW == 1
        var offsets = [Int]()
        if byRows {
            for c in 0..<g.inPerGroup { for ki in 0..<g.kernelH { offsets.append(layout.tapOffset(c, ki, 0)) } }
        } else {
            offsets = layout.tapOffsets()
        }
        // Output rows per block: about 256 pixels, so a block of dyᵀ stays in L1 across the taps.
        let rowBlock = max(1, min(ho, 256 / wo))
        let channelVectors = ldc / 16

        let threads = min(ThreadPool.shared.threadCount, g.batch)
        let partialCount = g.groups * k * ldc
        let perThread = layout.imageCount + ho * wo * ldc + partialCount
        let scratch = Storage(count: perThread * threads)
        var used = [Bool](repeating: false, count: threads)
        offsets.withUnsafeBufferPointer { offsets in
        used.withUnsafeMutableBufferPointer { usedFlags in
            let offsets = offsets.baseAddress!
            ThreadPool.shared.run(count: g.batch, maxParticipants: threads) { participant, lo, hi in
                usedFlags[participant] = true
                let packed = scratch.pointer + participant * perThread
                let dyT = packed + layout.imageCount
                let partial = dyT + ho * wo * ldc
                partial.update(repeating: 0, count: partialCount)
                for n in lo..<hi {
                    layout.pack(x + n * inImage, into: packed)
                    for group in 0..<g.groups {
                        transpose(dy + n * outImage + group * opg * g.outPlane, rows: opg, cols: g.outPlane, into: dyT, ld: ldc)
                        let input = packed + group * g.inPerGroup * layout.plane
                        let dWg = partial + group * k * ldc
                        var oy0 = 0
                        while oy0 < ho {
                            let rows = min(rowBlock, ho - oy0)
                            var cv0 = 0
                            while cv0 < channelVectors {
                                // channel vectors per tile: 4, 2 or 1
                                let r = channelVectors - cv0, nv = r >= 4 ? 4 : r >= 2 ? 2 : 1
                                var args = WgtTileArgs(dyT: dyT + oy0 * wo * ldc + cv0 * 16, ldd: ldc,
                                                       input: input + oy0 * g.strideH * layout.rowPitch, offsets: offsets,
                                                       rows: rows, rowStep: g.strideH * layout.rowPitch, width: wo,
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
                            oy0 += rows
                        }
                    }
                }
            }
            // dWeight[group·opg + co, kk] += Σ_t partial_t[group, kk, co], threads in order; 16 taps
            // at a time so the strided side reuses its cache lines
            for group in 0..<g.groups {
                var kk0 = 0
                while kk0 < k {
                    let kk1 = min(k, kk0 + 16)
                    for co in 0..<opg {
                        let dst = dWeight + (group * opg + co) * k
                        for kk in kk0..<kk1 {
                            var s: Float = 0
                            for t in 0..<threads where usedFlags[t] {
                                s += (scratch.pointer + t * perThread + layout.imageCount + ho * wo * ldc)[(group * k + kk) * ldc + co]
                            }
                            dst[kk] += s
                        }
                    }
                    kk0 = kk1
                }
            }
        }}
        withExtendedLifetime(scratch) {}
    }

    @inline(__always)
    static func weightTileRows(nv: Int, nr: Int, _ a: WgtTileArgs) {
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
    static func weightTileTaps(nv: Int, mj: Int, _ a: WgtTileArgs) {
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

    /// dst [cols][ld] ← srcᵀ for src [rows][cols], zero in columns rows..<ld.
    static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, ld: Int) {
        let block = 16
        var c0 = 0
        while c0 < cols {
            let c1 = min(cols, c0 + block)
            var r0 = 0
            while r0 < rows {
                let r1 = min(rows, r0 + block)
                for c in c0..<c1 {
                    let d = dst + c * ld
                    for r in r0..<r1 { d[r] = src[r * cols + c] }
                }
                r0 = r1
            }
            if ld > rows { for c in c0..<c1 { (dst + c * ld + rows).update(repeating: 0, count: ld - rows) } }
            c0 = c1
        }
    }
}
