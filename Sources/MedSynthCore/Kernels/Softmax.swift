// Softmax and log-softmax along one dimension (torch.softmax / torch.log_softmax), on the
// vectorisable exp of VectorMath.swift.
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

// MARK: - kernels

public enum SoftmaxKernel {
    /// Columns per strip for softmax over a non-last dimension: scratch for the column maxima and
    /// sums stays on the stack, and a strip is long enough to vectorise.
    package static let stripWidth = 256

    @inline(__always)
    package static func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float { Reduce.max(x, n) }

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
    package static func logSoftmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
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
