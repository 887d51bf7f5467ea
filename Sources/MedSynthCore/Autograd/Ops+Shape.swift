// Differentiable shape operations (torch semantics): reshape and flatten share storage; the rest
// (concat, split/chunk, slice/narrow, transpose/permute) materialise contiguous copies, since every
// tensor in the engine is dense and row-major. Backward passes add the gradient back into the
// matching part of each input.

// MARK: - Dimensions

/// `dim` wrapped into 0..<rank (negative dims count from the end, as in torch). A 0-d tensor
/// accepts 0 and −1, as torch does.
package func normalizedDim(_ dim: Int, rank: Int, _ name: String) throws -> Int {
    let r = max(rank, 1)
    try require(dim >= -r && dim < r, "\(name): dimension \(dim) is out of range for a tensor of rank \(rank) (expected \(-r)...\(r - 1))")
    return dim < 0 ? dim + r : dim
}

// MARK: - Reshape and flatten

/// The same data viewed with another shape (torch.reshape; here always a view that shares the
/// storage, since tensors are contiguous). One extent may be −1: it is inferred from the element
/// count. The element count must not change. Gradient: dy viewed back with x's shape.
public func reshape(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
    var inferred: Int? = nil
    var known = 1
    for (i, d) in shape.enumerated() {
        if d == -1 {
            try require(inferred == nil, "reshape: only one dimension can be -1, got \(shape)")
            inferred = i
        } else {
            try require(d >= 0, "reshape: invalid extent \(d) in \(shape) (extents must be non-negative, or -1 once)")
            let (product, overflow) = known.multipliedReportingOverflow(by: d)
            try require(!overflow, "reshape: shape \(shape) has too many elements")
            known = product
        }
    }
    var out = shape
    if let i = inferred {
        try require(known != 0 && x.count % known == 0,
                    "reshape: cannot reshape a tensor of shape \(x.shape) (\(x.count) elements) into \(shape)")
        out[i] = x.count / known
    }
    try require(checkedElementCount(out) == x.count,
                "reshape: cannot reshape a tensor of shape \(x.shape) (\(x.count) elements) into \(shape)")
    let y = Tensor(shape: out, storage: x.storage)
    return y.recording([x]) { dy in
        ElementwiseKernel.addScaled(dy.data, try x.gradPointer(), x.count)
    }
}

/// Merges dimensions startDim...endDim into one (torch.flatten(input, start_dim=0, end_dim=-1);
/// nn.Flatten uses startDim 1). A 0-d tensor becomes [1]. Shares storage like `reshape`.
public func flatten(_ x: Tensor, startDim: Int = 0, endDim: Int = -1) throws -> Tensor {
    if x.rank == 0 {
        _ = try normalizedDim(startDim, rank: 0, "flatten")
        _ = try normalizedDim(endDim, rank: 0, "flatten")
        return try reshape(x, [1])
    }
    let s = try normalizedDim(startDim, rank: x.rank, "flatten")
    let e = try normalizedDim(endDim, rank: x.rank, "flatten")
    try require(s <= e, "flatten: startDim (\(startDim)) must not come after endDim (\(endDim)) for rank \(x.rank)")
    let merged = x.shape[s...e].reduce(1, *)
    return try reshape(x, Array(x.shape[..<s]) + [merged] + Array(x.shape[(e + 1)...]))
}

// MARK: - Concatenation

