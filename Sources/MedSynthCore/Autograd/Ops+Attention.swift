// Differentiable scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention).

/// Scaled dot-product attention, torch.nn.functional.scaled_dot_product_attention(q, k, v,
/// scale=scale) with no mask, no dropout and is_causal=False:
///
///     out = softmax(scale · q kᵀ, dim=-1) · v,   scale = 1/√D by default
///
/// Shapes: q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv] → [..., Lq, Dv], typically
/// [B, H, L, D]; the leading dimensions must be equal (torch also broadcasts them; here they are
/// not broadcast). Attention is computed independently for every leading index (head). The
/// softmax subtracts each row's maximum, so large scores do not overflow. Gradients flow to q, k
/// and v. Memory: the attention probabilities [..., Lq, Lk] are kept for backward, and only when a
/// gradient will be needed (Vaswani et al. 2017, "Attention Is All You Need").
///
/// Throws when the ranks differ or are below 2, the leading dimensions differ, k's width is not
/// q's, v's length is not k's, or D = 0.
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float? = nil) throws -> Tensor {
    try require(q.rank >= 2 && k.rank == q.rank && v.rank == q.rank,
                "scaledDotProductAttention: q, k and v must have the same rank (at least 2, e.g. [B, H, L, D]); got q \(q.shape), k \(k.shape), v \(v.shape)")
    let lead = Array(q.shape.dropLast(2))
    try require(Array(k.shape.dropLast(2)) == lead && Array(v.shape.dropLast(2)) == lead,
                "scaledDotProductAttention: q \(q.shape), k \(k.shape) and v \(v.shape) must share their leading (batch, head) dimensions")
    let r = q.rank
    let (lq, d, lk, dv) = (q.shape[r - 2], q.shape[r - 1], k.shape[r - 2], v.shape[r - 1])
    try require(k.shape[r - 1] == d,
                "scaledDotProductAttention: k's last dimension (\(k.shape[r - 1])) must equal q's (\(d)); got q \(q.shape), k \(k.shape)")
    try require(v.shape[r - 2] == lk,
                "scaledDotProductAttention: v must have as many rows as k (\(lk)); got k \(k.shape), v \(v.shape)")
    try require(d >= 1, "scaledDotProductAttention: the query/key width must be at least 1, got q \(q.shape)")

    let g = AttentionGeometry(heads: lead.reduce(1, *), queries: lq, keys: lk, width: d, valueWidth: dv,
                              scale: scale ?? 1 / Float(d).squareRoot())
    let out = try Tensor(uninitialized: lead + [lq, dv])
    let keep = GradMode.isEnabled && (q.needsGrad || k.needsGrad || v.needsGrad)
    guard keep else {
        AttentionKernel.forward(g, q: q.data, k: k.data, v: v.data, o: out.data, probabilities: nil)
        return out
    }
    let probabilityCount = g.heads * g.scoreCount
    if probabilityCount >= 1 << 24 {
        try MemoryBudget.check(bytes: probabilityCount * MemoryLayout<Float>.stride,
                               what: "attention over \(g.heads) heads of \(lq)×\(lk) scores")
    }
    let p = try Storage(count: probabilityCount)
    AttentionKernel.forward(g, q: q.data, k: k.data, v: v.data, o: out.data, probabilities: p.pointer)
    return out.recording([q, k, v]) { dO in
        let dq = try q.needsGrad ? q.gradPointer() : nil
        let dk = try k.needsGrad ? k.gradPointer() : nil
        let dvp = try v.needsGrad ? v.gradPointer() : nil
        guard dq != nil || dk != nil || dvp != nil else { return }
        AttentionKernel.backward(g, q: q.data, k: k.data, v: v.data, probabilities: p.pointer, dO: dO.data,
                                 dq: dq, dk: dk, dv: dvp)
    }
}
