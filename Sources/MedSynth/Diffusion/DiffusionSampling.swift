// Sampling: batched reverse diffusion with DDPM, DDIM or DPM-Solver++(2M), classifier-free
// guidance, EMA weights by default, per-image seeded noise.

import MedSynthCore

import Glibc

extension DiffusionModel {
    /// Generates `count` images: one per label for a class-conditional model (`labels` holds
    /// `count` class indices), `count` unconditional images otherwise (`labels` must be nil).
    public func sample(labels: [Int]?, count: Int, options: SamplingOptions, into out: UnsafeMutablePointer<Float>,
                       progress: Progress = .silent) throws -> JSON {
        if isConditional {
            guard let labels else { throw MedSynthError.invalidArgument("a class-conditional model needs one label per image") }
            try require(labels.count == count, "\(labels.count) labels for \(count) images")
            return try sample(labels: labels, options: options, into: out, progress: progress)
        }
        try require(labels == nil, "this model is unconditional: it takes no labels")
        return try sample(labels: [Int](repeating: 0, count: count), options: options, into: out, progress: progress)
    }

    /// Generates one image per entry of `labels` (class indices; ignored for an unconditional
    /// model) into `out` [n, C, H, W], in the training data's intensity range. Returns JSON with
    /// any warnings ({"warnings": [...]}).
    @discardableResult
    public func sample(labels: [Int], options: SamplingOptions, into out: UnsafeMutablePointer<Float>,
                       progress: Progress = .silent) throws -> JSON {
        try options.validate()
        let n = labels.count
        try require(n >= 1, "ask for at least one image")
        if isConditional {
            for (i, l) in labels.enumerated() where l < 0 || l >= config.unet.numClasses {
                throw MedSynthError.invalidArgument("label \(l) at index \(i) is outside [0, \(config.unet.numClasses))")
            }
        }
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
        let timestepCount = try withoutGrad {
            try runSampler(labels: labels, options: options, into: out, progress: progress) { x, t, batchLabels in
                try modelOutput(x, t: t, labels: batchLabels, guided: guided, scale: options.guidanceScale)
            }
        }
        return .object([("warnings", .array(warnings)), ("timesteps", .number(Double(timestepCount))),
                        ("used_ema", .bool(useEMA))])
    }

    /// The reverse process for every requested image, batch by batch, with `denoiser(x, t, labels)`
    /// giving the network's (guided) output. Writes images in the data's range; returns the number
    /// of model evaluations per batch.
    package func runSampler(labels: [Int], options: SamplingOptions, into out: UnsafeMutablePointer<Float>, progress: Progress,
                    denoiser: (Tensor, Int, [Int]) throws -> Tensor) throws -> Int {
        let n = labels.count
        let timesteps = DiffusionSampling.timesteps(count: options.steps, of: config.timesteps, spacing: options.spacing,
                                                    sampler: options.sampler)
        let count = valuesPerImage
        let batches = (n + options.batchSize - 1) / options.batchSize
        let totalUnits = batches * timesteps.count
        let (low, high) = config.dataRange ?? (0, 1)
        for batch in 0..<batches {
            let lo = batch * options.batchSize, hi = min(n, lo + options.batchSize), b = hi - lo
            let generators = (lo..<hi).map { RandomGenerator(seed: options.seed, stream: .sample, index: $0) }
            let x = try Tensor(uninitialized: [b, config.unet.inChannels, config.unet.imageSize, config.unet.imageSize])
            for (j, g) in generators.enumerated() { g.fillNormal(x.data + j * count, count) }
            let batchLabels = Array(labels[lo..<hi])
            let noise = try Tensor(uninitialized: x.shape)
            let x0 = try Tensor(uninitialized: x.shape), previousX0 = try Tensor(uninitialized: x.shape)
            var previousT: Int? = nil

            for (k, t) in timesteps.enumerated() {
                let output = try denoiser(x, t, batchLabels)
                let next = k + 1 < timesteps.count ? timesteps[k + 1] : -1
                switch options.sampler {
                case .ddpm:
                    if t > 0 { for (j, g) in generators.enumerated() { g.fillNormal(noise.data + j * count, count) } }
                    DiffusionSampling.ddpmStep(schedule, config.prediction, output: output.data, sample: x.data, t: t,
                                               noise: noise.data, count: b * count, clip: options.clip)
                case .ddim:
                    if options.eta > 0 { for (j, g) in generators.enumerated() { g.fillNormal(noise.data + j * count, count) } }
                    DiffusionSampling.ddimStep(schedule, config.prediction, output: output.data, sample: x.data, t: t,
                                               next: next, eta: options.eta, noise: options.eta > 0 ? noise.data : nil,
                                               count: b * count, clip: options.clip)
                case .dpmSolver:
                    DiffusionSampling.dpmSolverStep(schedule, config.prediction, output: output.data, sample: x.data, t: t,
                                                    next: next, previousX0: previousT == nil ? nil : UnsafePointer(previousX0.data),
                                                    previousT: previousT, x0: x0.data, count: b * count, clip: options.clip)
                    previousX0.data.update(from: x0.data, count: b * count)
                    previousT = t
                }
                try progress.report(batch * timesteps.count + k + 1, totalUnits, .object([
                    ("phase", .string("sample")), ("batch", .number(Double(batch + 1))), ("batches", .number(Double(batches))),
                    ("t", .number(Double(t))),
                ]))
            }
            // [−1, 1] → the data's range
            let dst = out + lo * count
            let half = (high - low) / 2
            for i in 0..<(b * count) { dst[i] = (min(1, max(-1, x.data[i])) + 1) * half + low }
        }
        return timesteps.count
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

    /// The network's output at timestep t, with classifier-free guidance ε_u + s·(ε_c − ε_u) when
    /// `guided` (the conditional and unconditional halves run as one batch).
    package func modelOutput(_ x: Tensor, t: Int, labels: [Int], guided: Bool, scale: Float) throws -> Tensor {
        let b = x.shape[0]
        guard isConditional else {
            return try unet.forward(x, timesteps: [Float](repeating: Float(t), count: b), labels: nil)
        }
        guard guided else {
            return try unet.forward(x, timesteps: [Float](repeating: Float(t), count: b), labels: labels)
        }
        let doubled = try concat([x, x], dim: 0)
        let output = try unet.forward(doubled, timesteps: [Float](repeating: Float(t), count: 2 * b),
                                      labels: labels + [Int](repeating: nullClass, count: b))
        let guidedOut = try Tensor(uninitialized: x.shape)
        let half = x.count
        let (c, u, g) = (output.data, output.data + half, guidedOut.data)
        for i in 0..<half { g[i] = u[i] + scale * (c[i] - u[i]) }
        return guidedOut
    }
}
