// The model side of LIME for the engine's own classifiers: perturbed images are built batch by
// batch next to the model and classified without leaving the engine (no Python between batches).

import MedSynthCore

extension ImageClassifier {
    /// Class probabilities [samples, numClasses] of the perturbed images of rows [0, samples) of Z.
    /// `image` must be channels-first [c, h, w] in the model's input scale.
    public func limePredictions(_ image: LimeImage, hidden: [Float], superpixels: Superpixels, z: UnsafePointer<UInt8>,
                                samples: Int, batchSize: Int, into probabilities: UnsafeMutablePointer<Float>,
                                progress: Progress = .silent) throws {
        try require(!image.channelsLast, "classifier images are channels-first")
        try require(hidden.count == image.valueCount, "the hidden image must match the image")
        try require(batchSize >= 1 && batchSize <= 65536, "batch_size must be between 1 and 65536, got \(batchSize)")
        try require(superpixels.height == image.height && superpixels.width == image.width,
                    "the segmentation is \(superpixels.height)x\(superpixels.width) but the image is \(image.height)x\(image.width)")
        let batch = min(batchSize, samples)
        let values = image.valueCount
        var scratch = [Float](repeating: 0, count: batch * values)
        let k = config.numClasses
        var first = 0
        try hidden.withUnsafeBufferPointer { hiddenBuffer in
            try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                guard let h = hiddenBuffer.baseAddress, let out = scratchBuffer.baseAddress else { return }
                while first < samples {
                    let count = min(batch, samples - first)
                    LimeSampling.perturb(image, hidden: h, superpixels, z: z, features: superpixels.count, first: first, count: count, into: out)
                    let set = ImageSet(images: out, count: count, channels: image.channels, height: image.height, width: image.width)
                    try predictProbabilities(set, batchSize: count, into: probabilities + first * k)
                    first += count
                    try progress.report(first, samples, .object([("phase", .string("lime"))]))
                }
            }
        }
    }
}
