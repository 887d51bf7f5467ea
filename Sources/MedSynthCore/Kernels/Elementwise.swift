// Elementwise kernels: maps, broadcasting binary operations, and sums over broadcast dimensions.
//
// Broadcasting (NumPy/torch rules): shapes are aligned at their trailing dimensions; each pair of
// extents must be equal or contain a 1, and the result takes the larger. An operand is read with
// stride 0 along the dimensions it is broadcast over. Before running, the output's dimensions are
// simplified: extents of 1 are dropped and neighbours that both operands traverse contiguously are
// merged, so every case becomes "outer rows × one inner row", with each operand's inner stride 1
// (it varies along the row) or 0 (one value for the row):
//   same shapes                   → one row, strides (1, 1): a flat vectorised loop
//   [N, C, H, W] ⊕ [1, C, 1, 1]   → rows (N·C) of H·W, strides (1, 0): row ⊕ scalar
//   [N, C] ⊕ [C]                  → rows N of C, strides (1, 1) with b's row offset 0
// Work is split by contiguous ranges of the output (each thread walks its rows), so one long row
// is also shared between threads.
//
// Reductions to a broadcast shape (the backward of broadcasting, `sum(dims:)`) and sums of a whole
// tensor add fixed-size chunks whose partial sums are combined in a fixed order; the chunks depend
// on the shapes only, so results are bit-identical whatever the thread count.

// MARK: - Elementwise functions as types

// Structs rather than closures, so that the generic kernels below are specialised for each
// function and LLVM vectorises the loops.

protocol UnaryFunction { func callAsFunction(_ x: Float) -> Float }
protocol BinaryFunction { func callAsFunction(_ a: Float, _ b: Float) -> Float }

struct AddFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
struct SubFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
struct MulFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
struct DivFunction: BinaryFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }

/// The four broadcasting arithmetic operations.
package enum BinaryOp {
    case add, sub, mul, div
}

// MARK: - Broadcast shapes

/// The shape `a` and `b` broadcast to, or nil when some aligned pair of extents differs and neither is 1.
package func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

/// Row-major strides of `shape` seen from the dimensions of `outShape` (which it broadcasts to):
/// 0 along dimensions it lacks or has extent 1 in.
package func broadcastStrides(_ shape: [Int], in outShape: [Int]) -> [Int] {
    let lead = outShape.count - shape.count
    var strides = [Int](repeating: 0, count: outShape.count)
    var s = 1
    for j in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[lead + j] = shape[j] == 1 ? 0 : s
        s *= shape[j]
    }
    return strides
}

/// Offset of row `index` of an index space with extents `sizes` under `strides` (row-major).
@inline(__always)
package func rowOffset(_ index: Int, _ rank: Int, _ sizes: UnsafePointer<Int>, _ strides: UnsafePointer<Int>) -> Int {
    var i = index, offset = 0, d = rank - 1
    while d >= 0 {
        let size = sizes[d]
        offset += (i % size) * strides[d]
        i /= size
        d -= 1
    }
    return offset
}

/// Walks the rows of an index space in row-major order (last dimension fastest), keeping the
/// offsets of two operands up to date with additions: a division per row would cost more than a
/// short row itself. `index` is caller-provided scratch of `rank` integers.
package struct RowWalker {
    package let rank: Int
    package let sizes: UnsafePointer<Int>, aStrides: UnsafePointer<Int>, bStrides: UnsafePointer<Int>
    package let index: UnsafeMutablePointer<Int>
    private(set) var a = 0, b = 0

    /// Positioned at row `row`.
    @inline(__always)
    package init(row: Int, rank: Int, sizes: UnsafePointer<Int>, aStrides: UnsafePointer<Int>, bStrides: UnsafePointer<Int>,
         index: UnsafeMutablePointer<Int>) {
        self.rank = rank
        self.sizes = sizes
        self.aStrides = aStrides
        self.bStrides = bStrides
        self.index = index
        var rest = row, d = rank - 1
        while d >= 0 {
            index[d] = rest % sizes[d]
            rest /= sizes[d]
            a += index[d] * aStrides[d]
            b += index[d] * bStrides[d]
            d -= 1
        }
    }

    /// Moves to the next row.
    @inline(__always)
    package mutating func advance() {
        var d = rank - 1
        guard d >= 0 else { return }
        index[d] += 1
        a += aStrides[d]
        b += bStrides[d]
        while d > 0 && index[d] == sizes[d] {
            a -= sizes[d] * aStrides[d]
            b -= sizes[d] * bStrides[d]
            index[d] = 0
            d -= 1
            index[d] += 1
            a += aStrides[d]
            b += bStrides[d]
        }
    }
}

