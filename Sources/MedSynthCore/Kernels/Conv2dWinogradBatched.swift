// Winograd F(4×4, 3×3) across the images of a batch, for the small maps that the per-image path
// (Conv2dWinograd.swift) leaves to the column kernels: ResNet's 8×8 and 4×4 stages at 64 px,
// GoogLeNet's and DenseNet's 7×7 maps at 224 px. Same algebra (Lavin & Gray 2016): per 4×4 output
// tile Y = Aᵀ [ Σ_ci U[co, ci] ⊙ (Bᵀ d B) ] A with U = G g Gᵀ, 36 multiply-adds per tile and
// channel pair. Directly, an 8×8 map with padding 1 costs (3·8−2)² = 484 live taps per channel
// pair, its four tiles 144; a 4×4 map 100 against one tile's 36.
//
// Lanes are images: a vector holds 16 images at one tile position. The input is transposed once
// to [Cin][Hp][Wp][lanes] (zero padding built in, the batch rounded up to 16 lanes), so each of a
// tile's 36 input values is one contiguous load, and the batch runs in three phases:
//   1. V[ξ][ci][slot] = (Bᵀ d B)[ξ]        slot = tile · lanes + image; threads over input channels
//   2. M[ξ][co][slot] = U[ξ] · V[ξ]        36 products on the forward micro-kernel (FwdTile);
//                                          threads over (ξ, block of 8 output channels)
//   3. y = Aᵀ M A + bias                   threads over output channels; lanes go to their images
// Large batches run in passes of whole vectors of images, so V and M stay within about 16 MB.
// Forward only: the gradients of these geometries run on the column kernels.

