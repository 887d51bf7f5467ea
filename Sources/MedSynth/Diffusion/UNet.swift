// The DDPM U-Net (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", appendix B), in the
// layout of ../shared/bench/torch_ref.py, with the same module names so that state dicts match key
// for key: sinusoidal time embedding → MLP; residual blocks with GroupNorm, SiLU and the time (+
// class) embedding added after the first convolution; self-attention at chosen resolutions and in
// the middle; strided-convolution down path, nearest-upsample + convolution up path, skip
// connections concatenated on the way up.

import MedSynthCore

import Glibc

/// GroupNorm → SiLU → conv3×3 → + Linear(SiLU(emb)) → GroupNorm → SiLU → dropout → conv3×3, plus
/// the input (through a 1×1 convolution when the channel count changes).
package final class UNetResBlock: Module, RandomLayer {
    package let n1: GroupNorm, c1: Conv2d, t: Linear, n2: GroupNorm, c2: Conv2d, skip: Conv2d?
    package let dropout: Float
    package var generator = RandomGenerator(seed: 0)

    package init(_ cin: Int, _ cout: Int, embedding: Int, groups: Int, dropout: Float, rng: RandomGenerator) throws {
        n1 = try GroupNorm(groups: groups, channels: cin)
        c1 = try Conv2d(cin, cout, kernelSize: 3, padding: 1, rng: rng)
        t = try Linear(embedding, cout, rng: rng)
        n2 = try GroupNorm(groups: groups, channels: cout)
        c2 = try Conv2d(cout, cout, kernelSize: 3, padding: 1, rng: rng)
        skip = try cin != cout ? Conv2d(cin, cout, kernelSize: 1, rng: rng) : nil
        self.dropout = dropout
        super.init()
        registerChild("n1", n1)
        registerChild("c1", c1)
        registerChild("t", t)
        registerChild("n2", n2)
        registerChild("c2", c2)
        if let skip { registerChild("skip", skip) }
    }

    /// `activatedEmbedding` is SiLU(emb) [B, E], shared by all blocks of one forward pass.
    package func forward(_ x: Tensor, _ activatedEmbedding: Tensor) throws -> Tensor {
        var h = try c1(try n1.withSiLU(x))
        let e = try t(activatedEmbedding)
        h = try h + (try reshape(e, [e.shape[0], e.shape[1], 1, 1]))
        h = try n2.withSiLU(h)
        if dropout > 0 { h = try MedSynthCore.dropout(h, p: Double(dropout), training: isTraining, generator: generator) }
        h = try c2(h)
        return try h + (try skip.map { try $0(x) } ?? x)
    }
}

/// GroupNorm → 1×1 conv to q, k, v → self-attention over the pixels → 1×1 conv, plus the input.
package final class UNetAttentionBlock: Module {
    package let n: GroupNorm, qkv: Conv2d, o: Conv2d
    package let heads: Int

    package init(_ channels: Int, heads: Int, groups: Int, rng: RandomGenerator) throws {
        n = try GroupNorm(groups: groups, channels: channels)
        qkv = try Conv2d(channels, 3 * channels, kernelSize: 1, rng: rng)
        o = try Conv2d(channels, channels, kernelSize: 1, rng: rng)
        self.heads = heads
        super.init()
        registerChild("n", n)
        registerChild("qkv", qkv)
        registerChild("o", o)
    }

    package func forward(_ x: Tensor) throws -> Tensor {
        try x + (try o(try spatialSelfAttention(qkv: try qkv(try n(x)), heads: heads)))
    }
}

/// One entry of the down or up path: a residual block (with optional attention), or a resampler.
package final class UNetStage: Module {
    package enum Kind { case block, downsample, upsample }
    package let kind: Kind
    package let res: UNetResBlock?
    package let attention: UNetAttentionBlock?
    package let conv: Conv2d?

    package init(res: UNetResBlock, attention: UNetAttentionBlock?) {
        kind = .block
        self.res = res
        self.attention = attention
        conv = nil
        super.init()
        registerChild("0", res)
        if let attention { registerChild("1", attention) }
    }

    /// A stride-2 3×3 convolution (torch_ref: down.i.0).
    package init(downsample channels: Int, rng: RandomGenerator) throws {
        kind = .downsample
        res = nil
        attention = nil
        let c = try Conv2d(channels, channels, kernelSize: 3, stride: 2, padding: 1, rng: rng)
        conv = c
        super.init()
        registerChild("0", c)
    }

    /// Nearest ×2 then a 3×3 convolution (torch_ref: up.i.1; index 0 is the parameter-free Upsample).
    package init(upsample channels: Int, rng: RandomGenerator) throws {
        kind = .upsample
        res = nil
        attention = nil
        let c = try Conv2d(channels, channels, kernelSize: 3, padding: 1, rng: rng)
        conv = c
        super.init()
        registerChild("1", c)
    }

    package func forward(_ x: Tensor, _ embedding: Tensor) throws -> Tensor {
        switch kind {
        case .block:
            guard let res else { return x }
            let h = try res.forward(x, embedding)
            return try attention?.forward(h) ?? h
        case .downsample:
            return try conv.map { try $0(x) } ?? x
        case .upsample:
            return try conv.map { try $0(try upsampleNearest2d(x, scale: (2, 2))) } ?? x
        }
    }
}

public final class UNet: Module {
    public let config: UNetConfig
    package let timeLinear1: Linear, timeLinear2: Linear
    package let classEmbedding: Embedding?
    package let inputConv: Conv2d
    package let down: [UNetStage], mid: (UNetResBlock, UNetAttentionBlock, UNetResBlock), up: [UNetStage]
    package let outNorm: GroupNorm, outConv: Conv2d

