// C ABI of explanations: superpixels and the steps of LIME (see medsynth.h for the contract).

import MedSynth
import MedSynthCore

import CMedSynth

extension CAPI {
    /// Image dimensions for an explanation call.
    static func imageGeometry(_ h: Int64, _ w: Int64, _ c: Int64) throws -> (h: Int, w: Int, c: Int) {
        try require(h >= 1 && w >= 1 && h <= 1 << 15 && w <= 1 << 15, "image sides must be 1 to 32768 pixels, got \(h)x\(w)")
        try require(c >= 1 && c <= 64, "images must have 1 to 64 channels, got \(c)")
        return (Int(h), Int(w), Int(c))
    }

    /// A segmentation passed in: labels [h, w] in 0..<numSegments with every value used.
    static func superpixels(_ segments: UnsafePointer<Int32>?, _ h: Int, _ w: Int, _ numSegments: Int64) throws -> Superpixels {
        let p = try pointer(segments, "segments")
        let result = try Superpixels(labels: Array(UnsafeBufferPointer(start: p, count: h * w)), height: h, width: w)
        try require(Int64(result.count) == numSegments, "num_segments is \(numSegments) but the labels use \(result.count) values")
        return result
    }

    static func samplesCount(_ numSamples: Int64, _ numFeatures: Int64) throws -> Int {
        try require(numSamples >= 1 && numSamples <= 10_000_000, "num_samples must be between 1 and 10000000, got \(numSamples)")
        try require(numFeatures >= 1 && numFeatures <= Int64(LimeLimits.maxFeatures),
                    "LIME needs 1 to \(LimeLimits.maxFeatures) superpixels, got \(numFeatures)")
        try require(numSamples * numFeatures <= Int64(LimeLimits.maxSampleValues),
                    "num_samples x superpixels (\(numSamples) x \(numFeatures)) is more than \(LimeLimits.maxSampleValues)")
        return Int(numSamples * numFeatures)
    }
}

@c @implementation
public func ms_superpixels(_ image: UnsafePointer<Double>?, _ h: Int64, _ w: Int64, _ c: Int64, _ optionsJSON: UnsafePointer<CChar>?,
                           _ labels: UnsafeMutablePointer<Int32>?, _ labelsCount: Int64, _ count: UnsafeMutablePointer<Int64>?,
                           _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let (height, width, channels) = try CAPI.imageGeometry(h, w, c)
        let input = try SegmentationInput(pixels: try CAPI.pointer(image, "image"), height: height, width: width, channels: channels)
        let out = try CAPI.pointer(labels, "labels")
        try require(labelsCount == h * w, "labels must hold \(h)x\(w) values, got \(labelsCount)")
        let result = try SuperpixelMethod.segment(input, options: try CAPI.json(optionsJSON, "options"))
        for i in 0..<result.labels.count { out[i] = result.labels[i] }
        count?.pointee = Int64(result.count)
    }
}

@c @implementation
public func ms_lime_samples(_ numSamples: Int64, _ numFeatures: Int64, _ seed: UInt64, _ run: Int64,
                            _ z: UnsafeMutablePointer<UInt8>?, _ zCount: Int64,
                            _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let total = try CAPI.samplesCount(numSamples, numFeatures)
        let out = try CAPI.pointer(z, "z")
        try require(zCount == Int64(total), "z must hold \(numSamples)x\(numFeatures) values, got \(zCount)")
        try require(run >= 0 && run <= 1 << 30, "run must be between 0 and 2^30, got \(run)")
        let samples = try LimeSampling.sampleMatrix(samples: Int(numSamples), features: Int(numFeatures), seed: seed, run: Int(run))
        for i in 0..<total { out[i] = samples[i] }
    }
}