package enum BatchedWinograd {
    /// Whether this path runs the convolution: 3×3, stride 1, padding 1, one group, at least 16
    /// channels each way, a map the per-image Winograd path does not take, and no more
    /// multiply-adds than the live taps once tiles past the edge and empty lanes are counted (its
    /// products run near the micro-kernel's peak, the column kernels' on small maps at about half).
    package static func applies(_ g: ConvGeometry) -> Bool {
        guard g.kernelH == 3, g.kernelW == 3, g.strideH == 1, g.strideW == 1, g.dilationH == 1, g.dilationW == 1,
              g.groups == 1, g.padH == 1, g.padW == 1, g.inChannels >= 16, g.outChannels >= 16,
              g.height >= 2, g.width >= 2, g.height <= 32, g.width <= 32, !Winograd.applies(g) else { return false }
        let plan = BatchedWinogradPlan(g)
        let lanes = (g.batch + 15) / 16 * 16
        let liveTaps = (3 * g.height - 2) * (3 * g.width - 2)
        return 36 * plan.tiles * lanes <= liveTaps * g.batch
    }

    /// y = conv3×3(x, W) + bias, for a geometry `applies` accepts.
    /// `passFloats` bounds the scratch of a pass (V, M and the transposed input), in floats.
    package static func forward(_ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                                cacheWeights: Bool = false, passFloats: Int = 4_000_000) throws {
        let plan = BatchedWinogradPlan(g)
        let (cin, cout) = (g.inChannels, g.outChannels)
        let packed = try Winograd.forwardWeights(g, weight, cached: cacheWeights)
        // images per pass: whole vectors of 16
        let perImage = 36 * plan.tiles * (cin + cout) + cin * plan.paddedPlane
        let vectorsPerPass = max(1, min((g.batch + 15) / 16, passFloats / (16 * perImage)))
        let lanes = 16 * vectorsPerPass
        let slots = plan.tiles * lanes
        let scratch = try Storage(count: cin * plan.paddedPlane * lanes + 36 * (cin + cout) * slots)
        let xt = scratch.pointer, v = xt + cin * plan.paddedPlane * lanes, m = v + 36 * cin * slots
        var n0 = 0
        while n0 < g.batch {
            let count = min(lanes, g.batch - n0)
            let lanes = (count + 15) / 16 * 16, slots = plan.tiles * lanes
            let inImage = cin * g.height * g.width, outImage = cout * g.outPlane
            plan.transpose(x + n0 * inImage, images: count, lanes: lanes, into: xt)
            inputTransform(plan, xt, lanes: lanes, into: v)
            product(plan, packed.pointer, v, slots: slots, into: m)
            outputTransform(plan, m, lanes: lanes, bias: bias, images: count, into: y + n0 * outImage)
            n0 += count
        }
        withExtendedLifetime(packed) {}
        withExtendedLifetime(scratch) {}
    }

    /// Phase 1: V[ξ][ci][t·lanes + n] = (Bᵀ d B)[ξ] of tile t of image n.
    static func inputTransform(_ plan: BatchedWinogradPlan, _ xt: UnsafePointer<Float>, lanes: Int,
                               into v: UnsafeMutablePointer<Float>) {
        let cin = plan.g.inChannels, slots = plan.tiles * lanes
        let row = plan.paddedWidth * lanes      // floats between padded rows
        ThreadPool.shared.forRanges(cin) { lo, hi in
            for ci in lo..<hi {
                let plane = xt + ci * plan.paddedPlane * lanes
                for t in 0..<plan.tiles {
                    let origin = plane + (4 * (t / plan.tilesX) * plan.paddedWidth + 4 * (t % plan.tilesX)) * lanes
                    for lane in stride(from: 0, to: lanes, by: 16) {
                        let src = origin + lane
                        var e = zeroVectors36()   // [row i][b]
                        for i in 0..<6 {
                            var d = zeroVectors6()
                            for j in 0..<6 { d[j] = loadVector(src + i * row + j * lanes) }
                            Winograd.bt(&d)
                            for b in 0..<6 { e[i * 6 + b] = d[b] }
                        }
                        let out = v + ci * slots + t * lanes + lane
                        for b in 0..<6 {
                            var d = zeroVectors6()
                            for i in 0..<6 { d[i] = e[i * 6 + b] }
                            Winograd.bt(&d)
                            for a in 0..<6 { storeVector(out + (a * 6 + b) * cin * slots, d[a]) }
                        }
                    }
                }
            }
        }
    }

    /// Phase 2: M[ξ] = U[ξ] · V[ξ], with U packed by `Winograd.packWeights`.
    static func product(_ plan: BatchedWinogradPlan, _ packed: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                        slots: Int, into m: UnsafeMutablePointer<Float>) {
        let (cin, cout) = (plan.g.inChannels, plan.g.outChannels)
        let blocks = (cout + 7) / 8, vectors = slots / 16
        let taps = (0..<cin).map { $0 * slots }, bases = (0..<12).map { $0 * 16 }
        taps.withUnsafeBufferPointer { taps in
        bases.withUnsafeBufferPointer { bases in
            // items ξ-major, so a thread's consecutive items reuse V[ξ] from its cache
            ThreadPool.shared.forRanges(36 * blocks) { lo, hi in
                for item in lo..<hi {
                    let xi = item / blocks, r0 = (item % blocks) * 8, r1 = min(cout, r0 + 8)
                    let panel = v + xi * cin * slots
                    var b0 = r0
                    while b0 < r1 {
                        let mr = DirectConv.blockHeight(r1 - b0)
                        let out = m + (xi * cout + b0) * slots
                        var args = FwdTileArgs(weights: packed + (xi * cout + b0) * cin, input: panel,
                                               taps: taps.baseAddress!, k: cin, inBase: bases.baseAddress!,
                                               outBase: bases.baseAddress!, output: out, outStride: slots,
                                               initial: TileConstants.zeros, initialStride: 0,
                                               initialBase: TileConstants.zeroOffsets)
                        ColumnConv.sweepPanel(&args, mr: mr, nv: vectors, panel: panel, out: out, accumulate: false,
                                              ld: slots, bases: bases.baseAddress!)
                        b0 += mr
                    }
                }
            }
        }}
    }

    /// Phase 3: Y = Aᵀ M A + bias for every output channel, tile and image of the pass.
    static func outputTransform(_ plan: BatchedWinogradPlan, _ m: UnsafePointer<Float>, lanes: Int,
                                bias: UnsafePointer<Float>?, images: Int, into y: UnsafeMutablePointer<Float>) {
        let g = plan.g, cout = g.outChannels, slots = plan.tiles * lanes
        let (ho, wo) = (g.outHeight, g.outWidth)
        ThreadPool.shared.forRanges(cout) { lo, hi in
            // the tiles of 16 images, [tile][pixel r·4 + c][lane]; each image's plane is then written
            // in one go (lane by lane across tiles would revisit planes a whole image apart)
            let p = UnsafeMutablePointer<Float>.allocate(capacity: 256 * plan.tiles)
            defer { p.deallocate() }
            for co in lo..<hi {
                let biasVector = ConvVector(repeating: bias.map { $0[co] } ?? 0)
                for lane in stride(from: 0, to: min(lanes, images), by: 16) {
                    for t in 0..<plan.tiles {
                        let src = m + co * slots + t * lanes + lane, xiStride = cout * slots
                        var col = zeroVectors24()   // [row r][b]
                        for b in 0..<6 {
                            let (o0, o1, o2, o3) = Winograd.at(
                                loadVector(src + b * xiStride), loadVector(src + (6 + b) * xiStride),
                                loadVector(src + (12 + b) * xiStride), loadVector(src + (18 + b) * xiStride),
                                loadVector(src + (24 + b) * xiStride), loadVector(src + (30 + b) * xiStride))
                            col[b] = o0; col[6 + b] = o1; col[12 + b] = o2; col[18 + b] = o3
                        }
                        let dst = p + t * 256
                        for r in 0..<4 {
                            let (y0, y1, y2, y3) = Winograd.at(col[r * 6], col[r * 6 + 1], col[r * 6 + 2],
                                                               col[r * 6 + 3], col[r * 6 + 4], col[r * 6 + 5])
                            storeVector(dst + (r * 4) * 16, y0 + biasVector)
                            storeVector(dst + (r * 4 + 1) * 16, y1 + biasVector)
                            storeVector(dst + (r * 4 + 2) * 16, y2 + biasVector)
                            storeVector(dst + (r * 4 + 3) * 16, y3 + biasVector)
                        }
                    }
                    for l in 0..<min(16, images - lane) {
                        let out = y + (lane + l) * cout * g.outPlane + co * g.outPlane
                        for oy in 0..<ho {
                            for ox in 0..<wo {
                                let t = (oy / 4) * plan.tilesX + ox / 4
                                out[oy * wo + ox] = p[t * 256 + ((oy % 4) * 4 + ox % 4) * 16 + l]
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a small map is cut into 4×4 output tiles, and the padded, image-innermost copy of the input
/// that the input transform reads: [Cin][paddedHeight][paddedWidth][lanes], input (iy, ix) of
/// image n at row iy + 1, column ix + 1, lane n; zeros elsewhere.
package struct BatchedWinogradPlan {
    package let g: ConvGeometry
    package let tilesY: Int, tilesX: Int, tiles: Int
    package let paddedHeight: Int, paddedWidth: Int, paddedPlane: Int

    package init(_ g: ConvGeometry) {
        self.g = g
        tilesY = (g.outHeight + 3) / 4
        tilesX = (g.outWidth + 3) / 4
        tiles = tilesY * tilesX
        paddedHeight = 4 * tilesY + 2
        paddedWidth = 4 * tilesX + 2
        paddedPlane = paddedHeight * paddedWidth
    }

    /// Writes `images` images [Cin, H, W] into the transposed layout (every float of it, so empty
    /// lanes hold zeros, not stale values), threads over channels. Reads each image's plane in
    /// order: reading one pixel of every image in turn jumps by whole images, often a multiple of
    /// 4 KB, and those reads evict each other from L1.
    func transpose(_ x: UnsafePointer<Float>, images: Int, lanes: Int, into xt: UnsafeMutablePointer<Float>) {
        let (h, w) = (g.height, g.width), inImage = g.inChannels * h * w
        ThreadPool.shared.forRanges(g.inChannels) { lo, hi in
            for c in lo..<hi {
                let plane = xt + c * paddedPlane * lanes
                plane.update(repeating: 0, count: paddedPlane * lanes)
                for n in 0..<images {
                    let src = x + n * inImage + c * h * w
                    for iy in 0..<h {
                        let dst = plane + ((iy + 1) * paddedWidth + 1) * lanes + n
                        for ix in 0..<w { dst[ix * lanes] = src[iy * w + ix] }
                    }
                }
            }
        }
    }
}
