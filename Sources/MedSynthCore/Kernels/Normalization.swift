// Batch and group normalisation over raw buffers (torch.nn.functional.batch_norm / group_norm).
//
// Both view the input as [N, C, S] (S = product of the spatial sizes, 1 for [N, C]).
//   batch norm: statistics per channel c over the N·S values x[n, c, :]
//   group norm: statistics per (n, group) over the contiguous block of (C/G)·S values
// With x̂ = (x − μ)·σ̂ (σ̂ = 1/√(var + eps), var biased) and y = x̂·γ + β, the forward pass is
// written as y = x·α + b' with α = σ̂·γ and b' = β − μ·α (as torch's CPU kernels do). Backward,
// with M the number of values in a statistic and Σ over the same values:
//   ∂L/∂γ = Σ dy·x̂      ∂L/∂β = Σ dy
//   ∂L/∂x = σ̂ · (dy·γ − Σ(dy·γ)/M − x̂·Σ(dy·γ·x̂)/M)
// Sums of many floats are taken in chunks: a vectorised float sum per chunk, the chunks added in
// Double, which keeps the statistics of large feature maps accurate at float speed.

import RealModule

package enum NormKernel {
    /// Values per chunk of the two-level sums (fits L1, long enough to vectorise well).
    package static let chunk = 2048
    /// Elements per thread below which a job stays serial.
    package static let grainElements = 16_384

    // MARK: - accurate sums

    /// Σ x[i] for i < n, in float chunks accumulated in Double.
    @inline(__always)
    package static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0, i = 0
        while i < n {
            let m = min(chunk, n - i)
            total += Double(Reduce.sum(x + i, m))
            i += m
        }
        return total
    }

    /// Σ (x[i] − mean)².
    @inline(__always)
    package static func centredSumOfSquares(_ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> Double {
        var total = 0.0, i = 0
        while i < n {
            let m = min(chunk, n - i)
            total += Double(Reduce.centredSumOfSquares(x + i, m, mean: mean))
            i += m
        }
        return total
    }

    /// Σ dy[i]·(x[i] − mean).
    @inline(__always)
    package static func centredDot(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> Double {
        var total = 0.0, i = 0
        while i < n {
            let m = min(chunk, n - i)
            var s: Float = 0
            let (a, b) = (dy + i, x + i)
            for j in 0..<m { s = Relaxed.multiplyAdd(a[j], b[j] - mean, s) }
            total += Double(s)
            i += m
        }
        return total
    }

    /// y[i] = x[i]·scale + shift, clamped to [low, high].
    @inline(__always)
    package static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, scale: Float, shift: Float,
                               low: Float = -.infinity, high: Float = .infinity) {
        for i in 0..<n { y[i] = clamp(x[i] * scale + shift, low, high) }
    }

    /// y[i] = clamp(x[i]·scale + shift + r[i], low, high): the affine map with a residual added
    /// before the activation.
    @inline(__always)
    package static func affineAdding(_ x: UnsafePointer<Float>, _ r: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                     _ n: Int, scale: Float, shift: Float, low: Float, high: Float) {
        for i in 0..<n { y[i] = clamp(x[i] * scale + shift + r[i], low, high) }
    }

    /// v < low ? low : (v > high ? high : v): ReLU (0, ∞) and ReLU6 (0, 6) exactly as their own
    /// kernels, the identity for (−∞, ∞); NaN stays NaN.
    @inline(__always)
    package static func clamp(_ v: Float, _ low: Float, _ high: Float) -> Float { v < low ? low : (v > high ? high : v) }

    /// dx[i] += dy[i]·a + x[i]·b + c (the normalisation backward, per channel).
    @inline(__always)
    package static func accumulateLinear(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                 _ n: Int, a: Float, b: Float, c: Float) {
        for i in 0..<n { dx[i] += dy[i] * a + x[i] * b + c }
    }

    /// Channels per thread block so that each block holds about `grainElements` values.
    package static func channelGrain(valuesPerChannel: Int) -> Int { max(1, grainElements / max(1, valuesPerChannel)) }
}

// MARK: - batch norm

