// Differentiable dropout (torch.nn.functional.dropout / dropout2d; Srivastava et al. 2014,
// "Dropout: A Simple Way to Prevent Neural Networks from Overfitting"; Tompson et al. 2015 for
// the channel-wise variant).
//
// Inverted dropout: in training each element (or channel) is kept with probability 1 − p and
// scaled by 1/(1 − p), so the expected value is unchanged and evaluation needs no rescaling. As
// in torch, y = x · mask with mask ∈ {0, 1/(1 − p)} (so NaN or inf inputs stay NaN where dropped),
// and the gradient is dy · mask. The keep/drop decisions come from the caller's generator (a key
// drawn from it drives counter-based Philox blocks, generated in parallel): the same generator
// state gives the same mask, whatever the thread count.
// The mask is kept as one byte per decision for the backward pass.

private func checkProbability(_ p: Double, _ name: String) throws {
    try require(p >= 0 && p <= 1, "\(name): dropout probability has to be between 0 and 1, but got \(p)")
}

/// y = x · mask, where mask[i] = keep[i / group] ? scale : 0 (group consecutive elements share
/// one decision). Records dx += dy · mask.
private func applyMask(_ x: Tensor, keep: [UInt8], group: Int, scale: Float) throws -> Tensor {
    let y = try Tensor(uninitialized: x.shape)
    masked(x.data, keep: keep, group: group, scale: scale, y.data, accumulate: false)
    return y.recording([x]) { dy in
        masked(dy.data, keep: keep, group: group, scale: scale, try x.gradPointer(), accumulate: true)
    }
}

/// out (+)= src · mask over keep.count · group elements.
private func masked(_ src: UnsafePointer<Float>, keep: [UInt8], group: Int, scale: Float,
                    _ out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    keep.withUnsafeBufferPointer { k in
        guard let kp = k.baseAddress else { return }
        if group == 1 {
            parallelRanges(k.count, grain: ElementwiseKernel.grain) { lo, hi in
                if accumulate {
                    for i in lo..<hi { out[i] += src[i] * (kp[i] != 0 ? scale : 0) }
                } else {
                    for i in lo..<hi { out[i] = src[i] * (kp[i] != 0 ? scale : 0) }
                }
            }
        } else {
            // One decision per channel plane of `group` elements.
            parallelRanges(k.count, grain: max(1, ElementwiseKernel.grain / group)) { lo, hi in
                for c in lo..<hi {
                    let m: Float = kp[c] != 0 ? scale : 0
                    let s = src + c * group, o = out + c * group
                    if accumulate { for i in 0..<group { o[i] += s[i] * m } } else { for i in 0..<group { o[i] = s[i] * m } }
                }
            }
        }
    }
}

/// `count` keep decisions, each true with probability 1 − p. One 64-bit key is drawn from
/// `generator`; decision i takes lane i % 4 of the Philox4x32-10 block i / 4 under that key (the
/// generator's own algorithm), compared as a 24-bit uniform number, like `uniform()`. Blocks are
/// independent, so threads fill disjoint ranges and the mask depends only on the generator's state.
private func drawKeepMask(_ count: Int, p: Double, generator: RandomGenerator) -> [UInt8] {
    let key = generator.nextUInt64()
    // u = k·2⁻²⁴ < 1 − p  ⇔  k < ⌈(1 − p)·2²⁴⌉
    let threshold = UInt32(min(16_777_216, max(0, ((1 - p) * 16_777_216).rounded(.up))))
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        guard let mask = buffer.baseAddress else { initialized = 0; return }
        parallelRanges((count + 3) / 4, grain: 4096) { lo, hi in
            for block in lo..<hi {
                let r = RandomGenerator.philox(counter: UInt64(block), key: key)
                let i = block * 4
                let lanes = (r.0, r.1, r.2, r.3)
                if i + 3 < count {
                    mask[i] = (lanes.0 >> 8) < threshold ? 1 : 0
                    mask[i + 1] = (lanes.1 >> 8) < threshold ? 1 : 0
                    mask[i + 2] = (lanes.2 >> 8) < threshold ? 1 : 0
                    mask[i + 3] = (lanes.3 >> 8) < threshold ? 1 : 0
                } else {
                    let tail = [lanes.0, lanes.1, lanes.2, lanes.3]
                    for j in 0..<(count - i) { mask[i + j] = (tail[j] >> 8) < threshold ? 1 : 0 }
                }
            }
        }
        initialized = count
    }
}

/// Inverted dropout (F.dropout(input, p=0.5, training=True)): each element is zeroed with
/// probability `p` and the kept ones are multiplied by 1/(1 − p) (computed in float, as torch).
/// Returns `x` itself when `training` is false, when p == 0, or when x is empty; p == 1 gives
/// x · 0 (zeros). p outside [0, 1] (or NaN) throws. The mask is drawn from `generator`.
public func dropout(_ x: Tensor, p: Double = 0.5, training: Bool = true, generator: RandomGenerator) throws -> Tensor {
    try checkProbability(p, "dropout")
    if !training || p == 0 || x.count == 0 { return x }
    if p == 1 { return try mul(x, 0) }
    let scale = 1 / Float(1 - p)
    return try applyMask(x, keep: drawKeepMask(x.count, p: p, generator: generator), group: 1, scale: scale)
}

/// Channel-wise dropout (F.dropout2d): whole channels x[n, c] are zeroed with probability `p`,
/// the others scaled by 1/(1 − p). Input [N, C, H, W], or [N, C, L] (torch treats a 3-D input
/// as batched 1-D channels); other ranks throw. Same rules as `dropout` for `training`, p == 0,
/// p == 1 and invalid p.
public func dropout2d(_ x: Tensor, p: Double = 0.5, training: Bool = true, generator: RandomGenerator) throws -> Tensor {
    try checkProbability(p, "dropout2d")
    try require(x.rank == 3 || x.rank == 4, "dropout2d: expected an input of shape [N, C, H, W] (or [N, C, L]), got \(x.shape)")
    if !training || p == 0 || x.count == 0 { return x }
    if p == 1 { return try mul(x, 0) }
    let scale = 1 / Float(1 - p)
    let channels = x.shape[0] * x.shape[1]
    return try applyMask(x, keep: drawKeepMask(channels, p: p, generator: generator), group: x.count / channels, scale: scale)
}