@c @implementation
public func ms_lime_hidden_image(_ image: UnsafePointer<Float>?, _ h: Int64, _ w: Int64, _ c: Int64, _ channelsLast: Int32,
                                 _ segments: UnsafePointer<Int32>?, _ numSegments: Int64, _ hideValues: UnsafePointer<Float>?,
                                 _ hideCount: Int64, _ integerLevels: Int32, _ hidden: UnsafeMutablePointer<Float>?,
                                 _ hiddenCount: Int64, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let (height, width, channels) = try CAPI.imageGeometry(h, w, c)
        let picture = try LimeImage(pixels: try CAPI.pointer(image, "image"), height: height, width: width, channels: channels,
                                    channelsLast: channelsLast != 0)
        let superpixels = try CAPI.superpixels(segments, height, width, numSegments)
        let out = try CAPI.pointer(hidden, "hidden")
        try require(hiddenCount == Int64(picture.valueCount), "hidden must hold \(picture.valueCount) values, got \(hiddenCount)")
        let fill: LimeFill
        if let values = hideValues {
            try require(hideCount >= 1 && hideCount <= 64, "hide_color needs 1 or \(channels) values, got \(hideCount)")
            fill = .value(Array(UnsafeBufferPointer(start: values, count: Int(hideCount))))
        } else {
            fill = .segmentMean(integerLevels: Int(integerLevels))
        }
        let result = try LimeSampling.hiddenImage(picture, superpixels, fill: fill)
        for i in 0..<result.count { out[i] = result[i] }
    }
}

@c @implementation
public func ms_lime_perturb(_ image: UnsafePointer<Float>?, _ hidden: UnsafePointer<Float>?, _ h: Int64, _ w: Int64, _ c: Int64,
                            _ channelsLast: Int32, _ segments: UnsafePointer<Int32>?, _ numSegments: Int64,
                            _ z: UnsafePointer<UInt8>?, _ numSamples: Int64, _ first: Int64, _ count: Int64,
                            _ out: UnsafeMutablePointer<Float>?, _ outCount: Int64,
                            _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let (height, width, channels) = try CAPI.imageGeometry(h, w, c)
        let picture = try LimeImage(pixels: try CAPI.pointer(image, "image"), height: height, width: width, channels: channels,
                                    channelsLast: channelsLast != 0)
        let hiddenPixels = try CAPI.pointer(hidden, "hidden")
        try requireFinite(hiddenPixels, picture.valueCount, "the hidden image")
        let superpixels = try CAPI.superpixels(segments, height, width, numSegments)
        _ = try CAPI.samplesCount(numSamples, numSegments)
        let rows = try CAPI.pointer(z, "z")
        try require(first >= 0 && first < numSamples && count >= 1 && count <= numSamples - first,
                    "rows from \(first) (\(count) of them) are outside the \(numSamples) samples")
        let (values, overflow) = Int64(picture.valueCount).multipliedReportingOverflow(by: count)
        try require(!overflow && outCount == values, "out must hold \(count) images of \(picture.valueCount) values, got \(outCount)")
        for i in 0..<Int(numSamples * numSegments) where rows[i] > 1 { throw MedSynthError.invalidArgument("z must hold only 0 and 1") }
        LimeSampling.perturb(picture, hidden: hiddenPixels, superpixels, z: rows, features: superpixels.count, first: Int(first),
                             count: Int(count), into: try CAPI.pointer(out, "out"))
    }
}

