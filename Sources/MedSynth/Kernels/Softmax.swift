// Softmax and log-softmax along one dimension (torch.softmax / torch.log_softmax), and the
// vectorisable exp they run on.
//
// A tensor is viewed as [outer, n, inner] around the reduced dimension of extent n.
//   softmax      y_i = exp(x_i − m) / Σ_j exp(x_j − m),        m = max_j x_j
//   log-softmax  y_i = (x_i − m) − log Σ_j exp(x_j − m)
// Subtracting the max changes nothing in exact arithmetic; it keeps every exp argument ≤ 0, so
// logits of 1000 do not overflow. Backward (dy → dx, accumulated):
//   softmax      dx_i += y_i · (dy_i − Σ_j dy_j y_j)
//   log-softmax  dx_i += dy_i − exp(y_i) · Σ_j dy_j
// inner == 1 (the last dimension, the common case) runs row by row over contiguous memory; other
// dimensions run over strips of columns of the [n, inner] plane so the inner loops stay contiguous.

import Glibc
import RealModule

// MARK: - exp

public enum VectorMath {
    /// e^x in float32, branch-free so that loops calling it vectorise (libm's expf is a call per
    /// element). Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-7 polynomial
    /// (relative error about 1 ulp), 2ⁿ built in the exponent bits as 2^⌊n/2⌋·2^⌈n/2⌉ so that
    /// results in the subnormal range and overflow to +inf come out of the arithmetic itself.
    /// exp(−inf) = 0, exp(+inf) = +inf, exp(NaN) = NaN.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        // Beyond these bounds the result is 0 or +inf anyway; NaN passes (comparisons are false).
        var c = x < -104 ? -104 : x
        c = c > 89 ? 89 : c
        // n = round(c / ln2): adding 1.5·2²³ leaves n in the low mantissa bits of t.
        let magic: Float = 12_582_912
        let t = c * 1.442_695_04 + magic
        let n = t - magic
        // r = c − n·ln2 with ln2 split in two (the first part is exact in few bits).
        var r = c - n * 0.693_359_375
        r = r.addingProduct(n, 2.121_944_40e-4)
        var p: Float = 1.987_569_150_0e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = p * (r * r) + r + 1
        let ni = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        let half = ni >> 1
        let a = Float(bitPattern: UInt32(bitPattern: (half &+ 127) &<< 23))
        let b = Float(bitPattern: UInt32(bitPattern: (ni &- half &+ 127) &<< 23))
        return er * a * b
    }
}

// MARK: - kernels

public enum SoftmaxKernel {
    /// Columns per strip for softmax over a non-last dimension: scratch for the column maxima and
    /// sums stays on the stack, and a strip is long enough to vectorise.
    static let stripWidth = 256

