// Sampling: batched reverse diffusion with DDPM, DDIM or DPM-Solver++(2M), classifier-free
// guidance, EMA weights by default, per-image seeded noise or noise the caller supplies (the
// initial x_T, as diffusers' `latents=`, and the noise of every stochastic step).

import MedSynthCore

import Glibc

/// Noise the caller supplies instead of the seeded draws: `initial` holds x_T of every image
/// [n, C, H, W]; `steps` the z of every step [steps, n, C, H, W] (read only by steps that add noise).
public struct SuppliedNoise {
    public var initial: UnsafePointer<Float>?
    public var steps: UnsafePointer<Float>?
    public init(initial: UnsafePointer<Float>? = nil, steps: UnsafePointer<Float>? = nil) {
        self.initial = initial
        self.steps = steps
    }
}

extension DiffusionModel {
    /// Generates `count` images: one per label for a class-conditional model (`labels` holds
    /// `count` class indices), `count` unconditional images otherwise (`labels` must be nil).
    public func sample(labels: [Int]?, count: Int, options: SamplingOptions, noise: SuppliedNoise = SuppliedNoise(),
                       into out: UnsafeMutablePointer<Float>, progress: Progress = .silent) throws -> JSON {
        if isConditional {
            guard let labels else { throw MedSynthError.invalidArgument("a class-conditional model needs one label per image") }
            try require(labels.count == count, "\(labels.count) labels for \(count) images")
            return try sample(labels: labels, options: options, noise: noise, into: out, progress: progress)
        }
        try require(labels == nil, "this model is unconditional: it takes no labels")
        return try sample(labels: [Int](repeating: 0, count: count), options: options, noise: noise, into: out, progress: progress)
    }

    /// Generates one image per entry of `labels` (class indices; ignored for an unconditional
    /// model) into `out` [n, C, H, W], in the training data's intensity range. Returns JSON with
    /// any warnings ({"warnings": [...]}), the timesteps and whether the EMA weights were used.
    @discardableResult
    public func sample(labels: [Int], options: SamplingOptions, noise: SuppliedNoise = SuppliedNoise(),
                       into out: UnsafeMutablePointer<Float>, progress: Progress = .silent) throws -> JSON {
        try options.validate()
        let n = labels.count
        try require(n >= 1, "ask for at least one image")
        if isConditional {
            for (i, l) in labels.enumerated() where l < 0 || l >= config.unet.numClasses {
                throw MedSynthError.invalidArgument("label \(l) at index \(i) is outside [0, \(config.unet.numClasses))")
            }
        }
        let plan = try DiffusionSampling.plan(options, schedule: schedule)
        if let initial = noise.initial { try requireFinite(initial, n * valuesPerImage, "the initial noise") }
        if let steps = noise.steps { try requireFinite(steps, plan.timesteps.count * n * valuesPerImage, "the step noise") }
        var warnings: [JSON] = []
        if trainedSteps == 0 {
            warnings.append(.string("this model has not been trained: its samples are noise"))
        }
        let useEMA = options.useEMA && ema != nil
        if let ema, useEMA, Float(ema.updates) < 1 / (1 - ema.decay) {
            warnings.append(.string("the EMA weights have seen \(ema.updates) updates, fewer than their averaging horizon "
                + "1/(1 - decay) = \(Int(1 / (1 - ema.decay))); samples may still show the initial weights. "
                + "Train longer, lower ema_decay, or sample with use_ema=False"))
        }
        let guided = isConditional && options.guidanceScale != 1
        try checkSamplingMemory(batchSize: min(options.batchSize, n) * (guided ? 2 : 1))
        if useEMA { ema?.swap() }
        defer { if useEMA { ema?.swap() } }
        unet.eval()
        try withoutGrad {
            try runSampler(labels: labels, options: options, plan: plan, noise: noise, into: out, progress: progress) { x, t, batchLabels in
                try modelOutput(x, timesteps: [Float](repeating: Float(t), count: x.shape[0]), labels: batchLabels,
                                guided: guided, scale: options.guidanceScale)
            }
        }
        return .object([("warnings", .array(warnings)), ("timesteps", .array(plan.timesteps.map { .number(Double($0)) })),
                        ("used_ema", .bool(useEMA))])
    }