/// Concatenates tensors along `dim` (torch.cat): all must have the same rank and the same extents
/// except along `dim`; negative `dim` counts from the end. As in torch, 1-D empty tensors (shape
/// [0]) are skipped whatever the other shapes. Gradient: each input receives its slice of dy.
public func concat(_ xs: [Tensor], dim: Int) throws -> Tensor {
    try require(!xs.isEmpty, "concat: expected a non-empty list of tensors")
    let legacyEmpty = { (t: Tensor) in t.rank == 1 && t.shape[0] == 0 }
    let parts = xs.contains(where: { !legacyEmpty($0) }) ? xs.filter { !legacyEmpty($0) } : xs
    let reference = parts[0]
    try require(reference.rank > 0, "concat: zero-dimensional tensors cannot be concatenated")
    let d = try normalizedDim(dim, rank: reference.rank, "concat")
    var total = 0
    for (i, t) in parts.enumerated() {
        var same = t.rank == reference.rank
        if same { for k in 0..<t.rank where k != d && t.shape[k] != reference.shape[k] { same = false } }
        try require(same, "concat: tensor \(i) has shape \(t.shape), expected \(reference.shape) except along dimension \(d)")
        total += t.shape[d]
    }
    var outShape = reference.shape
    outShape[d] = total
    let outer = reference.shape[..<d].reduce(1, *)
    let inner = reference.shape[(d + 1)...].reduce(1, *)
    let rowLength = total * inner
    let y = try Tensor(uninitialized: outShape)
    var offset = 0
    var offsets: [Int] = []
    for t in parts {
        offsets.append(offset)
        CopyKernel.stridedRows(packed: t.data, strided: y.data + offset, rows: outer, length: t.shape[d] * inner,
                               group: 1, outerStride: rowLength, groupStride: 0, gather: false, accumulate: false)
        offset += t.shape[d] * inner
    }
    return y.recording(parts) { dy in
        for (t, off) in zip(parts, offsets) where t.needsGrad {
            CopyKernel.stridedRows(packed: try t.gradPointer(), strided: dy.data + off, rows: outer,
                                   length: t.shape[d] * inner, group: 1, outerStride: rowLength, groupStride: 0,
                                   gather: true, accumulate: true)
        }
    }
}

// MARK: - Slicing

/// x[..., start:end:step, ...] along `dim`, with Python/torch slice semantics: negative `start`
/// and `end` count from the end, both are clamped to [0, size], `end` nil means the end, and an
/// empty range gives extent 0. `step` must be positive. Returns a copy. Gradient: dy added into
/// the selected positions of dx.
public func slice(_ x: Tensor, dim: Int, start: Int = 0, end: Int? = nil, step: Int = 1) throws -> Tensor {
    try require(x.rank > 0, "slice: cannot slice a zero-dimensional tensor")
    let d = try normalizedDim(dim, rank: x.rank, "slice")
    try require(step >= 1, "slice: step must be positive, got \(step)")
    let size = x.shape[d]
    func clamp(_ i: Int) -> Int { min(size, max(0, i < 0 ? i + size : i)) }
    let s = clamp(start), e = clamp(end ?? size)
    let length = e > s ? (e - s + step - 1) / step : 0
    return try sliceCopy(x, dim: d, start: s, length: length, step: step)
}

/// Elements start..<start+length along `dim` (torch.narrow): `start` may be negative (counts
/// from the end); the range must lie inside the dimension. Returns a copy (torch returns a view).
public func narrow(_ x: Tensor, dim: Int, start: Int, length: Int) throws -> Tensor {
    try require(x.rank > 0, "narrow: cannot narrow a zero-dimensional tensor")
    let d = try normalizedDim(dim, rank: x.rank, "narrow")
    let size = x.shape[d]
    try require(start >= -size && start <= size, "narrow: start \(start) is out of range for dimension \(d) of size \(size)")
    let s = start < 0 ? start + size : start
    try require(length >= 0 && s + length <= size,
                "narrow: start (\(s)) + length (\(length)) exceeds dimension \(d) of size \(size)")
    return try sliceCopy(x, dim: d, start: s, length: length, step: 1)
}

/// The checked core of slice/narrow/split: `length` elements from `start` every `step` along `d`.
private func sliceCopy(_ x: Tensor, dim d: Int, start: Int, length: Int, step: Int) throws -> Tensor {
    let size = x.shape[d]
    let outer = x.shape[..<d].reduce(1, *), inner = x.shape[(d + 1)...].reduce(1, *)
    var outShape = x.shape
    outShape[d] = length
    let y = try Tensor(uninitialized: outShape)
    CopyKernel.stridedRows(packed: y.data, strided: x.data + start * inner, rows: outer * length, length: inner,
                           group: max(length, 1), outerStride: size * inner, groupStride: step * inner,
                           gather: true, accumulate: false)
    return y.recording([x]) { dy in
        CopyKernel.stridedRows(packed: dy.data, strided: try x.gradPointer() + start * inner, rows: outer * length,
                               length: inner, group: max(length, 1), outerStride: size * inner,
                               groupStride: step * inner, gather: false, accumulate: true)
    }
}

// MARK: - Split and chunk

