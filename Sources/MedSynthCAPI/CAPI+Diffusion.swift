// C ABI of diffusion models: a thin layer that validates arguments and calls DiffusionModel.

import MedSynth
import MedSynthCore

import CMedSynth

typealias DiffusionHandle = Handle<DiffusionModel>

@c @implementation
public func ms_diffusion_create(_ configJSON: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                                _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let out = try CAPI.pointer(out, "out")
        let config = try DiffusionConfig(json: try CAPI.json(configJSON, "config"))
        out.pointee = DiffusionHandle(try DiffusionModel(config: config)).opaque
    }
}

@c @implementation
public func ms_diffusion_free(_ model: OpaquePointer?) { DiffusionHandle.release(model) }

@c @implementation
public func ms_diffusion_config(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int,
                                _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.text({ try DiffusionHandle.from(model).exclusive { $0.configJSON.serialized } }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_diffusion_result(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int,
                                _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.text({ try DiffusionHandle.from(model).lastResult }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_diffusion_fit(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64,
    _ labels: UnsafePointer<Int64>?, _ optionsJSON: UnsafePointer<CChar>?, _ run: UnsafePointer<ms_run>?,
    _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try DiffusionHandle.from(model)
        let data = try CAPI.imageSet(x, n, c, h, w, labels: labels, what: "x")
        let options = try DiffusionTrainingOptions(json: try CAPI.json(optionsJSON, "options"))
        try handle.exclusive { model in
            handle.lastResult = "{}"
            handle.lastResult = try model.fit(data, options: options, progress: RunContext(run).progress).serialized
        }
    }
}

@c @implementation
public func ms_diffusion_sample(
    _ model: OpaquePointer?, _ labels: UnsafePointer<Int64>?, _ n: Int64, _ optionsJSON: UnsafePointer<CChar>?,
    _ out: UnsafeMutablePointer<Float>?, _ outCount: Int64, _ run: UnsafePointer<ms_run>?,
    _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    ms_diffusion_sample_from(model, labels, n, optionsJSON, nil, 0, nil, 0, out, outCount, run, err, errLen)
}

@c @implementation
public func ms_diffusion_sample_from(
    _ model: OpaquePointer?, _ labels: UnsafePointer<Int64>?, _ n: Int64, _ optionsJSON: UnsafePointer<CChar>?,
    _ initialNoise: UnsafePointer<Float>?, _ initialCount: Int64, _ stepNoise: UnsafePointer<Float>?, _ stepCount: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ outCount: Int64, _ run: UnsafePointer<ms_run>?,
    _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try DiffusionHandle.from(model)
        try require(n >= 1 && n <= 10_000_000, "n must be between 1 and 10000000, got \(n)")
        let out = try CAPI.pointer(out, "out")
        let options = try SamplingOptions(json: try CAPI.json(optionsJSON, "options"))
        try handle.exclusive { model in
            let perImage = Int64(model.valuesPerImage)
            try require(outCount == n * perImage, "out must hold \(n) images of \(perImage) values")
            if initialNoise != nil {
                try require(initialCount == n * perImage, "the initial noise must hold \(n) images of \(perImage) values, got \(initialCount)")
            }
            if stepNoise != nil {
                let steps = Int64(try DiffusionSampling.plan(options, schedule: model.schedule).timesteps.count)
                try require(stepCount == steps * n * perImage,
                            "the step noise must hold \(steps) steps x \(n) images of \(perImage) values, got \(stepCount)")
            }
            handle.lastResult = "{}"
            let requested = labels.map { p in (0..<Int(n)).map { Int(p[$0]) } }
            handle.lastResult = try model.sample(labels: requested, count: Int(n), options: options,
                                                 noise: SuppliedNoise(initial: initialNoise, steps: stepNoise), into: out,
                                                 progress: RunContext(run).progress).serialized
        }
    }
}

@c @implementation
public func ms_diffusion_timesteps(_ model: OpaquePointer?, _ optionsJSON: UnsafePointer<CChar>?,
                                   _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int, _ needed: UnsafeMutablePointer<Int>?,
                                   _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.text({
        let options = try SamplingOptions(json: try CAPI.json(optionsJSON, "options"))
        let schedule = try DiffusionHandle.from(model).exclusive { $0.schedule }
        let plan = try DiffusionSampling.plan(options, schedule: schedule)
        return JSON.object([("timesteps", .array(plan.timesteps.map { .number(Double($0)) })),
                            ("targets", .array(plan.targets.map { .number(Double($0)) })),
                            ("alpha_bars", .array(plan.alphaBars.map { .number($0) })),
                            ("target_alpha_bars", .array(plan.targetAlphaBars.map { .number($0) })),
                            ("spacing", .string(options.resolvedSpacing.rawValue))]).serialized
    }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_diffusion_forward(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64,
    _ timesteps: UnsafePointer<Int64>?, _ timestepCount: Int64, _ labels: UnsafePointer<Int64>?,
    _ optionsJSON: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?, _ outCount: Int64,
    _ run: UnsafePointer<ms_run>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try DiffusionHandle.from(model)
        let x = try CAPI.pointer(x, "x")
        let count = try CAPI.batchValueCount(n, c, h, w)
        let out = try CAPI.pointer(out, "out")
        try require(outCount == Int64(count), "out must hold \(count) values like x, got \(outCount)")
        let ts = try CAPI.pointer(timesteps, "t")
        try require(timestepCount == 1 || timestepCount == n, "t must be one timestep or one per image (\(n)), got \(timestepCount)")
        let options = try ForwardOptions(json: try CAPI.json(optionsJSON, "options"))
        try handle.exclusive { model in
            let u = model.config.unet
            try require(c == Int64(u.inChannels) && h == Int64(u.imageSize) && w == Int64(u.imageSize),
                        "x has images of \(c)x\(h)x\(w), the model takes \(u.inChannels)x\(u.imageSize)x\(u.imageSize)")
            let steps = (0..<Int(timestepCount)).map { Int(clamping: ts[$0]) }
            let requested = labels.map { p in (0..<Int(n)).map { Int(clamping: p[$0]) } }
            handle.lastResult = "{}"
            try model.forward(x, count: Int(n), timesteps: steps, labels: requested, options: options, into: out,
                              progress: RunContext(run).progress)
        }
    }
}

@c @implementation
public func ms_diffusion_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ optionsJSON: UnsafePointer<CChar>?,
                              _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let path = try CAPI.string(path, "path")
        let options = try DiffusionSaveOptions(json: try CAPI.json(optionsJSON, "options"))
        try DiffusionHandle.from(model).exclusive { try $0.save(to: path, options: options) }
    }
}

@c @implementation
public func ms_diffusion_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                              _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let out = try CAPI.pointer(out, "out")
        out.pointee = DiffusionHandle(try DiffusionModel.load(from: try CAPI.string(path, "path"))).opaque
    }
}
