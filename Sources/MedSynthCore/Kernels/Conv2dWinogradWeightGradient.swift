// Winograd F(4×4, 3×3) weight gradient (see Conv2dWinograd.swift for the forward pass). With
// Y = Aᵀ [Σ_ci U ⊙ V] A per tile, U = G g Gᵀ and V = Bᵀ d B:
//   ∂L/∂M = A ∂L/∂Y Aᵀ  (per tile and output channel)     ∂L/∂U[ξ] = Σ_tiles ∂L/∂M[ξ] · V[ξ]
//   ∂L/∂g = Gᵀ (∂L/∂U) G
// The sum over tiles is, per position ξ, the matrix product dU[ξ] [Cout × Cin] += dMᵀ[ξ]ᵀ · Vᵀ[ξ]
// over the tiles of a block, on the forward tile (FwdTile) with vectors along input channels: both
// transforms are written transposed ([ξ][tile][channel]) through 16×16 register transposes. Each
// thread sums its images into its own dU; the threads' dU are added in thread order and turned
// into dW once (in Double), so results are bit-identical run to run for a given thread count.

extension Winograd {
    /// dWeight += ∂L/∂W for a geometry `applies` accepts.
    package static func weightGradient(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                       dWeight: UnsafeMutablePointer<Float>) throws {
        let plan = WinogradPlan(g)
        let (cin, cout) = (g.inChannels, g.outChannels)
        let ldi = (cin + 15) / 16 * 16, ldo = (cout + 15) / 16 * 16
        // packed dy: rows of whole tiles, pitch of whole chunks, zeros around, and 4 more zero rows
        // that the chunks past an image's end read
        let dyPitch = 16 * plan.chunksX, dyRows = 4 * plan.tilesY + 4, dyPlane = dyRows * dyPitch
        let dyCount = cout * dyPlane
        // Vectors of 16 tiles (four chunks of one image), transformed into Vᵀ and dMᵀ until `capacity`
        // of them are gathered (about 1.2 MB, across images), then multiplied: the products' k runs
        // over all of them, so dU is loaded and stored once per batch of tiles (measured: 8 MB
        // batches, out of L2, are slower; so is a single vector per batch).
        let vectorsPerImage = (plan.chunksPerImage + 3) / 4
        let items = g.batch * vectorsPerImage
        let capacity = max(1, min(64, 300_000 / (36 * 16 * (ldi + ldo))))
        let s = 16 * capacity
        let threads = min(ThreadPool.shared.threadCount, items)
        let stageCount = 36 * 16 * 16, vtCount = 36 * s * ldi, dmtCount = 36 * s * ldo, duCount = 36 * cout * ldi
        let perThread = plan.imageCount + dyCount + stageCount + vtCount + dmtCount + duCount
        let scratch = try Storage(count: perThread * threads)
        let inImage = cin * g.height * g.width, outImage = cout * g.outPlane
        let taps = (0..<s).map { $0 * ldi }, bases = (0..<12).map { $0 * 16 }
        var used = [Bool](repeating: false, count: threads)
        taps.withUnsafeBufferPointer { taps in
        bases.withUnsafeBufferPointer { bases in
        used.withUnsafeMutableBufferPointer { usedFlags in
            ThreadPool.shared.run(count: items, maxParticipants: threads) { participant, lo, hi in
                usedFlags[participant] = true
                let packed = scratch.pointer + participant * perThread
                let dyPacked = packed + plan.imageCount, stage = dyPacked + dyCount
                let vt = stage + stageCount, dmt = vt + vtCount, du = dmt + dmtCount
                plan.clear(packed)
                dyPacked.update(repeating: 0, count: dyCount)
                du.update(repeating: 0, count: duCount)
                var packedImage = -1, gathered = 0
                for item in lo..<hi {
                    let n = item / vectorsPerImage, vector = item % vectorsPerImage
                    if n != packedImage {
                        plan.pack(x + n * inImage, channels: cin, into: packed)
                        for co in 0..<cout {
                            for oy in 0..<g.outHeight {
                                (dyPacked + co * dyPlane + oy * dyPitch).update(from: dy + n * outImage + (co * g.outHeight + oy) * g.outWidth,
                                                                                count: g.outWidth)
                            }
                        }
                        packedImage = n
                    }
                    @inline(__always) func chunk(_ k: Int) -> Int { 4 * vector + k < plan.chunksPerImage ? 4 * vector + k : -1 }
                    let q = (chunk(0), chunk(1), chunk(2), chunk(3))
                    // Vᵀ: 16 input channels at a time through the stage [ξ][channel][16 tiles]
                    let inOffsets = plan.chunkOffsets(q)
                    var c0 = 0
                    while c0 < cin {
                        for c in c0..<(c0 + 16) {
                            if c < cin {
                                inputTile(packed + c * plan.plane, inOffsets, pitch: plan.pitch, into: stage + (c - c0) * 16, stride: 256)
                            } else {
                                for xi in 0..<36 { storeVector(stage + xi * 256 + (c - c0) * 16, ConvVector()) }
                            }
                        }
                        transposeStage(stage, into: vt + gathered * 16 * ldi + c0, ld: ldi, xiStride: s * ldi)
                        c0 += 16
                    }
                    // dMᵀ likewise from dy; chunks past the image's end read the zero rows
                    @inline(__always) func dyOffset(_ c: Int) -> Int {
                        c < 0 ? 4 * plan.tilesY * dyPitch : (c / plan.chunksX) * 4 * dyPitch + (c % plan.chunksX) * 16
                    }
                    let dyOffsets = (dyOffset(q.0), dyOffset(q.1), dyOffset(q.2), dyOffset(q.3))
                    c0 = 0
                    while c0 < cout {
                        for c in c0..<(c0 + 16) {
                            if c < cout {
                                outputGradientTile(dyPacked + c * dyPlane, dyOffsets, pitch: dyPitch, into: stage + (c - c0) * 16, stride: 256)
                            } else {
                                for xi in 0..<36 { storeVector(stage + xi * 256 + (c - c0) * 16, ConvVector()) }
                            }
                        }
                        transposeStage(stage, into: dmt + gathered * 16 * ldo + c0, ld: ldo, xiStride: s * ldo)
                        c0 += 16
                    }
                    gathered += 1
                    guard gathered == capacity || item == hi - 1 else { continue }
                    // dU[ξ] += Σ_tiles dMᵀ[ξ]ᵀ · Vᵀ[ξ]: rows co, vectors along ci, k over the tiles
                    let channelVectors = ldi / 16
                    for xi in 0..<36 {
                        var co0 = 0
                        while co0 < cout {
                            let mr = DirectConv.blockHeight(cout - co0)
                            let duBlock = du + (xi * cout + co0) * ldi
                            let vtXi = UnsafePointer(vt + xi * s * ldi)
                            var args = FwdTileArgs(weights: dmt + xi * s * ldo + co0, input: vtXi, taps: taps.baseAddress!,
                                                   k: gathered * 16, inBase: bases.baseAddress!, outBase: bases.baseAddress!,
                                                   output: duBlock, outStride: ldi, initial: UnsafePointer(duBlock),
                                                   initialStride: ldi, initialBase: bases.baseAddress!, weightStride: ldo)
                            var v = 0
                            while v < channelVectors {
                                let width = DirectConv.tileWidth(mr: mr, remaining: channelVectors - v)
                                let offset = v * 16
                                args.input = vtXi + offset
                                args.output = duBlock + offset
                                args.initial = UnsafePointer(duBlock + offset)
                                DirectConv.forwardTile(mr: mr, nv: width, args)
                                v += width
                            }
                            co0 += mr
                        }
                    }
                    gathered = 0
                }
            }
            // dW[co, ci] += Gᵀ (Σ_threads dU_t[·, co, ci]) G, (co, ci) pairs over the threads
            let partials = (0..<threads).filter { usedFlags[$0] }.map {
                scratch.pointer + $0 * perThread + plan.imageCount + dyCount + stageCount + vtCount + dmtCount
            }
            partials.withUnsafeBufferPointer { partials in
                ThreadPool.shared.forRanges(cout * cin, grain: 256) { lo, hi in
                    for pair in lo..<hi {
                        let co = pair / cin, ci = pair % cin
                        var u = InlineArray<36, Double>(repeating: 0)
                        for xi in 0..<36 {
                            var sum: Float = 0
                            for p in partials { sum += p[(xi * cout + co) * ldi + ci] }
                            u[xi] = Double(sum)
                        }
                        let d = dWeight + pair * 9
                        for i in 0..<3 {
                            for j in 0..<3 {
                                var total = 0.0
                                for a in 0..<6 {
                                    var row = 0.0
                                    for b in 0..<6 { row += u[a * 6 + b] * gMatrix[b][j] }
                                    total += gMatrix[a][i] * row
                                }
                                d[i * 3 + j] += Float(total)
                            }
                        }
                    }
                }
            }
        }}}
        withExtendedLifetime(scratch) {}
    }

