// Differentiable self-attention over the pixels of a feature map (see Kernels/SpatialAttention).

/// Multi-head self-attention for qkv [B, 3C, H, W] (queries, keys and values stacked on the channel
/// axis, as a 1×1 convolution to 3C channels produces them) → [B, C, H, W]. Scale 1/√(C/heads) by
/// default, as torch's scaled_dot_product_attention.
public func spatialSelfAttention(qkv: Tensor, heads: Int = 1, scale: Float? = nil) throws -> Tensor {
    try require(qkv.rank == 4, "spatialSelfAttention: qkv must be [B, 3C, H, W], got \(qkv.shape)")
    try require(qkv.shape[1] % 3 == 0, "spatialSelfAttention: qkv needs 3·C channels, got \(qkv.shape[1])")
    let channels = qkv.shape[1] / 3
    try require(heads >= 1 && channels % heads == 0, "spatialSelfAttention: \(heads) heads do not divide \(channels) channels")
    let g = SpatialAttentionGeometry(batch: qkv.shape[0], channels: channels, length: qkv.shape[2] * qkv.shape[3], heads: heads)
    try require(g.length >= 1, "spatialSelfAttention: empty feature map")
    let s = scale ?? 1 / Float(g.headChannels).squareRoot()
    let out = try Tensor(uninitialized: [g.batch, channels, qkv.shape[2], qkv.shape[3]])
    let needsBackward = GradMode.isEnabled && qkv.needsGrad
    let probabilities = try needsBackward ? Storage(count: g.batch * heads * g.scoreCount) : nil
    try SpatialAttentionKernel.forward(g, qkv: qkv.data, scale: s, out: out.data, probabilities: probabilities?.pointer)
    guard let probabilities else { return out }
    return out.recording([qkv]) { dy in
        try SpatialAttentionKernel.backward(g, qkv: qkv.data, scale: s, probabilities: probabilities.pointer,
                                        dOut: dy.data, dqkv: try qkv.gradPointer())
    }
}
