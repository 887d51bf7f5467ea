// Data movement: strided row copies (concatenation, slicing), permutations of dimensions (with a
// cache-blocked transpose), and the row gather/scatter of embeddings.
//
// Every kernel can either overwrite its destination or add into it (`accumulate`), so the same
// code runs forward (copy) and backward (gradient accumulation). Work is split so that threads
// write disjoint parts of the destination: results never depend on the thread count.

package enum CopyKernel {
    package static let grain = 32_768

    // MARK: - strided rows

    /// Moves `rows` rows of `length` floats between a packed buffer (row r at r·length) and
    /// rows of a strided buffer at offset  (r / group)·outerStride + (r % group)·groupStride.
    /// `gather`: packed ← strided; otherwise strided ← packed. `accumulate` adds instead of
    /// copying. Rows never overlap in the strided buffer (callers ensure it), so threads can
    /// split the work by ranges of the packed buffer, long rows included.
    package static func stridedRows(packed: UnsafeMutablePointer<Float>, strided: UnsafeMutablePointer<Float>,
                            rows: Int, length: Int, group: Int, outerStride: Int, groupStride: Int,
                            gather: Bool, accumulate: Bool) {
        guard rows > 0, length > 0 else { return }
        parallelRanges(rows * length, grain: grain) { lo, hi in
            var position = lo, r = lo / length, column = lo % length
            while position < hi {
                let n = min(length - column, hi - position)
                let s = strided + (r / group) * outerStride + (r % group) * groupStride + column
                let p = packed + position
                switch (gather, accumulate) {
                case (true, false): p.update(from: s, count: n)
                case (true, true): for i in 0..<n { p[i] += s[i] }
                case (false, false): s.update(from: p, count: n)
                case (false, true): for i in 0..<n { s[i] += p[i] }
                }
                position += n
                r += 1
                column = 0
            }
        }
    }

    // MARK: - permutation

    /// dst (contiguous, shape[perm[i]] along its dim i) = src (contiguous, `shape`) with its
    /// dimensions reordered: dst[i₀, …] = src at index j with j[perm[k]] = i_k. Adds instead when
    /// `accumulate`. `perm` must be a permutation of 0..<shape.count.
    package static func permute(_ src: UnsafePointer<Float>, shape: [Int], perm: [Int], _ dst: UnsafeMutablePointer<Float>,
                        accumulate: Bool) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var srcStrides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { srcStrides[d] = srcStrides[d + 1] * shape[d + 1] }
        // Output dims (extent, source stride), without extents of 1, neighbours merged when the
        // source traverses them contiguously too.
        var dims: [(size: Int, src: Int)] = []
        for d in perm where shape[d] != 1 {
            if let last = dims.last, last.src == srcStrides[d] * shape[d] {
                dims[dims.count - 1] = (last.size * shape[d], srcStrides[d])
            } else {
                dims.append((shape[d], srcStrides[d]))
            }
        }
        guard let innerDim = dims.last else {
            if accumulate { dst[0] += src[0] } else { dst[0] = src[0] }
            return
        }
        let rank = dims.count
        var dstStrides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { dstStrides[d] = dstStrides[d + 1] * dims[d + 1].size }

        if innerDim.src == 1 {
            // Rows that are contiguous in both: copy row by row.
            let outer = Array(dims.dropLast())
            let buffer = UnsafeMutablePointer<Int>.allocate(capacity: max(1, 2 * outer.count))
            defer { buffer.deallocate() }
            for (d, dim) in outer.enumerated() { buffer[d] = dim.size; buffer[outer.count + d] = dim.src }
            let n = outer.count, sizes = UnsafePointer(buffer), strides = UnsafePointer(buffer + n)
            let length = innerDim.size
            parallelRanges(count, grain: grain) { lo, hi in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, n)) { scratch in
                    guard let index = scratch.baseAddress else { return }
                    var rows = RowWalker(row: lo / length, rank: n, sizes: sizes, aStrides: strides, bStrides: strides, index: index)
                    var position = lo, column = lo % length
                    while position < hi {
                        let m = min(length - column, hi - position)
                        let s = src + rows.a + column
                        let d = dst + position
                        if accumulate { for i in 0..<m { d[i] += s[i] } } else { d.update(from: s, count: m) }
                        position += m
                        column = 0
                        rows.advance()
                    }
                }
            }
            return
        }

        // A transpose: the destination's inner dim J has source stride > 1, and the source's inner
        // dim (stride 1) is some destination dim K. Copy 32×32 tiles of the (K, J) plane for each
        // index of the remaining dims, so both sides stay in cache.
        guard let k = dims.firstIndex(where: { $0.src == 1 }) else { return }   // unreachable: src's inner dim is some dst dim
        let j = rank - 1
        let others = (0..<rank).filter { $0 != k && $0 != j }
        let no = others.count
        let buffer = UnsafeMutablePointer<Int>.allocate(capacity: max(1, 3 * no))
        defer { buffer.deallocate() }
        for (i, d) in others.enumerated() { buffer[i] = dims[d].size; buffer[no + i] = dims[d].src; buffer[2 * no + i] = dstStrides[d] }
        let oSizes = UnsafePointer(buffer), oSrc = UnsafePointer(buffer + no), oDst = UnsafePointer(buffer + 2 * no)
        let sizeK = dims[k].size, sizeJ = dims[j].size
        let dstStrideK = dstStrides[k], srcStrideJ = dims[j].src
        let tile = 32
        let tilesK = (sizeK + tile - 1) / tile, tilesJ = (sizeJ + tile - 1) / tile
        let planes = count / (sizeK * sizeJ)
        parallelRanges(planes * tilesK * tilesJ, grain: max(1, grain / (tile * tile))) { lo, hi in
            for u in lo..<hi {
                let plane = u / (tilesK * tilesJ), t = u % (tilesK * tilesJ)
                let k0 = (t / tilesJ) * tile, j0 = (t % tilesJ) * tile
                let k1 = min(sizeK, k0 + tile), j1 = min(sizeJ, j0 + tile)
                let s = src + rowOffset(plane, no, oSizes, oSrc)
                let d = dst + rowOffset(plane, no, oSizes, oDst)
                for kk in k0..<k1 {
                    let dRow = d + kk * dstStrideK, sCol = s + kk
                    if accumulate {
                        for jj in j0..<j1 { dRow[jj] += sCol[jj * srcStrideJ] }
                    } else {
                        for jj in j0..<j1 { dRow[jj] = sCol[jj * srcStrideJ] }
                    }
                }
            }
        }
    }

    // MARK: - embedding rows

    /// y[r] = weight[indices[r]] for rows of `dim` floats.
    package static func gatherRows(_ weight: UnsafePointer<Float>, dim: Int, indices: UnsafePointer<Int>, count: Int,
                           _ y: UnsafeMutablePointer<Float>) {
        parallelRanges(count, grain: max(1, grain / max(1, dim))) { lo, hi in
            for r in lo..<hi { (y + r * dim).update(from: weight + indices[r] * dim, count: dim) }
        }
    }

    /// dWeight[indices[r]] += dy[r] for every r (skipping `skip`, torch's padding_idx). Threads
    /// split the embedding dimension, and each adds the rows in order: deterministic even when
    /// an index repeats.
    package static func scatterAddRows(_ dy: UnsafePointer<Float>, dim: Int, indices: UnsafePointer<Int>, count: Int,
                               skip: Int?, _ dWeight: UnsafeMutablePointer<Float>) {
        let skipIndex = skip ?? -1
        parallelRanges(dim, grain: max(1, grain / max(1, count))) { lo, hi in
            for r in 0..<count where indices[r] != skipIndex {
                let d = dWeight + indices[r] * dim, s = dy + r * dim
                for c in lo..<hi { d[c] += s[c] }
            }
        }
    }
}
