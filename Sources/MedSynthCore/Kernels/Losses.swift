// Loss kernels: fused cross entropy (log-softmax + NLL, with class weights and label smoothing),
// squared error (plain and per-sample weighted), and binary cross entropy on logits.
//
// Legend: N = batch (rows), C = classes, z = logits [N, C], t_n = target class of row n,
// w = class weights [C] (1 when absent), W = Σ_c w_c, ε = label smoothing,
// lse_n = log Σ_c exp(z_nc), log p_nc = z_nc − lse_n.
//
// Reductions that sum many values do so in fixed chunks (or in one thread per row) and combine the
// partial sums in a fixed order, so results do not depend on the thread count.

import Glibc
import RealModule

public enum LossKernel {
    // MARK: - cross entropy

    /// Per row n (ignored rows, t_n == ignoreIndex, get 0 everywhere):
    ///   lse[n]    = log Σ_c exp(z_nc)
    ///   nll[n]    = −w_t · log p_nt
    ///   smooth[n] = −Σ_c w_c · log p_nc          (only when `smooth` is non-nil)
    /// Targets must already be validated (ignoreIndex or in [0, C)).
    package static func crossEntropyForward(
        logits: UnsafePointer<Float>, rows: Int, classes: Int, targets: UnsafePointer<Int>,
        weight: UnsafePointer<Float>?, ignoreIndex: Int,
        lse: UnsafeMutablePointer<Float>, nll: UnsafeMutablePointer<Float>, smooth: UnsafeMutablePointer<Float>?
    ) {
        let c = classes
        let weightSum: Float = weight.map { Reduce.sum($0, c) } ?? Float(c)
        parallelRanges(rows, grain: max(1, 32_768 / max(c, 1))) { lo, hi in
            for n in lo..<hi {
                let z = logits + n * c
                let t = targets[n]
                // lse = m + log s; log p_c = (z_c − m) − log s keeps the small differences exact
                // for large logits.
                let m = SoftmaxKernel.rowMax(z, c)
                var s: Float = 0
                for j in 0..<c { s = Relaxed.sum(s, VectorMath.exp(z[j] - m)) }
                let logS = Glibc.logf(s)
                lse[n] = m + logS
                if t == ignoreIndex {
                    nll[n] = 0
                    smooth?[n] = 0
                    continue
                }
                let wt = weight?[t] ?? 1
                nll[n] = -wt * ((z[t] - m) - logS)
                if let smooth {
                    // Σ_c w_c log p_c = Σ_c w_c (z_c − m) − W · log s
                    var acc: Float = 0
                    if let weight {
                        for j in 0..<c { acc = Relaxed.multiplyAdd(weight[j], z[j] - m, acc) }
                    } else {
                        for j in 0..<c { acc = Relaxed.sum(acc, z[j] - m) }
                    }
                    smooth[n] = -(acc - weightSum * logS)
                }
            }
        }
    }

    /// dz += ∂L/∂z for L = Σ_n a_n ℓ_n, ℓ_n = (1 − ε)·nll_n + (ε/C)·smooth_n:
    ///   dz_nj += a_n · (Q_n · p_nj − q_nj),   q_nj = (1 − ε) w_t [j = t] + (ε/C) w_j,
    ///   Q_n = Σ_j q_nj = (1 − ε) w_t + (ε/C) W,  p_nj = exp(z_nj − lse_n),
    /// with a_n = coefficient[n · coefficientStride] / divisor (stride 0 for reduced losses).
    /// Ignored rows get no gradient.
    package static func crossEntropyBackward(
        logits: UnsafePointer<Float>, rows: Int, classes: Int, targets: UnsafePointer<Int>,
        weight: UnsafePointer<Float>?, ignoreIndex: Int, smoothing: Float, lse: UnsafePointer<Float>,
        coefficient: UnsafePointer<Float>, coefficientStride: Int, divisor: Float,
        dLogits: UnsafeMutablePointer<Float>
    ) {
        let c = classes
        let weightSum: Float = weight.map { Reduce.sum($0, c) } ?? Float(c)
        let keep = 1 - smoothing, spread = smoothing / Float(c)
        parallelRanges(rows, grain: max(1, 32_768 / max(c, 1))) { lo, hi in
            for n in lo..<hi {
                let t = targets[n]
                if t == ignoreIndex { continue }
                let a = coefficient[n * coefficientStride] / divisor
                let z = logits + n * c, dz = dLogits + n * c, l = lse[n]
                let wt = weight?[t] ?? 1
                let bigQ = smoothing > 0 ? keep * wt + spread * weightSum : wt
                let aQ = a * bigQ
                for j in 0..<c { dz[j] += aQ * VectorMath.exp(z[j] - l) }
                if smoothing > 0 {
                    let as_ = a * spread
                    if let weight {
                        for j in 0..<c { dz[j] -= as_ * weight[j] }
                    } else {
                        for j in 0..<c { dz[j] -= as_ }
                    }
                    dz[t] -= a * keep * wt
                } else {
                    dz[t] -= a * wt
                }
            }
        }
    }

