// C ABI of image classifiers: a thin layer that validates arguments and calls ImageClassifier.

import MedSynth
import MedSynthCore

import CMedSynth

typealias ClassifierHandle = Handle<ImageClassifier>

extension CAPI {
    static func imageSet(_ x: UnsafePointer<Float>?, _ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64,
                         labels: UnsafePointer<Int64>?, what: String) throws -> ImageSet {
        _ = try batchValueCount(n, c, h, w)
        return ImageSet(images: try pointer(x, what), count: Int(n), channels: Int(c), height: Int(h), width: Int(w), labels: labels)
    }
}

@c @implementation
public func ms_classifier_create(_ configJSON: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                                 _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let out = try CAPI.pointer(out, "out")
        let config = try ClassifierConfig(json: try CAPI.json(configJSON, "config"))
        out.pointee = ClassifierHandle(try ImageClassifier(config: config)).opaque
    }
}

@c @implementation
public func ms_classifier_free(_ model: OpaquePointer?) { ClassifierHandle.release(model) }

@c @implementation
public func ms_classifier_config(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int,
                                 _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?,
                                 _ errLen: Int) -> Int32 {
    CAPI.text({ try ClassifierHandle.from(model).exclusive { $0.configJSON.serialized } }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_classifier_result(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ bufLen: Int,
                                 _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?,
                                 _ errLen: Int) -> Int32 {
    CAPI.text({ try ClassifierHandle.from(model).lastResult }, buf, bufLen, needed, err, errLen)
}

@c @implementation
public func ms_classifier_fit(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64,
    _ labels: UnsafePointer<Int64>?, _ xVal: UnsafePointer<Float>?, _ nVal: Int64, _ labelsVal: UnsafePointer<Int64>?,
    _ optionsJSON: UnsafePointer<CChar>?, _ run: UnsafePointer<ms_run>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try ClassifierHandle.from(model)
        let train = try CAPI.imageSet(x, n, c, h, w, labels: try CAPI.pointer(labels, "labels"), what: "x")
        var validation: ImageSet? = nil
        if xVal != nil || nVal > 0 {
            validation = try CAPI.imageSet(xVal, nVal, c, h, w, labels: try CAPI.pointer(labelsVal, "validation labels"), what: "validation x")
        }
        let options = try ClassifierTrainingOptions(json: try CAPI.json(optionsJSON, "options"))
        try handle.exclusive { classifier in
            handle.lastResult = "{}"
            let history = try classifier.fit(train, validation: validation, options: options, progress: RunContext(run).progress)
            handle.lastResult = history.serialized
        }
    }
}

@c @implementation
public func ms_classifier_predict_proba(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64,
    _ batchSize: Int64, _ probs: UnsafeMutablePointer<Float>?, _ probsCount: Int64, _ run: UnsafePointer<ms_run>?,
    _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try ClassifierHandle.from(model)
        let set = try CAPI.imageSet(x, n, c, h, w, labels: nil, what: "x")
        let out = try CAPI.pointer(probs, "probs")
        try require(batchSize >= 1 && batchSize <= 65536, "batch_size must be between 1 and 65536")
        try handle.exclusive { classifier in
            try require(probsCount == n * Int64(classifier.config.numClasses),
                        "probs must hold \(n)x\(classifier.config.numClasses) values, got \(probsCount)")
            try classifier.predictProbabilities(set, batchSize: Int(batchSize), into: out, progress: RunContext(run).progress)
        }
    }
}

@c @implementation
public func ms_classifier_feature_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?,
                                      _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let out = try CAPI.pointer(out, "out")
        out.pointee = Int64(try ClassifierHandle.from(model).exclusive { try $0.featureSize() })
    }
}

@c @implementation
public func ms_classifier_features(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64,
    _ batchSize: Int64, _ features: UnsafeMutablePointer<Float>?, _ featuresCount: Int64, _ run: UnsafePointer<ms_run>?,
    _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int
) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try ClassifierHandle.from(model)
        let set = try CAPI.imageSet(x, n, c, h, w, labels: nil, what: "x")
        let out = try CAPI.pointer(features, "features")
        try require(batchSize >= 1 && batchSize <= 65536, "batch_size must be between 1 and 65536")
        try handle.exclusive { classifier in
            let d = Int64(try classifier.featureSize())
            try require(featuresCount == n * d, "features must hold \(n)x\(d) values, got \(featuresCount)")
            try classifier.features(set, batchSize: Int(batchSize), into: out, progress: RunContext(run).progress)
        }
    }
}

@c @implementation
public func ms_classifier_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ optionsJSON: UnsafePointer<CChar>?,
                               _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let path = try CAPI.string(path, "path")
        try (try CAPI.json(optionsJSON, "options")).rejectUnknownKeys([], in: "save options")
        try ClassifierHandle.from(model).exclusive { try $0.save(to: path) }
    }
}

@c @implementation
public func ms_classifier_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                               _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let out = try CAPI.pointer(out, "out")
        out.pointee = ClassifierHandle(try ImageClassifier.load(from: try CAPI.string(path, "path"))).opaque
    }
}

@c @implementation
public func ms_classifier_load_weights(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ bytes: UnsafePointer<UInt8>?,
                                       _ len: Int, _ optionsJSON: UnsafePointer<CChar>?,
                                       _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try ClassifierHandle.from(model)
        let options = try CAPI.json(optionsJSON, "options")
        try options.rejectUnknownKeys(["mode"], in: "weight loading options")
        let modeName = try options.string("mode") ?? WeightLoadMode.strict.rawValue
        guard let mode = WeightLoadMode(rawValue: modeName) else {
            throw MedSynthError.invalidArgument("mode must be 'strict', 'non_strict' or 'pretrained', got '\(modeName)'")
        }
        try require((path == nil) != (bytes == nil), "pass either a path or bytes, not both and not neither")
        let file: SafetensorsFile, source: String
        if let path {
            source = try CAPI.string(path, "path")
            file = try SafetensorsFile.read(source)
        } else {
            try require(len >= 8, "a safetensors image needs at least 8 bytes, got \(len)")
            source = "state dict"
            do {
                file = try SafetensorsFile.parse(Array(UnsafeBufferPointer(start: try CAPI.pointer(bytes, "bytes"), count: len)))
            } catch MedSynthError.invalidArgument(let m) {
                throw MedSynthError.invalidArgument("the state dict is not a valid safetensors image: \(m)")
            }
        }
        try handle.exclusive { classifier in
            handle.lastResult = "{}"
            let report = try classifier.loadWeights(file, source: source, mode: mode)
            handle.lastResult = report.json.serialized
        }
    }
}

@c @implementation
public func ms_classifier_state_dict(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<UInt8>?, _ bufLen: Int,
                                     _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?,
                                     _ errLen: Int) -> Int32 {
    CAPI.bytes(buf, bufLen, needed, err, errLen) { sized in
        try ClassifierHandle.from(model).exclusive { classifier in
            let layout = classifier.model.stateLayout()
            // the state dict's order (the file's data is sorted by dtype and name), for Python's dict;
            // no integrity hash: the image goes straight to the caller, never to a disk
            let metadata = [("format", "pt"), ("order", JSON.array(layout.map { .string($0.name) }).serialized)]
            let buffer = try sized(try SafetensorsFile.serializedCount(metadata: metadata, layout: layout, integrity: false))
            try SafetensorsFile(metadata: metadata, entries: classifier.model.stateEntries()).serialize(into: buffer, integrity: false)
        }
    }
}