/// Splits `x` along `dim` into pieces of `splitSize` (torch.split with an int): the last piece
/// is smaller when the size is not divisible. `splitSize` must be positive, or 0 for a
/// dimension of size 0 (one empty piece). Each piece is a copy with its own gradient path.
public func split(_ x: Tensor, splitSize: Int, dim: Int = 0) throws -> [Tensor] {
    try require(x.rank > 0, "split: cannot split a zero-dimensional tensor")
    let d = try normalizedDim(dim, rank: x.rank, "split")
    let size = x.shape[d]
    try require(splitSize >= 0, "split: splitSize must be non-negative, got \(splitSize)")
    try require(splitSize != 0 || size == 0, "split: splitSize can only be 0 if the dimension size is 0, got size \(size)")
    let pieces = splitSize == 0 ? 1 : max((size + splitSize - 1) / splitSize, 1)
    var sizes = [Int](repeating: splitSize, count: pieces)
    sizes[pieces - 1] = splitSize - (splitSize * pieces - size)
    return try split(x, sizes: sizes, dim: d)
}

/// Splits `x` along `dim` into pieces of the given extents (torch.split with a list, i.e.
/// split_with_sizes): the sizes must be non-negative and add up to the dimension's size.
public func split(_ x: Tensor, sizes: [Int], dim: Int = 0) throws -> [Tensor] {
    try require(x.rank > 0, "split: cannot split a zero-dimensional tensor")
    let d = try normalizedDim(dim, rank: x.rank, "split")
    try require(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == x.shape[d],
                "split: sizes \(sizes) must be non-negative and add up to \(x.shape[d]) (dimension \(d) of \(x.shape))")
    var start = 0
    var pieces: [Tensor] = []
    for n in sizes {
        pieces.append(try sliceCopy(x, dim: d, start: start, length: n, step: 1))
        start += n
    }
    return pieces
}

/// Splits `x` into at most `chunks` pieces along `dim` (torch.chunk): each of ⌈size/chunks⌉
/// elements except a smaller last one, so fewer than `chunks` pieces can come back (size 6,
/// 4 chunks → 3 pieces of 2). A dimension of size 0 gives `chunks` empty pieces.
public func chunk(_ x: Tensor, chunks: Int, dim: Int = 0) throws -> [Tensor] {
    try require(chunks > 0, "chunk: chunks must be positive, got \(chunks)")
    try require(x.rank > 0, "chunk: cannot chunk a zero-dimensional tensor")
    let d = try normalizedDim(dim, rank: x.rank, "chunk")
    let size = x.shape[d]
    let splitSize = (size + chunks - 1) / chunks
    if splitSize == 0 && size == 0 {
        return try split(x, sizes: [Int](repeating: 0, count: chunks), dim: d)
    }
    return try split(x, splitSize: splitSize, dim: d)
}

// MARK: - Transpose and permute

/// Reorders the dimensions (torch.permute): output dimension i is input dimension dims[i].
/// `dims` must be a permutation of the dimensions (negative values count from the end).
/// Returns a contiguous copy (torch returns a strided view; the values are the same). Transposes
/// of the last two dimensions run as 32×32 cache-blocked tiles. Gradient: dy permuted back.
public func permute(_ x: Tensor, _ dims: [Int]) throws -> Tensor {
    try require(dims.count == x.rank, "permute: expected \(x.rank) dimensions for a tensor of shape \(x.shape), got \(dims)")
    var perm: [Int] = []
    var seen = [Bool](repeating: false, count: x.rank)
    for d in dims {
        let n = try normalizedDim(d, rank: x.rank, "permute")
        try require(x.rank == 0 || !seen[n], "permute: dimension \(n) appears more than once in \(dims)")
        if x.rank > 0 { seen[n] = true; perm.append(n) }
    }
    let outShape = perm.map { x.shape[$0] }
    let y = try Tensor(uninitialized: outShape)
    CopyKernel.permute(x.data, shape: x.shape, perm: perm, y.data, accumulate: false)
    var inverse = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    return y.recording([x]) { dy in
        CopyKernel.permute(dy.data, shape: outShape, perm: inverse, try x.gradPointer(), accumulate: true)
    }
}

/// Swaps dimensions dim0 and dim1 (torch.transpose); negative dims count from the end. Returns a
/// contiguous copy. Gradient: dy transposed back.
public func transpose(_ x: Tensor, _ dim0: Int, _ dim1: Int) throws -> Tensor {
    let a = try normalizedDim(dim0, rank: x.rank, "transpose")
    let b = try normalizedDim(dim1, rank: x.rank, "transpose")
    var perm = Array(0..<x.rank)
    if x.rank > 0 { perm.swapAt(a, b) }
    return try permute(x, perm)
}