package enum BatchNormKernel {
    /// Per-channel batch mean and biased variance of x [n, c, s].
    package static func statistics(x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                           mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        if s < smallPlane {
            smallPlaneStatistics(x: x, n: n, c: c, s: s, mean: mean, variance: variance)
        } else {
            planeStatistics(x: x, n: n, c: c, s: s, mean: mean, variance: variance)
        }
    }

    /// `statistics` plane by plane: chunked float sums added in Double.
    static func planeStatistics(x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                                mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        let m = n * s
        parallelRanges(c, grain: NormKernel.channelGrain(valuesPerChannel: m)) { lo, hi in
            for ch in lo..<hi {
                var total = 0.0
                for b in 0..<n { total += NormKernel.sum(x + (b * c + ch) * s, s) }
                let mu = total / Double(m)
                let muF = Float(mu)
                var squares = 0.0
                for b in 0..<n { squares += NormKernel.centredSumOfSquares(x + (b * c + ch) * s, s, mean: muF) }
                // the float mean differs from the exact one by δ; Σ(x − μ_f)² = Σ(x − μ)² + M·δ²
                let delta = mu - Double(muF)
                mean[ch] = mu
                variance[ch] = max(0, squares / Double(m) - delta * delta)
            }
        }
    }

    /// y = x·α_c + b'_c with α = invstd·γ, b' = β − mean·α (γ = 1, β = 0 when absent), then
    /// clamped to [low, high] (a fused ReLU or ReLU6; NaN stays NaN, as torch's clamp).
    package static func forward(x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                        mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                        low: Float = -.infinity, high: Float = .infinity, residual: UnsafePointer<Float>? = nil) {
        if s < smallPlane {
            // small planes: per channel block, the coefficients spread over the block's values
            // once, then every image's block in one contiguous sweep
            parallelRanges(c, grain: NormKernel.channelGrain(valuesPerChannel: n * s)) { lo, hi in
                let len = (hi - lo) * s
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * len) { buffer in
                    let scale = buffer.baseAddress!, shift = scale + len
                    for ch in lo..<hi {
                        let alpha = invstd[ch] * (weight?[ch] ?? 1), beta = (bias?[ch] ?? 0) - mean[ch] * alpha
                        let j = (ch - lo) * s
                        for i in 0..<s { scale[j + i] = alpha; shift[j + i] = beta }
                    }
                    for b in 0..<n {
                        let o = (b * c + lo) * s
                        let (src, dst) = (x + o, y + o)
                        if let r = residual.map({ $0 + o }) {
                            for i in 0..<len { dst[i] = NormKernel.clamp(src[i] * scale[i] + shift[i] + r[i], low, high) }
                        } else {
                            for i in 0..<len { dst[i] = NormKernel.clamp(src[i] * scale[i] + shift[i], low, high) }
                        }
                    }
                }
            }
        } else {
            planeForward(x: x, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: weight, bias: bias, y: y,
                         low: low, high: high, residual: residual)
        }
    }

    /// `forward` plane by plane.
    static func planeForward(x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                             mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                             low: Float = -.infinity, high: Float = .infinity, residual: UnsafePointer<Float>? = nil) {
        parallelRanges(c, grain: NormKernel.channelGrain(valuesPerChannel: n * s)) { lo, hi in
            for ch in lo..<hi {
                let alpha = invstd[ch] * (weight?[ch] ?? 1)
                let shift = (bias?[ch] ?? 0) - mean[ch] * alpha
                for b in 0..<n {
                    let o = (b * c + ch) * s
                    if let residual {
                        NormKernel.affineAdding(x + o, residual + o, y + o, s, scale: alpha, shift: shift, low: low, high: high)
                    } else {
                        NormKernel.affine(x + o, y + o, s, scale: alpha, shift: shift, low: low, high: high)
                    }
                }
            }
        }
    }

    /// Accumulates the requested gradients. `training` selects the batch-statistics formula for dx
    /// (mean/invstd were computed from x); otherwise mean/invstd are constants (running stats) and
    /// dx = dy·γ·invstd.
    package static func backward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                         mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                         training: Bool, dx: UnsafeMutablePointer<Float>?,
                         dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) {
        let m = n * s
        guard m > 0 else { return }
        if s < smallPlane {
            smallPlaneBackward(x: x, dy: dy, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: weight, training: training,
                               dx: dx, dWeight: dWeight, dBias: dBias)
        } else {
            planeBackward(x: x, dy: dy, n: n, c: c, s: s, mean: mean, invstd: invstd, weight: weight, training: training,
                          dx: dx, dWeight: dWeight, dBias: dBias)
        }
    }

    /// `backward` plane by plane.
    static func planeBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                              mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                              training: Bool, dx: UnsafeMutablePointer<Float>?,
                              dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) {
        let m = n * s
        parallelRanges(c, grain: NormKernel.channelGrain(valuesPerChannel: 2 * m)) { lo, hi in
            for ch in lo..<hi {
                let mu = mean[ch], istd = invstd[ch], gamma = weight?[ch] ?? 1
                var sumDy = 0.0, sumDyXmu = 0.0
                let needSums = dWeight != nil || dBias != nil || (training && dx != nil)
                if needSums {
                    for b in 0..<n {
                        let o = (b * c + ch) * s
                        sumDy += NormKernel.sum(dy + o, s)
                        sumDyXmu += NormKernel.centredDot(dy + o, x + o, s, mean: mu)
                    }
                }
                dWeight?[ch] += Float(sumDyXmu * Double(istd))
                dBias?[ch] += Float(sumDy)
                guard let dx else { continue }
                // dx = (dy − Σdy/M − (x − μ)·σ̂²·Σdy(x − μ)/M)·σ̂·γ  =  dy·a + x·b + c0
                let a = istd * gamma
                var bCoef: Float = 0, c0: Float = 0
                if training {
                    let k = Float(sumDyXmu / Double(m)) * istd * istd
                    let meanDy = Float(sumDy / Double(m))
                    bCoef = -k * a
                    c0 = (mu * k - meanDy) * a
                }
                for b in 0..<n {
                    let o = (b * c + ch) * s
                    NormKernel.accumulateLinear(dy + o, x + o, dx + o, s, a: a, b: bCoef, c: c0)
                }
            }
        }
    }
}