    // MARK: - squared error

    /// Elements per chunk of a deterministic parallel sum.
    package static let sumChunk = 16_384

    /// Σ_i (x_i − t_i)², in fixed chunks whose float partial sums are added in order in double.
    package static func sumSquaredError(_ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>, count: Int) -> Double {
        guard count > 0 else { return 0 }
        let chunks = (count + sumChunk - 1) / sumChunk
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
        defer { partial.deallocate() }
        parallelRanges(chunks, grain: 2) { lo, hi in
            for k in lo..<hi {
                let i0 = k * sumChunk, i1 = min(count, i0 + sumChunk)
                var s: Float = 0
                for i in i0..<i1 { let d = x[i] - t[i]; s = Relaxed.multiplyAdd(d, d, s) }
                partial[k] = Double(s)
            }
        }
        var total = 0.0
        for k in 0..<chunks { total += partial[k] }
        return total
    }

    /// y_i = (x_i − t_i)².
    package static func squaredError(_ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                             count: Int) {
        parallelRanges(count, grain: 65_536) { lo, hi in
            for i in lo..<hi { let d = x[i] - t[i]; y[i] = d * d }
        }
    }

    /// g_i = 2 (x_i − t_i) · dy[i · dyStride] · scale; dx += g, dt −= g (each when non-nil).
    package static func squaredErrorBackward(
        _ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>, count: Int,
        dy: UnsafePointer<Float>, dyStride: Int, scale: Float,
        dx: UnsafeMutablePointer<Float>?, dt: UnsafeMutablePointer<Float>?
    ) {
        parallelRanges(count, grain: 65_536) { lo, hi in
            if dyStride == 0 {
                let k = 2 * dy[0] * scale
                if let dx { for i in lo..<hi { dx[i] += k * (x[i] - t[i]) } }
                if let dt { for i in lo..<hi { dt[i] -= k * (x[i] - t[i]) } }
            } else {
                let k = 2 * scale
                if let dx { for i in lo..<hi { dx[i] += k * (x[i] - t[i]) * dy[i] } }
                if let dt { for i in lo..<hi { dt[i] -= k * (x[i] - t[i]) * dy[i] } }
            }
        }
    }

    /// perSample[n] = (1/M) Σ_{i < M} (x_ni − t_ni)² for N samples of M elements each; one thread
    /// per sample sum.
    package static func perSampleMeanSquaredError(_ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>,
                                          samples: Int, elements: Int, perSample: UnsafeMutablePointer<Float>) {
        parallelRanges(samples, grain: max(1, 65_536 / max(elements, 1))) { lo, hi in
            for n in lo..<hi {
                let xn = x + n * elements, tn = t + n * elements
                var s: Float = 0
                for i in 0..<elements { let d = xn[i] - tn[i]; s = Relaxed.multiplyAdd(d, d, s) }
                perSample[n] = s / Float(elements)
            }
        }
    }