    /// max of x[0..<n] (−inf for n = 0). NaNs are skipped here; they reach the output through exp.
    /// LLVM does not vectorise a scalar max reduction without fast-math (it chains vmaxss), so the
    /// body runs 16 lanes at a time explicitly (about 15× faster on a 1024-wide row).
    @inline(__always)
    static func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if n >= 16 {
            let raw = UnsafeRawPointer(x)
            var acc = SIMD16<Float>(repeating: -.infinity)
            while i + 16 <= n {
                let v = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD16<Float>.self)
                acc = acc.replacing(with: v, where: v .> acc)
                i += 16
            }
            m = acc.max()
        }
        while i < n { let v = x[i]; m = v > m ? v : m; i += 1 }
        return m
    }

    /// y = softmax(x) over one contiguous row of n (y may alias x).
    @inline(__always)
    public static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = rowMax(x, n)
        var s: Float = 0
        for i in 0..<n {
            let e = VectorMath.exp(x[i] - m)
            y[i] = e
            s = Relaxed.sum(s, e)
        }
        let inv = 1 / s
        for i in 0..<n { y[i] *= inv }
    }

    /// y = log_softmax(x) over one contiguous row of n (y may alias x).
    @inline(__always)
    static func logSoftmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = rowMax(x, n)
        var s: Float = 0
        for i in 0..<n { s = Relaxed.sum(s, VectorMath.exp(x[i] - m)) }
        // (x − m) − log s, in this order: m + log s first would round away small log-probabilities
        // next to large logits (torch keeps the same order, pytorch#11752).
        let logS = Glibc.logf(s)
        for i in 0..<n { y[i] = (x[i] - m) - logS }
    }

    /// y = (log_)softmax(x) along the middle axis of [outer, n, inner].
    public static func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               outer: Int, n: Int, inner: Int, log: Bool) {
        let total = outer * n * inner
        guard total > 0 else { return }
        if inner == 1 {
            // ~16K elements per extra thread keeps small tensors serial.
            let grain = max(1, 16_384 / max(n, 1))
            parallelRanges(outer, grain: grain) { lo, hi in
                for row in lo..<hi {
                    let xr = x + row * n, yr = y + row * n
                    if log { logSoftmaxRow(xr, yr, n) } else { softmaxRow(xr, yr, n) }
                }
            }
            return
        }
        let strips = (inner + stripWidth - 1) / stripWidth
        let items = outer * strips
        let grain = max(1, 16_384 / max(1, n * min(inner, stripWidth)))
        parallelRanges(items, grain: grain) { lo, hi in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * stripWidth) { scratch in
                guard let base = scratch.baseAddress else { return }
                let m = base, s = base + stripWidth
                for item in lo..<hi {
                    let o = item / strips, j0 = (item % strips) * stripWidth
                    let w = min(stripWidth, inner - j0)
                    let xo = x + o * n * inner + j0, yo = y + o * n * inner + j0
                    m.update(repeating: -Float.infinity, count: w)
                    s.update(repeating: 0, count: w)
                    for r in 0..<n {
                        let xr = xo + r * inner
                        for j in 0..<w { let v = xr[j]; m[j] = v > m[j] ? v : m[j] }
                    }
                    for r in 0..<n {
                        let xr = xo + r * inner, yr = yo + r * inner
                        for j in 0..<w {
                            let e = VectorMath.exp(xr[j] - m[j])
                            if !log { yr[j] = e }
                            s[j] += e
                        }
                    }
                    if log {
                        for j in 0..<w { s[j] = Glibc.logf(s[j]) }
                        for r in 0..<n {
                            let xr = xo + r * inner, yr = yo + r * inner
                            for j in 0..<w { yr[j] = (xr[j] - m[j]) - s[j] }
                        }
                    } else {
                        for j in 0..<w { s[j] = 1 / s[j] }
                        for r in 0..<n {
                            let yr = yo + r * inner
                            for j in 0..<w { yr[j] *= s[j] }
                        }
                    }
                }
            }
        }
    }

    /// dx += ∂L/∂x from the forward output y and dy, along the middle axis of [outer, n, inner].
    public static func backward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                outer: Int, n: Int, inner: Int, log: Bool) {
        let total = outer * n * inner
        guard total > 0 else { return }
        if inner == 1 {
            let grain = max(1, 16_384 / max(n, 1))
            parallelRanges(outer, grain: grain) { lo, hi in
                for row in lo..<hi {
                    let yr = y + row * n, gr = dy + row * n, dr = dx + row * n
                    if log {
                        let s = Reduce.sum(gr, n)
                        for i in 0..<n { dr[i] += gr[i] - VectorMath.exp(yr[i]) * s }
                    } else {
                        let s = Reduce.dot(gr, yr, n)
                        for i in 0..<n { dr[i] += yr[i] * (gr[i] - s) }
                    }
                }
            }
            return
        }
        let strips = (inner + stripWidth - 1) / stripWidth
        let items = outer * strips
        let grain = max(1, 16_384 / max(1, n * min(inner, stripWidth)))
        parallelRanges(items, grain: grain) { lo, hi in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: stripWidth) { scratch in
                guard let s = scratch.baseAddress else { return }
                for item in lo..<hi {
                    let o = item / strips, j0 = (item % strips) * stripWidth
                    let w = min(stripWidth, inner - j0)
                    let offset = o * n * inner + j0
                    let yo = y + offset, go = dy + offset, dxo = dx + offset
                    s.update(repeating: 0, count: w)
                    for r in 0..<n {
                        let yr = yo + r * inner, gr = go + r * inner
                        if log {
                            for j in 0..<w { s[j] += gr[j] }
                        } else {
                            for j in 0..<w { s[j] += gr[j] * yr[j] }
                        }
                    }
                    for r in 0..<n {
                        let yr = yo + r * inner, gr = go + r * inner, dr = dxo + r * inner
                        if log {
                            for j in 0..<w { dr[j] += gr[j] - VectorMath.exp(yr[j]) * s[j] }
                        } else {
                            for j in 0..<w { dr[j] += yr[j] * (gr[j] - s[j]) }
                        }
                    }
                }
            }
        }
    }
}
