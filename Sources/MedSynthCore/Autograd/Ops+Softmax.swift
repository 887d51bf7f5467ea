// Differentiable softmax and log-softmax (torch.softmax / torch.log_softmax semantics).

/// [outer, n, inner] around dimension `dim` of `shape` (negative dims count from the end, as in
/// torch; a 0-d tensor behaves as one element along dim 0 or −1).
package func softmaxLayout(_ shape: [Int], dim: Int, _ name: String) throws -> (outer: Int, n: Int, inner: Int) {
    let rank = max(shape.count, 1)
    try require(dim >= -rank && dim < rank,
                "\(name): dim \(dim) is out of range for a tensor of shape \(shape) (expected -\(rank)...\(rank - 1))")
    if shape.isEmpty { return (1, 1, 1) }
    let d = dim < 0 ? dim + rank : dim
    let outer = shape[..<d].reduce(1, *), inner = shape[(d + 1)...].reduce(1, *)
    return (outer, shape[d], inner)
}

/// Softmax along `dim`: y_i = exp(x_i) / Σ_j exp(x_j) over each slice of `dim`, computed as
/// exp(x_i − max) / Σ_j exp(x_j − max) so large logits do not overflow (torch.softmax(x, dim)).
/// Same shape as `x`; `dim` may be negative. A slice holding NaN or +inf gives NaN, as in torch.
/// Backward: dx = y ⊙ (dy − Σ_dim dy ⊙ y).
public func softmax(_ x: Tensor, dim: Int) throws -> Tensor {
    try softmaxOp(x, dim: dim, log: false)
}

/// Log-softmax along `dim`: y_i = x_i − log Σ_j exp(x_j), computed as x_i − m − log Σ_j exp(x_j − m)
/// with m the slice maximum (torch.log_softmax(x, dim)). More accurate than log(softmax(x)) for
/// very negative log-probabilities. Backward: dx = dy − exp(y) · Σ_dim dy.
public func logSoftmax(_ x: Tensor, dim: Int) throws -> Tensor {
    try softmaxOp(x, dim: dim, log: true)
}

private func softmaxOp(_ x: Tensor, dim: Int, log: Bool) throws -> Tensor {
    let (outer, n, inner) = try softmaxLayout(x.shape, dim: dim, log ? "logSoftmax" : "softmax")
    let y = try Tensor(uninitialized: x.shape)
    SoftmaxKernel.forward(x.data, y.data, outer: outer, n: n, inner: inner, log: log)
    // Backward needs only the output: keep its storage, never the result tensor (cycle).
    let saved = y.storage
    return y.recording([x]) { dy in
        guard x.needsGrad else { return }
        SoftmaxKernel.backward(y: saved.pointer, dy: dy.data, dx: try x.gradPointer(),
                               outer: outer, n: n, inner: inner, log: log)
    }
}