@c @implementation
public func ms_lime_classify(_ model: OpaquePointer?, _ image: UnsafePointer<Float>?, _ hidden: UnsafePointer<Float>?,
                             _ c: Int64, _ h: Int64, _ w: Int64, _ segments: UnsafePointer<Int32>?, _ numSegments: Int64,
                             _ z: UnsafePointer<UInt8>?, _ numSamples: Int64, _ batchSize: Int64,
                             _ probs: UnsafeMutablePointer<Float>?, _ probsCount: Int64, _ run: UnsafePointer<ms_run>?,
                             _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let handle = try ClassifierHandle.from(model)
        let (height, width, channels) = try CAPI.imageGeometry(h, w, c)
        let picture = try LimeImage(pixels: try CAPI.pointer(image, "image"), height: height, width: width, channels: channels,
                                    channelsLast: false)
        let hiddenPixels = try CAPI.pointer(hidden, "hidden")
        try requireFinite(hiddenPixels, picture.valueCount, "the hidden image")
        let superpixels = try CAPI.superpixels(segments, height, width, numSegments)
        let total = try CAPI.samplesCount(numSamples, numSegments)
        let rows = try CAPI.pointer(z, "z")
        for i in 0..<total where rows[i] > 1 { throw MedSynthError.invalidArgument("z must hold only 0 and 1") }
        let out = try CAPI.pointer(probs, "probs")
        try handle.exclusive { classifier in
            try require(probsCount == numSamples * Int64(classifier.config.numClasses),
                        "probs must hold \(numSamples)x\(classifier.config.numClasses) values, got \(probsCount)")
            try classifier.limePredictions(picture, hidden: Array(UnsafeBufferPointer(start: hiddenPixels, count: picture.valueCount)),
                                           superpixels: superpixels, z: rows, samples: Int(numSamples), batchSize: Int(batchSize),
                                           into: out, progress: RunContext(run).progress)
        }
    }
}

@c @implementation
public func ms_lime_fit(_ z: UnsafePointer<UInt8>?, _ numSamples: Int64, _ numFeatures: Int64, _ predictions: UnsafePointer<Double>?,
                        _ numClasses: Int64, _ labels: UnsafePointer<Int64>?, _ numLabels: Int64, _ optionsJSON: UnsafePointer<CChar>?,
                        _ features: UnsafeMutablePointer<Int32>?, _ weights: UnsafeMutablePointer<Double>?, _ outCount: Int64,
                        _ intercept: UnsafeMutablePointer<Double>?, _ score: UnsafeMutablePointer<Double>?,
                        _ localPred: UnsafeMutablePointer<Double>?, _ sampleWeights: UnsafeMutablePointer<Double>?,
                        _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        _ = try CAPI.samplesCount(numSamples, numFeatures)
        try require(numClasses >= 1 && numClasses <= 1 << 20, "num_classes must be between 1 and 1048576, got \(numClasses)")
        try require(numLabels >= 1 && numLabels <= numClasses, "explain between 1 and num_classes labels, got \(numLabels)")
        try require(outCount == numLabels * numFeatures, "features and weights must hold \(numLabels)x\(numFeatures) values, got \(outCount)")
        let labelList = UnsafeBufferPointer(start: try CAPI.pointer(labels, "labels"), count: Int(numLabels)).map { Int($0) }
        let options = try LimeSurrogateOptions(json: try CAPI.json(optionsJSON, "options"))
        let rows = try CAPI.pointer(z, "z")
        let explained = try LimeSurrogate.explain(z: rows, samples: Int(numSamples), features: Int(numFeatures),
                                                  predictions: try CAPI.pointer(predictions, "predictions"), classes: Int(numClasses),
                                                  labels: labelList, options: options)
        let (outFeatures, outWeights) = (try CAPI.pointer(features, "features"), try CAPI.pointer(weights, "weights"))
        let (outIntercept, outScore, outLocal) = (try CAPI.pointer(intercept, "intercept"), try CAPI.pointer(score, "score"),
                                                  try CAPI.pointer(localPred, "local_pred"))
        let s = Int(numFeatures)
        for (l, e) in explained.enumerated() {
            for j in 0..<s {
                outFeatures[l * s + j] = j < e.features.count ? Int32(e.features[j]) : -1
                outWeights[l * s + j] = j < e.weights.count ? e.weights[j] : 0
            }
            outIntercept[l] = e.intercept
            outScore[l] = e.score
            outLocal[l] = e.localPrediction
        }
        if let sampleWeights {
            let w = LimeSampling.kernelWeights(rows, samples: Int(numSamples), features: s, kernelWidth: options.kernelWidth)
            for i in w.indices { sampleWeights[i] = w[i] }
        }
    }
}