// MARK: - batch norm on small planes

extension BatchNormKernel {
    /// Planes smaller than this (the deep layers of the classifiers: 2×2 to 8×8 maps) go through
    /// the sweeps below: a loop per plane of a few values costs more than its arithmetic.
    package static let smallPlane = 256

    /// `statistics` for small planes: per channel block, each image's block is added into per-value
    /// float sums (n terms each), which are then summed per channel in Double; likewise the squares
    /// about the mean.
    static func smallPlaneStatistics(x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                                     mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        let m = Double(n * s)
        parallelRanges(c, grain: NormKernel.channelGrain(valuesPerChannel: n * s)) { lo, hi in
            let len = (hi - lo) * s
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * len) { buffer in
                let acc = buffer.baseAddress!, centre = acc + len
                acc.update(repeating: 0, count: len)
                for b in 0..<n {
                    let src = x + (b * c + lo) * s
                    for i in 0..<len { acc[i] += src[i] }
                }
                for ch in lo..<hi {
                    let j = (ch - lo) * s
                    var total = 0.0
                    for i in 0..<s { total += Double(acc[j + i]) }
                    mean[ch] = total / m
                    let muF = Float(mean[ch])
                    for i in 0..<s { centre[j + i] = muF }
                }
                acc.update(repeating: 0, count: len)
                for b in 0..<n {
                    let src = x + (b * c + lo) * s
                    for i in 0..<len { let d = src[i] - centre[i]; acc[i] = Relaxed.multiplyAdd(d, d, acc[i]) }
                }
                for ch in lo..<hi {
                    let j = (ch - lo) * s
                    var squares = 0.0
                    for i in 0..<s { squares += Double(acc[j + i]) }
                    // Σ(x − μ_f)² = Σ(x − μ)² + M·δ², δ the float mean's error
                    let delta = mean[ch] - Double(centre[j])
                    variance[ch] = max(0, squares / m - delta * delta)
                }
            }
        }
    }

    /// `backward` for small planes: the channel sums as in `smallPlaneStatistics`, then
    /// dx += dy·a + x·b + c with the per-channel coefficients spread over each block.
    static func smallPlaneBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                                   mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                   training: Bool, dx: UnsafeMutablePointer<Float>?,
                                   dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) {
        let m = n * s
        let needSums = dWeight != nil || dBias != nil || (training && dx != nil)
        parallelRanges(c, grain: NormKernel.channelGrain(valuesPerChannel: 2 * m)) { lo, hi in
            let len = (hi - lo) * s
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 5 * len) { buffer in
                let sumDy = buffer.baseAddress!, sumDyXmu = sumDy + len, a = sumDyXmu + len, bCoef = a + len, c0 = bCoef + len
                if needSums {
                    for ch in lo..<hi { for i in 0..<s { a[(ch - lo) * s + i] = mean[ch] } }   // the mean, spread
                    sumDy.update(repeating: 0, count: len)
                    sumDyXmu.update(repeating: 0, count: len)
                    for b in 0..<n {
                        let o = (b * c + lo) * s
                        let (g, v) = (dy + o, x + o)
                        for i in 0..<len {
                            sumDy[i] += g[i]
                            sumDyXmu[i] = Relaxed.multiplyAdd(g[i], v[i] - a[i], sumDyXmu[i])
                        }
                    }
                }
                for ch in lo..<hi {
                    let j = (ch - lo) * s
                    var totalDy = 0.0, totalDyXmu = 0.0
                    if needSums {
                        for i in 0..<s { totalDy += Double(sumDy[j + i]); totalDyXmu += Double(sumDyXmu[j + i]) }
                    }
                    let mu = mean[ch], istd = invstd[ch], gamma = weight?[ch] ?? 1
                    dWeight?[ch] += Float(totalDyXmu * Double(istd))
                    dBias?[ch] += Float(totalDy)
                    // dx = dy·a + x·b + c0, as in `backward`
                    let scale = istd * gamma
                    var k: Float = 0, meanDy: Float = 0
                    if training {
                        k = Float(totalDyXmu / Double(m)) * istd * istd
                        meanDy = Float(totalDy / Double(m))
                    }
                    for i in 0..<s {
                        a[j + i] = scale
                        bCoef[j + i] = training ? -k * scale : 0
                        c0[j + i] = training ? (mu * k - meanDy) * scale : 0
                    }
                }
                guard let dx else { return }
                for b in 0..<n {
                    let o = (b * c + lo) * s
                    let (g, v, d) = (dy + o, x + o, dx + o)
                    for i in 0..<len { d[i] += g[i] * a[i] + v[i] * bCoef[i] + c0[i] }
                }
            }
        }
    }
}

