// The raw forward: the network's output on the caller's x_t at the caller's timesteps, in batches,
// with optional classifier-free guidance, converted to the parametrisation asked for. With it a
// caller builds their own samplers, inpainting or guidance, or compares with another
// implementation (diffusers' `unet(x_t, t).sample`) on the same input.

import MedSynthCore

/// The quantity a raw forward returns.
public enum ForwardOutput: String, CaseIterable {
    /// the network's own output: ε or v, as the model was trained
    case model
    /// ε̂ (for a v-model: √(1−ᾱ)·x_t + √ᾱ·v̂)
    case epsilon
    /// v̂ = √ᾱ·ε̂ − √(1−ᾱ)·x̂₀
    case v
    /// x̂₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ, unclipped
    case x0 = "x0"
}

public struct ForwardOptions: Configurable {
    public var output: ForwardOutput = .model
    /// ε_u + s·(ε_c − ε_u), on the network's output before any conversion; 1 is no guidance.
    public var guidanceScale: Float = 1
    public var useEMA = true
    public var batchSize = 32

    public init() {}

    public static let name = "forward"

    public static let options: [Option<ForwardOptions>] = [
        .choice("output", \.output, "'model' (the network's output: eps or v, as the model predicts), 'epsilon', 'v' or 'x0' (the predicted clean image in [-1, 1] space, unclipped)."),
        .float("guidance_scale", \.guidanceScale, "Classifier-free guidance scale s on the network's output (out_u + s (out_c - out_u)); 1 is no guidance."),
        .bool("use_ema", \.useEMA, "Run the EMA weights when the model has them."),
        .int("batch_size", \.batchSize, "Images per network evaluation."),
    ]

    public func validate() throws {
        try require(guidanceScale.isFinite && guidanceScale >= 0 && guidanceScale <= 100, "guidance_scale must be between 0 and 100")
        try require(batchSize >= 1 && batchSize <= 4096, "batch_size must be between 1 and 4096")
    }
}

extension DiffusionModel {
    /// The network's output for `n` images `x` [n, C, H, W] in the model's [−1, 1] space, at
    /// `timesteps` (one for all images, or one per image, each in [0, T)) with `labels` (class
    /// indices; nil: unconditional, the null class of a conditional model) into `out` [n, C, H, W].
    public func forward(_ x: UnsafePointer<Float>, count n: Int, timesteps: [Int], labels: [Int]?, options: ForwardOptions,
                        into out: UnsafeMutablePointer<Float>, progress: Progress = .silent) throws {
        try options.validate()
        try require(n >= 1, "x must hold at least one image")
        try require(timesteps.count == 1 || timesteps.count == n, "t must be one timestep or one per image (\(n)), got \(timesteps.count)")
        for (i, t) in timesteps.enumerated() where t < 0 || t >= config.timesteps {
            throw MedSynthError.invalidArgument("timestep \(t) at index \(i) is outside [0, \(config.timesteps))")
        }
        if let labels {
            try require(isConditional, "this model is unconditional: it takes no labels")
            try require(labels.count == n, "\(labels.count) labels for \(n) images")
            for (i, l) in labels.enumerated() where l < 0 || l >= config.unet.numClasses {
                throw MedSynthError.invalidArgument("label \(l) at index \(i) is outside [0, \(config.unet.numClasses))")
            }
        }
        let guided = isConditional && options.guidanceScale != 1
        try require(!guided || labels != nil, "guidance needs labels: the unconditional output is the one with labels=None")
        let count = valuesPerImage
        try requireFinite(x, n * count, "x")
        try checkSamplingMemory(batchSize: min(options.batchSize, n) * (guided ? 2 : 1))
        let useEMA = options.useEMA && ema != nil
        if useEMA { ema?.swap() }
        defer { if useEMA { ema?.swap() } }
        unet.eval()
        let u = config.unet
        let batches = (n + options.batchSize - 1) / options.batchSize
        try withoutGrad {
            for batch in 0..<batches {
                let lo = batch * options.batchSize, hi = min(n, lo + options.batchSize), b = hi - lo
                let input = try Tensor(uninitialized: [b, u.inChannels, u.imageSize, u.imageSize])
                input.data.update(from: x + lo * count, count: b * count)
                let ts = (lo..<hi).map { timesteps.count == 1 ? timesteps[0] : timesteps[$0] }
                let output = try modelOutput(input, timesteps: ts.map { Float($0) }, labels: labels.map { Array($0[lo..<hi]) },
                                             guided: guided, scale: options.guidanceScale)
                let dst = out + lo * count
                for j in 0..<b {
                    convert(output.data + j * count, sample: input.data + j * count, t: ts[j], to: options.output,
                            into: dst + j * count)
                }
                try progress.report(batch + 1, batches, .object([("phase", .string("forward"))]))
            }
        }
    }

    /// One image's network output at timestep t as `kind`.
    func convert(_ output: UnsafePointer<Float>, sample: UnsafePointer<Float>, t: Int, to kind: ForwardOutput,
                 into out: UnsafeMutablePointer<Float>) {
        let count = valuesPerImage, prediction = config.prediction
        if kind == .model { out.update(from: output, count: count); return }
        let a = Float(schedule.alphaBar(t).squareRoot()), s = Float((1 - schedule.alphaBar(t)).squareRoot())
        for i in 0..<count {
            let (x0, eps) = schedule.decompose(prediction, output: output[i], sample: sample[i], t: t)
            switch kind {
            case .model: break
            case .epsilon: out[i] = eps
            case .x0: out[i] = x0
            case .v: out[i] = a * eps - s * x0
            }
        }
    }
}
