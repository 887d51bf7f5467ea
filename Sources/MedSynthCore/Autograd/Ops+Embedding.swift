// Differentiable embedding lookup (torch.nn.functional.embedding).

/// Rows of `weight` [numEmbeddings, dim] picked by `indices` → [indices.count, dim]
/// (F.embedding(input, weight, padding_idx)). Every index must lie in 0..<numEmbeddings (torch
/// raises "index out of range" otherwise, negative indices included). `paddingIndex` (may be
/// negative, counting from the end) names a row that receives no gradient, as torch's padding_idx;
/// the forward pass still reads it. Gradient: dW[indices[r]] += dy[r], added in index order so
/// repeated indices give the same sum on any number of threads.
public func embedding(indices: [Int], weight: Tensor, paddingIndex: Int? = nil) throws -> Tensor {
    try require(weight.rank == 2, "embedding: weight must be [numEmbeddings, dim], got \(weight.shape)")
    let (numEmbeddings, dim) = (weight.shape[0], weight.shape[1])
    for (position, index) in indices.enumerated() {
        try require(index >= 0 && index < numEmbeddings,
                    "embedding: index \(index) at position \(position) is out of range for \(numEmbeddings) embeddings")
    }
    var skip: Int? = nil
    if let paddingIndex {
        try require(paddingIndex >= -numEmbeddings && paddingIndex < numEmbeddings,
                    "embedding: paddingIndex \(paddingIndex) must be within the \(numEmbeddings) embeddings")
        skip = paddingIndex < 0 ? paddingIndex + numEmbeddings : paddingIndex
    }
    try checkResultSize([indices.count, dim], "embedding")
    let y = try Tensor(uninitialized: [indices.count, dim])
    indices.withUnsafeBufferPointer { ip in
        guard let base = ip.baseAddress else { return }
        CopyKernel.gatherRows(weight.data, dim: dim, indices: base, count: ip.count, y.data)
    }
    return y.recording([weight]) { dy in
        try indices.withUnsafeBufferPointer { ip in
            guard let base = ip.baseAddress else { return }
            CopyKernel.scatterAddRows(dy.data, dim: dim, indices: base, count: ip.count, skip: skip, try weight.gradPointer())
        }
    }
}