/// The simplified loop nest of one broadcasting binary operation (see the file comment).
package struct BroadcastPlan {
    package let outShape: [Int]
    package let count: Int
    /// Outer dimensions (all but the last simplified one): extents and each operand's strides.
    package let sizes: [Int], aStrides: [Int], bStrides: [Int]
    /// The innermost simplified dimension: its extent and each operand's stride along it (0 or 1).
    package let inner: Int, aInner: Int, bInner: Int

    /// nil when the shapes do not broadcast.
    package init?(_ aShape: [Int], _ bShape: [Int]) {
        guard let out = broadcastShape(aShape, bShape) else { return nil }
        outShape = out
        count = out.reduce(1, *)
        let sa = broadcastStrides(aShape, in: out), sb = broadcastStrides(bShape, in: out)
        var dims: [(size: Int, a: Int, b: Int)] = []
        for i in 0..<out.count where out[i] != 1 {
            if let last = dims.last, last.a == sa[i] * out[i], last.b == sb[i] * out[i] {
                dims[dims.count - 1] = (last.size * out[i], sa[i], sb[i])
            } else {
                dims.append((out[i], sa[i], sb[i]))
            }
        }
        // A single element (or nothing): one row of one, read at offset 0 of both operands.
        let last = dims.popLast() ?? (1, 1, 1)
        inner = last.size
        aInner = last.a
        bInner = last.b
        sizes = dims.map(\.size)
        aStrides = dims.map(\.a)
        bStrides = dims.map(\.b)
    }
}

// MARK: - Kernels