// MARK: - group norm

package enum GroupNormKernel {
    /// Per (n, group) mean and invstd of x [n, c, s]; y = x̂·γ + β. mean/invstd hold n·groups values.
    package static func forward(x: UnsafePointer<Float>, n: Int, c: Int, s: Int, groups: Int, eps: Float,
                        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                        mean: UnsafeMutablePointer<Float>, invstd: UnsafeMutablePointer<Float>) {
        let perGroup = c / groups, m = perGroup * s
        guard m > 0 else { return }
        parallelRanges(n * groups, grain: NormKernel.channelGrain(valuesPerChannel: 2 * m)) { lo, hi in
            for block in lo..<hi {
                let xb = x + block * m, yb = y + block * m
                let mu = NormKernel.sum(xb, m) / Double(m)
                let muF = Float(mu)
                let delta = mu - Double(muF)
                let variance = max(0, NormKernel.centredSumOfSquares(xb, m, mean: muF) / Double(m) - delta * delta)
                let istd = Float(1 / (variance + Double(eps)).squareRoot())
                mean[block] = muF
                invstd[block] = istd
                let firstChannel = (block % groups) * perGroup
                for j in 0..<perGroup {
                    let ch = firstChannel + j
                    let alpha = istd * (weight?[ch] ?? 1)
                    let shift = (bias?[ch] ?? 0) - muF * alpha
                    NormKernel.affine(xb + j * s, yb + j * s, s, scale: alpha, shift: shift)
                }
            }
        }
    }

    /// Accumulates the requested gradients. Per (n, c) partial sums Σdy and Σdy·(x − μ) are
    /// computed in parallel over (n, group); dγ and dβ add them over n in a fixed order.
    package static func backward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, n: Int, c: Int, s: Int, groups: Int,
                         mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                         dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                         dBias: UnsafeMutablePointer<Float>?) {
        let perGroup = c / groups, m = perGroup * s
        guard m > 0, n > 0 else { return }
        // sums[2·(b·c + ch)] = Σ_s dy, sums[2·(b·c + ch) + 1] = Σ_s dy·(x − μ)
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * n * c)
        defer { sums.deallocate() }
        parallelRanges(n * groups, grain: NormKernel.channelGrain(valuesPerChannel: 2 * m)) { lo, hi in
            for block in lo..<hi {
                let mu = mean[block], istd = invstd[block]
                let firstChannel = (block % groups) * perGroup
                let b = block / groups
                // Σ dy·γ and Σ dy·γ·x̂ over the group
                var sumDyGamma = 0.0, sumDyGammaXhat = 0.0
                for j in 0..<perGroup {
                    let ch = firstChannel + j, o = block * m + j * s
                    let sDy = NormKernel.sum(dy + o, s)
                    let sDyXmu = NormKernel.centredDot(dy + o, x + o, s, mean: mu)
                    sums[2 * (b * c + ch)] = sDy
                    sums[2 * (b * c + ch) + 1] = sDyXmu
                    let gamma = Double(weight?[ch] ?? 1)
                    sumDyGamma += gamma * sDy
                    sumDyGammaXhat += gamma * sDyXmu * Double(istd)
                }
                guard let dx else { continue }
                // dx = σ̂·(dy·γ − Σdyγ/M − x̂·Σdyγx̂/M) = dy·(σ̂γ) + x·bCoef + c0
                let k = Float(sumDyGammaXhat / Double(m)) * istd * istd     // multiplies (x − μ)
                let meanTerm = Float(sumDyGamma / Double(m)) * istd
                let bCoef = -k, c0 = mu * k - meanTerm
                for j in 0..<perGroup {
                    let ch = firstChannel + j, o = block * m + j * s
                    NormKernel.accumulateLinear(dy + o, x + o, dx + o, s, a: istd * (weight?[ch] ?? 1), b: bCoef, c: c0)
                }
            }
        }
        if dWeight != nil || dBias != nil {
            for ch in 0..<c {
                var dw = 0.0, db = 0.0
                for b in 0..<n {
                    db += sums[2 * (b * c + ch)]
                    dw += sums[2 * (b * c + ch) + 1] * Double(invstd[b * groups + ch / perGroup])
                }
                dWeight?[ch] += Float(dw)
                dBias?[ch] += Float(db)
            }
        }
    }
}