    /// stage [ξ][16 channels][16 tiles] → dst[ξ·xiStride + tile·ld + channel], 16×16 blocks
    /// transposed in registers.
    @inline(__always)
    package static func transposeStage(_ stage: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, ld: Int, xiStride: Int) {
        for xi in 0..<36 {
            var block = zeroVectors16()
            for c in 0..<16 { block[c] = loadVector(stage + xi * 256 + c * 16) }
            DirectConv.transpose16(&block)
            for t in 0..<16 { storeVector(dst + xi * xiStride + t * ld, block[t]) }
        }
    }

    /// (m0 … m5) = A (y0 … y3), A = Aᵀᵀ: the transform of output gradients.
    @inline(__always)
    package static func a(_ y0: ConvVector, _ y1: ConvVector, _ y2: ConvVector, _ y3: ConvVector) -> InlineArray<6, ConvVector> {
        let even = y0 + y2, odd = y1 + y3
        let even4 = y0.addingProduct(y2, 4), odd4 = y1.addingProduct(y3, 4) * 2
        var m = zeroVectors6()
        m[0] = y0; m[1] = even + odd; m[2] = even - odd; m[3] = even4 + odd4; m[4] = even4 - odd4; m[5] = y3
        return m
    }

    /// dM[ξ] = (A dY Aᵀ)[ξ] for the 16 tiles of four chunks of a packed dy plane, into out[ξ·stride].
    @inline(__always)
    package static func outputGradientTile(_ src: UnsafePointer<Float>, _ offsets: (Int, Int, Int, Int), pitch: Int,
                                           into out: UnsafeMutablePointer<Float>, stride: Int) {
        var e = zeroVectors24()   // [row r][b]
        for r in 0..<4 {
            let row = src + r * pitch
            let (y0, y1, y2, y3) = deinterleave4(loadVector(row + offsets.0), loadVector(row + offsets.1),
                                                 loadVector(row + offsets.2), loadVector(row + offsets.3))
            let m = a(y0, y1, y2, y3)
            for b in 0..<6 { e[r * 6 + b] = m[b] }
        }
        for b in 0..<6 {
            let m = a(e[b], e[6 + b], e[12 + b], e[18 + b])
            for i in 0..<6 { storeVector(out + (i * 6 + b) * stride, m[i]) }
        }
    }
}