    /// Gradients of L = (1/N) Σ_n w_n · mse_n, scaled by the upstream scalar g:
    ///   dx_ni += g · w_n · 2 (x_ni − t_ni) / (M·N),  dt = −that,  dw_n += g · mse_n / N.
    package static func weightedSquaredErrorBackward(
        _ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>, weights: UnsafePointer<Float>,
        perSample: UnsafePointer<Float>, samples: Int, elements: Int, upstream g: Float,
        dx: UnsafeMutablePointer<Float>?, dt: UnsafeMutablePointer<Float>?, dWeights: UnsafeMutablePointer<Float>?
    ) {
        let nf = Float(samples), mf = Float(elements)
        if let dWeights { for n in 0..<samples { dWeights[n] += g * perSample[n] / nf } }
        guard dx != nil || dt != nil else { return }
        parallelRanges(samples, grain: max(1, 65_536 / max(elements, 1))) { lo, hi in
            for n in lo..<hi {
                let k = 2 * g * weights[n] / (mf * nf)
                let xn = x + n * elements, tn = t + n * elements
                if let dx { let d = dx + n * elements; for i in 0..<elements { d[i] += k * (xn[i] - tn[i]) } }
                if let dt { let d = dt + n * elements; for i in 0..<elements { d[i] -= k * (xn[i] - tn[i]) } }
            }
        }
    }

    // MARK: - binary cross entropy with logits

    /// log σ(x) = min(x, 0) − log1p(exp(−|x|)), finite for every finite x.
    @inline(__always)
    package static func logSigmoid(_ x: Float) -> Float {
        min(x, 0) - Glibc.log1pf(VectorMath.exp(-abs(x)))
    }

    /// σ(x), without overflow for either sign.
    @inline(__always)
    package static func sigmoid(_ x: Float) -> Float {
        let e = VectorMath.exp(-abs(x))
        return x >= 0 ? 1 / (1 + e) : e / (1 + e)
    }

    /// ℓ_i = w_i · [(1 − t_i) x_i − (1 + (pw_c − 1) t_i) · log σ(x_i)] over rows of C (c = i mod C);
    /// `weight` is per element (`weightPerClass` false) or per class [C]; pw (pos_weight) per class.
    package static func bceWithLogits(
        _ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>, rows: Int, classes: Int,
        weight: UnsafePointer<Float>?, weightPerClass: Bool, posWeight: UnsafePointer<Float>?,
        loss: UnsafeMutablePointer<Float>
    ) {
        parallelRanges(rows, grain: max(1, 16_384 / max(classes, 1))) { lo, hi in
            for r in lo..<hi {
                let o = r * classes
                for c in 0..<classes {
                    let i = o + c
                    let lw = posWeight.map { 1 + ($0[c] - 1) * t[i] } ?? 1
                    var l = (1 - t[i]) * x[i] - lw * logSigmoid(x[i])
                    if let weight { l *= weight[weightPerClass ? c : i] }
                    loss[i] = l
                }
            }
        }
    }

    /// dx += g_i · w_i · [(1 − t_i) − lw_i · σ(−x_i)],  dt += g_i · w_i · [−x_i − (pw_c − 1) log σ(x_i)],
    /// g_i = dy[i · dyStride] · scale.
    package static func bceWithLogitsBackward(
        _ x: UnsafePointer<Float>, _ t: UnsafePointer<Float>, rows: Int, classes: Int,
        weight: UnsafePointer<Float>?, weightPerClass: Bool, posWeight: UnsafePointer<Float>?,
        dy: UnsafePointer<Float>, dyStride: Int, scale: Float,
        dx: UnsafeMutablePointer<Float>?, dt: UnsafeMutablePointer<Float>?
    ) {
        parallelRanges(rows, grain: max(1, 16_384 / max(classes, 1))) { lo, hi in
            for r in lo..<hi {
                let o = r * classes
                for c in 0..<classes {
                    let i = o + c
                    var g = dy[i * dyStride] * scale
                    if let weight { g *= weight[weightPerClass ? c : i] }
                    let pw = posWeight?[c] ?? 1
                    if let dx {
                        let lw = 1 + (pw - 1) * t[i]
                        dx[i] += g * ((1 - t[i]) - lw * sigmoid(-x[i]))
                    }
                    if let dt { dt[i] += g * (-x[i] - (pw - 1) * logSigmoid(x[i])) }
                }
            }
        }
    }
}