// MARK: - group norm fused with SiLU

/// s = SiLU(GroupNorm(x)), the "norm → activation" pair of every diffusion U-Net block, in one
/// pass over the data forward and one backward. The normalised values are not kept: backward
/// recomputes them from x and the saved statistics, which saves one activation-sized tensor per
/// pair (for the U-Net, two per residual block) at the cost of a cheap elementwise pass.
package enum GroupNormSiLUKernel {
    package static func forward(x: UnsafePointer<Float>, n: Int, c: Int, s: Int, groups: Int, eps: Float,
                        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                        mean: UnsafeMutablePointer<Float>, invstd: UnsafeMutablePointer<Float>) {
        GroupNormKernel.forward(x: x, n: n, c: c, s: s, groups: groups, eps: eps, weight: weight, bias: bias, y: out,
                                mean: mean, invstd: invstd)
        let silu = ActivationKernel.SiLU()
        parallelRanges(n * c * s, grain: 1 << 15) { lo, hi in
            for i in lo..<hi { out[i] = silu(out[i]) }
        }
    }

    /// Accumulates dx (and dγ, dβ) from ds.
    package static func backward(x: UnsafePointer<Float>, ds: UnsafePointer<Float>, n: Int, c: Int, s: Int, groups: Int,
                         mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                         bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>?,
                         dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) throws {
        let perGroup = c / groups
        // dy = ds · SiLU'(y), y = (x − μ)·σ̂·γ + β recomputed per channel
        let dyStorage = try Storage(count: max(1, n * c * s))
        let dy = dyStorage.pointer
        let gradient = ActivationKernel.SiLUGradient()
        parallelRanges(n * c, grain: max(1, (1 << 15) / max(s, 1))) { lo, hi in
            for plane in lo..<hi {
                let ch = plane % c, block = (plane / c) * groups + ch / perGroup
                let alpha = invstd[block] * (weight?[ch] ?? 1)
                let shift = (bias?[ch] ?? 0) - mean[block] * alpha
                let (xp, dp, gp) = (x + plane * s, ds + plane * s, dy + plane * s)
                for i in 0..<s { gp[i] = gradient(dp[i], xp[i] * alpha + shift) }
            }
        }
        GroupNormKernel.backward(x: x, dy: dy, n: n, c: c, s: s, groups: groups, mean: mean, invstd: invstd, weight: weight,
                                 dx: dx, dWeight: dWeight, dBias: dBias)
    }
}