    /// The reverse process for every requested image, batch by batch, with `denoiser(x, t, labels)`
    /// giving the network's (guided) output. Writes images in the data's range.
    package func runSampler(labels: [Int], options: SamplingOptions, plan: SamplingPlan, noise supplied: SuppliedNoise = SuppliedNoise(),
                            into out: UnsafeMutablePointer<Float>, progress: Progress,
                            denoiser: (Tensor, Int, [Int]) throws -> Tensor) throws {
        let n = labels.count, timesteps = plan.timesteps
        let count = valuesPerImage
        let batches = (n + options.batchSize - 1) / options.batchSize
        let totalUnits = batches * timesteps.count
        let (low, high) = config.dataRange ?? (0, 1)
        for batch in 0..<batches {
            let lo = batch * options.batchSize, hi = min(n, lo + options.batchSize), b = hi - lo
            let generators = (lo..<hi).map { RandomGenerator(seed: options.seed, stream: .sample, index: $0) }
            let x = try Tensor(uninitialized: [b, config.unet.inChannels, config.unet.imageSize, config.unet.imageSize])
            // the seeded draw of x_T happens even when x_T is supplied, so that the step noise of a
            // stochastic sampler stays the seed's
            for (j, g) in generators.enumerated() { g.fillNormal(x.data + j * count, count) }
            if let initial = supplied.initial { x.data.update(from: initial + lo * count, count: b * count) }
            let batchLabels = Array(labels[lo..<hi])
            let noise = try Tensor(uninitialized: x.shape)
            /// z for step k: the caller's, or each image's generator
            func drawNoise(_ k: Int) {
                if let steps = supplied.steps {
                    noise.data.update(from: steps + (k * n + lo) * count, count: b * count)
                } else {
                    for (j, g) in generators.enumerated() { g.fillNormal(noise.data + j * count, count) }
                }
            }
            let x0 = try Tensor(uninitialized: x.shape), previousX0 = try Tensor(uninitialized: x.shape)
            var previousAlphaBar: Double? = nil

            for (k, t) in timesteps.enumerated() {
                let output = try denoiser(x, t, batchLabels)
                let from = plan.alphaBars[k], to = plan.targetAlphaBars[k]
                switch options.sampler {
                case .ddpm:
                    if to < 1 { drawNoise(k) }
                    DiffusionSampling.ddpmStep(config.prediction, output: output.data, sample: x.data, from: from, to: to,
                                               noise: noise.data, count: b * count, clip: options.clip)
                case .ddim:
                    if options.eta > 0 { drawNoise(k) }
                    DiffusionSampling.ddimStep(config.prediction, output: output.data, sample: x.data, from: from, to: to,
                                               eta: options.eta, noise: options.eta > 0 ? noise.data : nil,
                                               count: b * count, clip: options.clip)
                case .dpmSolver, .dpmSolverSDE:
                    let stochastic = options.sampler == .dpmSolverSDE
                    if stochastic { drawNoise(k) }
                    DiffusionSampling.dpmSolverStep(config.prediction, output: output.data, sample: x.data, from: from, to: to,
                                                    previousX0: previousAlphaBar == nil ? nil : UnsafePointer(previousX0.data),
                                                    previousAlphaBar: previousAlphaBar, x0: x0.data, count: b * count,
                                                    clip: options.clip, noise: stochastic ? UnsafePointer(noise.data) : nil)
                    previousX0.data.update(from: x0.data, count: b * count)
                    previousAlphaBar = from
                }
                try progress.report(batch * timesteps.count + k + 1, totalUnits, .object([
                    ("phase", .string("sample")), ("batch", .number(Double(batch + 1))), ("batches", .number(Double(batches))),
                    ("t", .number(Double(t))),
                ]))
            }
            // [−1, 1] → the data's range, then (clamp_output) clamped to it
            let dst = out + lo * count
            let half = (high - low) / 2
            for i in 0..<(b * count) { dst[i] = (x.data[i] + 1) * half + low }
            if options.clampOutput {
                for i in 0..<(b * count) { dst[i] = min(high, max(low, dst[i])) }
            }
        }
    }

    /// Measures (once) what one image costs in a model evaluation and checks a batch fits.
    package func checkSamplingMemory(batchSize: Int) throws {
        let u = config.unet
        if samplingBytesPerImage == nil {
            unet.eval()
            samplingBytesPerImage = try MemoryBudget.peakBytes {
                let x = try Tensor(zeros: [1, u.inChannels, u.imageSize, u.imageSize])
                _ = try withoutGrad { try unet.forward(x, timesteps: [0], labels: isConditional ? [0] : nil) }
            }
        }
        try MemoryBudget.check(bytes: (samplingBytesPerImage ?? 0) * batchSize * 5 / 4 + 4 * valuesPerImage * batchSize * 4,
                               what: "sampling \(u.imageSize)x\(u.imageSize) images in batches of \(batchSize)")
    }

    /// The network's output at per-image timesteps, with classifier-free guidance
    /// ε_u + s·(ε_c − ε_u) when `guided` (the conditional and unconditional halves run as one
    /// batch). `labels` nil on a conditional model asks for the unconditional (null-class) output.
    package func modelOutput(_ x: Tensor, timesteps: [Float], labels: [Int]?, guided: Bool, scale: Float) throws -> Tensor {
        let b = x.shape[0]
        guard isConditional else {
            return try unet.forward(x, timesteps: timesteps, labels: nil)
        }
        let labels = labels ?? [Int](repeating: nullClass, count: b)
        guard guided else {
            return try unet.forward(x, timesteps: timesteps, labels: labels)
        }
        let doubled = try concat([x, x], dim: 0)
        let output = try unet.forward(doubled, timesteps: timesteps + timesteps,
                                      labels: labels + [Int](repeating: nullClass, count: b))
        let guidedOut = try Tensor(uninitialized: x.shape)
        let half = x.count
        let (c, u, g) = (output.data, output.data + half, guidedOut.data)
        for i in 0..<half { g[i] = u[i] + scale * (c[i] - u[i]) }
        return guidedOut
    }
}
