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
    CAPI.call(err, errLen) {
        let handle = try DiffusionHandle.from(model)
        try require(n >= 1 && n <= 10_000_000, "n must be between 1 and 10000000, got \(n)")
        let out = try CAPI.pointer(out, "out")
        let options = try SamplingOptions(json: try CAPI.json(optionsJSON, "options"))
        try handle.exclusive { model in
            try require(outCount == n * Int64(model.valuesPerImage), "out must hold \(n) images of \(model.valuesPerImage) values")
            handle.lastResult = "{}"
            let requested = labels.map { p in (0..<Int(n)).map { Int(p[$0]) } }
            handle.lastResult = try model.sample(labels: requested, count: Int(n), options: options, into: out,
                                                 progress: RunContext(run).progress).serialized
        }
    }
}

@c @implementation
public func ms_diffusion_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ optionsJSON: UnsafePointer<CChar>?,
                              _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let path = try CAPI.string(path, "path")
        try (try CAPI.json(optionsJSON, "options")).rejectUnknownKeys([], in: "save options")
        try DiffusionHandle.from(model).exclusive { try $0.save(to: path) }
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