    public init(_ config: UNetConfig, rng: RandomGenerator) throws {
        try config.validate()
        self.config = config
        let ch = config.baseChannels, td = config.timeEmbeddingChannels, groups = config.normGroups
        timeLinear1 = try Linear(ch, td, rng: rng)
        timeLinear2 = try Linear(td, td, rng: rng)
        classEmbedding = try config.numClasses > 0 ? Embedding(config.numClasses + 1, td, rng: rng) : nil
        inputConv = try Conv2d(config.inChannels, ch, kernelSize: 3, padding: 1, rng: rng)

        func block(_ cin: Int, _ cout: Int, side: Int) throws -> UNetStage {
            let res = try UNetResBlock(cin, cout, embedding: td, groups: groups, dropout: config.dropout, rng: rng)
            let attention = try config.attentionResolutions.contains(side)
                ? UNetAttentionBlock(cout, heads: config.attentionHeads, groups: groups, rng: rng) : nil
            return UNetStage(res: res, attention: attention)
        }
        var downStages: [UNetStage] = []
        var skipChannels = [ch]
        var c = ch, side = config.imageSize
        for (level, m) in config.channelMultipliers.enumerated() {
            for _ in 0..<config.resBlocks {
                downStages.append(try block(c, ch * m, side: side))
                c = ch * m
                skipChannels.append(c)
            }
            if level < config.channelMultipliers.count - 1 {
                downStages.append(try UNetStage(downsample: c, rng: rng))
                skipChannels.append(c)
                side /= 2
            }
        }
        down = downStages
        mid = (try UNetResBlock(c, c, embedding: td, groups: groups, dropout: config.dropout, rng: rng),
               try UNetAttentionBlock(c, heads: config.attentionHeads, groups: groups, rng: rng),
               try UNetResBlock(c, c, embedding: td, groups: groups, dropout: config.dropout, rng: rng))
        var upStages: [UNetStage] = []
        for (level, m) in config.channelMultipliers.enumerated().reversed() {
            for _ in 0...config.resBlocks {
                let skip = skipChannels.removeLast()
                upStages.append(try block(c + skip, ch * m, side: side))
                c = ch * m
            }
            if level > 0 {
                upStages.append(try UNetStage(upsample: c, rng: rng))
                side *= 2
            }
        }
        up = upStages
        outNorm = try GroupNorm(groups: groups, channels: c)
        outConv = try Conv2d(c, config.outChannels, kernelSize: 3, padding: 1, rng: rng)
        super.init()

        // torch_ref's names: temb = Sequential(Linear, SiLU, Linear), cemb, inc, down, mid, up, out
        let temb = Module()
        temb.registerChild("0", timeLinear1)
        temb.registerChild("2", timeLinear2)
        registerChild("temb", temb)
        if let classEmbedding { registerChild("cemb", classEmbedding) }
        registerChild("inc", inputConv)
        let downList = Module(), midList = Module(), upList = Module(), outList = Module()
        for (i, s) in down.enumerated() { downList.registerChild(String(i), s) }
        midList.registerChild("0", mid.0)
        midList.registerChild("1", mid.1)
        midList.registerChild("2", mid.2)
        for (i, s) in up.enumerated() { upList.registerChild(String(i), s) }
        outList.registerChild("0", outNorm)
        outList.registerChild("2", outConv)
        registerChild("down", downList)
        registerChild("mid", midList)
        registerChild("up", upList)
        registerChild("out", outList)
    }

    /// Sinusoidal embedding of timesteps [B] → [B, dim]: [sin(t·f_i), cos(t·f_i)],
    /// f_i = exp(−ln(10000)·i/half) (Vaswani et al. 2017; torch_ref's tembed).
    package static func timestepEmbedding(_ timesteps: [Float], dim: Int) throws -> Tensor {
        let half = dim / 2
        let out = try Tensor(zeros: [timesteps.count, dim])
        for (b, t) in timesteps.enumerated() {
            let row = out.data + b * dim
            for i in 0..<half {
                // the frequency is rounded to float32 first, as torch computes it
                let f = Float(exp(-log(10000.0) * Double(i) / Double(half)))
                let a = t * f
                row[i] = sin(a)
                row[half + i] = cos(a)
            }
        }
        return out
    }

    /// ε (or v) prediction for noisy images x [B, C, H, W] at timesteps [B] with class labels [B]
    /// (the null class `numClasses` for unconditional; ignored when the model has no classes).
    public func forward(_ x: Tensor, timesteps: [Float], labels: [Int]?) throws -> Tensor {
        try require(x.rank == 4 && x.shape[1] == config.inChannels && x.shape[2] == config.imageSize && x.shape[3] == config.imageSize,
                    "the U-Net takes [B, \(config.inChannels), \(config.imageSize), \(config.imageSize)] images, got \(x.shape)")
        try require(timesteps.count == x.shape[0], "one timestep per image is needed")
        var embedding = try timeLinear2(silu(try timeLinear1(UNet.timestepEmbedding(timesteps, dim: config.baseChannels))))
        if let classEmbedding {
            guard let labels, labels.count == x.shape[0] else {
                throw MedSynthError.invalidArgument("this U-Net is class-conditional: one label per image is needed")
            }
            embedding = try embedding + (try classEmbedding(labels))
        }
        let activated = try silu(embedding)
        var h = try inputConv(x)
        var skips = [h]
        for stage in down {
            h = try stage.forward(h, activated)
            skips.append(h)
        }
        h = try mid.2.forward(try mid.1.forward(try mid.0.forward(h, activated)), activated)
        for stage in up {
            if stage.kind == .block, let skip = skips.popLast() {
                h = try concat([h, skip], dim: 1)
            }
            h = try stage.forward(h, activated)
        }
        return try outConv(try outNorm.withSiLU(h))
    }
}
