// Direct convolution, part 1 of 4: the overview, and the packed image layout every kernel reads.
// Conv2dDirectForward.swift (forward tiles and their driver), Conv2dDirectInputGradient.swift and
// Conv2dDirectWeightGradient.swift hold the other three parts.
//
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

@inline(__always) func loadVector(_ p: UnsafePointer<Float>) -> ConvVector {
    UnsafeRawPointer(p).loadUnaligned(as: ConvVector.self)
}

@inline(__always) func storeVector(_ p: UnsafeMutablePointer<Float>, _ v: ConvVector) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: ConvVector.self)
}

/// The even-indexed elements of the 32 floats a, b (and below, the odd ones): one two-source
/// permute. Written lane by lane because SIMD32's evenHalf/oddHalf are outlined calls here.
@inline(__always) func evenElements(_ a: ConvVector, _ b: ConvVector) -> ConvVector {
    ConvVector(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14],
               b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14])
}

@inline(__always) func oddElements(_ a: ConvVector, _ b: ConvVector) -> ConvVector {
    ConvVector(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15],
               b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15])
}

/// Arrays of zero vectors as literals: InlineArray(repeating:) is an outlined call here, and an
/// array whose address goes to a call stays in memory instead of registers.
@inline(__always) func zeroVectors6() -> InlineArray<6, ConvVector> {
    let z = ConvVector()
    return [z, z, z, z, z, z]
}

@inline(__always) func zeroVectors16() -> InlineArray<16, ConvVector> {
    let z = ConvVector()
    return [z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z]
}

@inline(__always) func zeroVectors24() -> InlineArray<24, ConvVector> {
    let z = ConvVector()
    return [z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z]
}

@inline(__always) func zeroVectors36() -> InlineArray<36, ConvVector> {
    let z = ConvVector()
    return [z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z]
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
                            let (lo, hi) = (loadVector(src), loadVector(src + 16))
                            storeVector(drow + j, evenElements(lo, hi))
                            storeVector(drow + q + j, oddElements(lo, hi))
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