package enum ElementwiseKernel {
    /// Elements per extra thread for cheap operations (an add or a multiply); waking a thread costs
    /// about as much as 10–20K such elements.
    package static let grain = 16_384
    /// Elements per extra thread for transcendental functions (exp, erf, tanh: ~10–20 ns each).
    package static let transcendentalGrain = 4_096

    // MARK: same-shape loops

    /// y[i] = f(x[i]); `y` may be `x`.
    @inline(__always)
    static func map<F: UnaryFunction>(_ f: F, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                      _ n: Int, grain: Int = grain) {
        parallelRanges(n, grain: grain) { lo, hi in
            for i in lo..<hi { y[i] = f(x[i]) }
        }
    }

    /// y[i] = f(a[i], b[i]), or y[i] += f(a[i], b[i]) when `accumulate`.
    @inline(__always)
    static func zip<F: BinaryFunction>(_ f: F, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                       _ y: UnsafeMutablePointer<Float>, _ n: Int,
                                       accumulate: Bool = false, grain: Int = grain) {
        parallelRanges(n, grain: grain) { lo, hi in
            if accumulate {
                for i in lo..<hi { y[i] += f(a[i], b[i]) }
            } else {
                for i in lo..<hi { y[i] = f(a[i], b[i]) }
            }
        }
    }

    /// y[i] += alpha · x[i].
    package static func addScaled(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, alpha: Float = 1) {
        parallelRanges(n, grain: grain) { lo, hi in
            if alpha == 1 {
                for i in lo..<hi { y[i] += x[i] }
            } else if alpha == -1 {
                for i in lo..<hi { y[i] -= x[i] }
            } else {
                for i in lo..<hi { y[i] += alpha * x[i] }
            }
        }
    }

    // MARK: broadcasting

    /// One row of a broadcast operation: strides 1 (vector) or 0 (scalar) for each operand.
    @inline(__always)
    static func row<F: BinaryFunction>(_ f: F, _ a: UnsafePointer<Float>, _ ia: Int, _ b: UnsafePointer<Float>,
                                       _ ib: Int, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ accumulate: Bool) {
        if ia != 0 && ib != 0 {
            if accumulate { for i in 0..<n { y[i] += f(a[i], b[i]) } } else { for i in 0..<n { y[i] = f(a[i], b[i]) } }
        } else if ib == 0 {
            let s = b[0]
            if accumulate { for i in 0..<n { y[i] += f(a[i], s) } } else { for i in 0..<n { y[i] = f(a[i], s) } }
        } else {
            let s = a[0]
            if accumulate { for i in 0..<n { y[i] += f(s, b[i]) } } else { for i in 0..<n { y[i] = f(s, b[i]) } }
        }
    }

    /// y = f(a, b) over the broadcast shape of `plan` (y contiguous), or y += f(a, b) when
    /// `accumulate`. `y` may alias an operand that has the full output shape.
    static func broadcast<F: BinaryFunction>(_ f: F, _ plan: BroadcastPlan, _ a: UnsafePointer<Float>,
                                             _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                             accumulate: Bool = false) {
        let rank = plan.sizes.count, rowLength = plan.inner, ia = plan.aInner, ib = plan.bInner
        // One buffer for the outer dims' extents and strides: no array traffic inside the loops.
        let dims = UnsafeMutablePointer<Int>.allocate(capacity: max(1, 3 * rank))
        defer { dims.deallocate() }
        for d in 0..<rank { dims[d] = plan.sizes[d]; dims[rank + d] = plan.aStrides[d]; dims[2 * rank + d] = plan.bStrides[d] }
        let sizes = UnsafePointer(dims), sa = UnsafePointer(dims + rank), sb = UnsafePointer(dims + 2 * rank)
        parallelRanges(plan.count, grain: grain) { lo, hi in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, rank)) { scratch in
                guard let index = scratch.baseAddress else { return }
                var walker = RowWalker(row: lo / rowLength, rank: rank, sizes: sizes, aStrides: sa, bStrides: sb, index: index)
                var position = lo, column = lo % rowLength
                while position < hi {
                    let n = min(rowLength - column, hi - position)
                    row(f, a + walker.a + column * ia, ia, b + walker.b + column * ib, ib, y + position, n, accumulate)
                    position += n
                    column = 0
                    walker.advance()
                }
            }
        }
    }

    /// `broadcast` for a runtime-chosen operation.
    package static func broadcast(_ op: BinaryOp, _ plan: BroadcastPlan, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                          _ y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        switch op {
        case .add: broadcast(AddFunction(), plan, a, b, y, accumulate: accumulate)
        case .sub: broadcast(SubFunction(), plan, a, b, y, accumulate: accumulate)
        case .mul: broadcast(MulFunction(), plan, a, b, y, accumulate: accumulate)
        case .div: broadcast(DivFunction(), plan, a, b, y, accumulate: accumulate)
        }
    }

    // MARK: reductions

    /// Σ x[0..<n], added in chunks of 4096 whose partial sums are combined in order (in double):
    /// the result does not depend on the thread count.
    package static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let chunk = 4096
        let chunks = (n + chunk - 1) / chunk
        if chunks <= 1 { return Reduce.sum(x, n) }
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks)
        defer { partial.deallocate() }
        parallelRanges(chunks, grain: 4) { lo, hi in
            for c in lo..<hi { partial[c] = Reduce.sum(x + c * chunk, min(chunk, n - c * chunk)) }
        }
        var s = 0.0
        for c in 0..<chunks { s += Double(partial[c]) }
        return Float(s)
    }

    /// dst += alpha · (src summed over the dimensions that `dstShape` broadcasts over), where
    /// `srcShape` is the broadcast of `dstShape` to a larger shape (dstShape may have fewer
    /// dimensions, or extents of 1). dst is contiguous of `dstShape`.
    package static func sumToShape(_ src: UnsafePointer<Float>, _ srcShape: [Int], _ dst: UnsafeMutablePointer<Float>,
                           _ dstShape: [Int], alpha: Float = 1) {
        let count = srcShape.reduce(1, *)
        guard count > 0 else { return }
        let dstCount = dstShape.reduce(1, *)
        if dstCount == count { addScaled(src, dst, count, alpha: alpha); return }
        if dstCount == 1 { dst[0] += alpha * sum(src, count); return }

        // Simplify: drop extents of 1, merge neighbours both kept or both reduced. Afterwards
        // kept and reduced dimensions alternate.
        let ts = broadcastStrides(dstShape, in: srcShape)
        var dims: [(size: Int, src: Int, kept: Bool)] = []
        var srcStride = count
        for i in 0..<srcShape.count {
            srcStride /= srcShape[i]
            if srcShape[i] == 1 { continue }
            let kept = ts[i] != 0
            if let last = dims.last, last.kept == kept {
                dims[dims.count - 1] = (last.size * srcShape[i], srcStride, kept)
            } else {
                dims.append((srcShape[i], srcStride, kept))
            }
        }
        guard let innerDim = dims.popLast() else { return }
        let keptOuter = dims.filter(\.kept), reduced = dims.filter { !$0.kept }
        let nk = keptOuter.count, nr = reduced.count
        let buffer = UnsafeMutablePointer<Int>.allocate(capacity: max(1, 2 * (nk + nr)))
        defer { buffer.deallocate() }
        for (d, dim) in keptOuter.enumerated() { buffer[d] = dim.size; buffer[nk + d] = dim.src }
        for (d, dim) in reduced.enumerated() { buffer[2 * nk + d] = dim.size; buffer[2 * nk + nr + d] = dim.src }
        let kSizes = UnsafePointer(buffer), kStrides = UnsafePointer(buffer + nk)
        let rSizes = UnsafePointer(buffer + 2 * nk), rStrides = UnsafePointer(buffer + 2 * nk + nr)
        let keptCount = keptOuter.reduce(1) { $0 * $1.size }
        let reducedCount = reduced.reduce(1) { $0 * $1.size }
        let length = innerDim.size
        // The reduced rows are cut into chunks of fixed size, so that a few outputs with many rows
        // to sum (a bias gradient over a large batch) still spread over the threads; the chunks'
        // partial sums are then added in chunk order. The chunking depends on the shapes only.
        let chunkWork = 32_768

        if !innerDim.kept {
            // Each output element sums `reducedCount` contiguous runs of `length`
            // (e.g. a bias gradient: [N, C, H·W] → [C]).
            let rowsPerChunk = max(1, chunkWork / length)
            let chunks = (reducedCount + rowsPerChunk - 1) / rowsPerChunk
            let partial: UnsafeMutablePointer<Float>? = chunks > 1 ? .allocate(capacity: keptCount * chunks) : nil
            defer { partial?.deallocate() }
            let unitWork = min(reducedCount, rowsPerChunk) * length
            parallelRanges(keptCount * chunks, grain: max(1, grain / unitWork)) { lo, hi in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, nr)) { scratch in
                    guard let index = scratch.baseAddress else { return }
                    for u in lo..<hi {
                        let t = u / chunks, r0 = (u % chunks) * rowsPerChunk, r1 = min(reducedCount, r0 + rowsPerChunk)
                        let base = src + rowOffset(t, nk, kSizes, kStrides)
                        var rows = RowWalker(row: r0, rank: nr, sizes: rSizes, aStrides: rStrides, bStrides: rStrides, index: index)
                        var s: Float = 0
                        for _ in r0..<r1 {
                            s += Reduce.sum(base + rows.a, length)
                            rows.advance()
                        }
                        if let partial { partial[u] = s } else { dst[t] += alpha * s }
                    }
                }
            }
            if let partial {
                for t in 0..<keptCount {
                    var s: Float = 0
                    for c in 0..<chunks { s += partial[t * chunks + c] }
                    dst[t] += alpha * s
                }
            }
        } else {
            // Each output row of `length` sums `reducedCount` source rows (e.g. [N, C] → [C]);
            // rows are also cut into column blocks so that one long row is shared between threads.
            let block = 512
            let blocks = (length + block - 1) / block
            let rowsPerChunk = max(1, chunkWork / min(length, block))
            let chunks = (reducedCount + rowsPerChunk - 1) / rowsPerChunk
            let outputCount = keptCount * length
            // partial sums laid out [chunk][output element]
            let partial: UnsafeMutablePointer<Float>? = chunks > 1 ? .allocate(capacity: chunks * outputCount) : nil
            defer { partial?.deallocate() }
            let unitWork = min(reducedCount, rowsPerChunk) * min(length, block)
            parallelRanges(keptCount * blocks * chunks, grain: max(1, grain / unitWork)) { lo, hi in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, nr)) { scratch in
                    guard let index = scratch.baseAddress else { return }
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { accumulator in
                        guard let acc = accumulator.baseAddress else { return }
                        for u in lo..<hi {
                            let c = u % chunks, tb = u / chunks
                            let t = tb / blocks, j0 = (tb % blocks) * block, n = min(block, length - j0)
                            let r0 = c * rowsPerChunk, r1 = min(reducedCount, r0 + rowsPerChunk)
                            let base = src + rowOffset(t, nk, kSizes, kStrides) + j0
                            var rows = RowWalker(row: r0, rank: nr, sizes: rSizes, aStrides: rStrides, bStrides: rStrides, index: index)
                            acc.update(repeating: 0, count: n)
                            for _ in r0..<r1 {
                                let s = base + rows.a
                                for j in 0..<n { acc[j] += s[j] }
                                rows.advance()
                            }
                            if let partial {
                                (partial + c * outputCount + t * length + j0).update(from: acc, count: n)
                            } else {
                                let d = dst + t * length + j0
                                for j in 0..<n { d[j] += alpha * acc[j] }
                            }
                        }
                    }
                }
            }
            if let partial {
                parallelRanges(outputCount, grain: max(1, grain / chunks)) { lo, hi in
                    for i in lo..<hi {
                        var s: Float = 0
                        for c in 0..<chunks { s += partial[c * outputCount + i] }
                        dst[i] += alpha * s
                    }
                }
            }
        }
    }
}
