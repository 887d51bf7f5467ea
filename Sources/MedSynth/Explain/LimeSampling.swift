// LIME's neighbourhood of an image (Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD
// 2016), as lime's LimeImageExplainer builds it (lime_image.py, data_labels):
//  * a binary matrix Z [n, S]: row 0 all ones (the image itself), every other entry Bernoulli(½)
//    (one superpixel kept or hidden), here from the engine's Philox generator, so a seed gives the
//    same samples on every machine (lime's draws from NumPy's global MT19937 and is reproducible
//    only on a fresh explainer, lime issues #67, #392, #477);
//  * a hidden image: each superpixel filled with its own mean colour (lime's `hide_color=None`)
//    or every pixel set to one value per channel;
//  * perturbed image i: pixel p from the image if Z[i, segment(p)] = 1, else from the hidden image;
//  * sample weights from the cosine distance of each row to row 0 in the binary space, with k of S
//    superpixels kept: d = 1 − k/(√k·√S) = 1 − √(k/S) (d = 1 for k = 0), w = √exp(−d²/width²),
//    lime's default kernel with width 0.25.

import MedSynthCore

import Glibc

/// An image as LIME perturbs it: float32 values in the caller's scale, channels-first [c, h, w]
/// (the classifiers' layout) or channels-last [h, w, c] (the layout lime hands to Python callables).
public struct LimeImage {
    public let pixels: UnsafePointer<Float>
    public let height: Int, width: Int, channels: Int
    public let channelsLast: Bool

    public init(pixels: UnsafePointer<Float>, height: Int, width: Int, channels: Int, channelsLast: Bool) throws {
        try require(height >= 1 && width >= 1 && height <= 1 << 15 && width <= 1 << 15,
                    "images to explain must be 1 to 32768 pixels per side, got \(height)x\(width)")
        try require(channels >= 1 && channels <= 64, "images to explain must have 1 to 64 channels, got \(channels)")
        try requireFinite(pixels, height * width * channels, "the image to explain")
        self.pixels = pixels
        self.height = height
        self.width = width
        self.channels = channels
        self.channelsLast = channelsLast
    }

    public var pixelCount: Int { height * width }
    public var valueCount: Int { height * width * channels }

    /// Offset of (pixel, channel) in the image's layout.
    @inline(__always)
    func offset(_ pixel: Int, _ channel: Int) -> Int { channelsLast ? pixel * channels + channel : channel * pixelCount + pixel }
}

/// What hidden superpixels show.
public enum LimeFill: Equatable {
    /// Each superpixel's own per-channel mean; with integer levels L > 0 (an image that came as
    /// uint8, L = 255) the mean is truncated to a level, as lime's assignment into a uint8 array does.
    case segmentMean(integerLevels: Int)
    /// One value per channel (or one for all), lime's `hide_color`.
    case value([Float])
}

public enum LimeSampling {
    /// Z [samples, features]: row 0 ones, the rest Bernoulli(½) bits, 32 per draw, of the
    /// generator (seed, explanation stream, run): run 0 is an explanation, run 1 an independent
    /// second draw of the same explanation (for its stability).
    public static func sampleMatrix(samples: Int, features: Int, seed: UInt64, run: Int = 0) throws -> [UInt8] {
        try require(samples >= 1 && samples <= 10_000_000, "num_samples must be between 1 and 10000000, got \(samples)")
        try require(features >= 1 && features <= LimeLimits.maxFeatures,
                    "LIME needs 1 to \(LimeLimits.maxFeatures) superpixels, got \(features)")
        let (total, overflow) = samples.multipliedReportingOverflow(by: features)
        try require(!overflow && total <= LimeLimits.maxSampleValues, "num_samples x superpixels (\(samples) x \(features)) is too large")
        var z = [UInt8](repeating: 1, count: total)
        try require(run >= 0, "the run index must be non-negative")
        let rng = RandomGenerator(seed: seed, stream: .explanation, index: run)
        for i in 1..<samples {
            var j = 0
            while j < features {
                let bits = rng.nextUInt32()
                for b in 0..<min(32, features - j) { z[i * features + j + b] = UInt8(truncatingIfNeeded: bits >> UInt32(b)) & 1 }
                j += 32
            }
        }
        return z
    }

    /// lime's sample weights: √exp(−d²/width²) with d the cosine distance of each row to row 0.
    public static func kernelWeights(_ z: UnsafePointer<UInt8>, samples: Int, features: Int, kernelWidth: Double) -> [Double] {
        let reference = z   // row 0
        var referenceOn = 0
        for j in 0..<features where reference[j] != 0 { referenceOn += 1 }
        return (0..<samples).map { i in
            let row = z + i * features
            var on = 0, shared = 0
            for j in 0..<features where row[j] != 0 {
                on += 1
                if reference[j] != 0 { shared += 1 }
            }
            // sklearn's cosine distance: rows scaled to unit length (a zero row stays zero), 1 − dot, clipped to [0, 2]
            var d = 1.0
            if on > 0 && referenceOn > 0 {
                let dot = Double(shared) * ((1.0 / Double(on).squareRoot()) * (1.0 / Double(referenceOn).squareRoot()))
                d = min(2, max(0, 1 - dot))
            }
            return exp(-(d * d) / (kernelWidth * kernelWidth)).squareRoot()
        }
    }

    /// lime's "fudged image": what every hidden superpixel shows, in the image's layout.
    public static func hiddenImage(_ image: LimeImage, _ superpixels: Superpixels, fill: LimeFill) throws -> [Float] {
        try require(superpixels.height == image.height && superpixels.width == image.width,
                    "the segmentation is \(superpixels.height)x\(superpixels.width) but the image is \(image.height)x\(image.width)")
        var hidden = [Float](repeating: 0, count: image.valueCount)
        switch fill {
        case .value(let values):
            try require(values.count == 1 || values.count == image.channels,
                        "hide_color needs 1 or \(image.channels) values, got \(values.count)")
            try require(values.allSatisfy { $0.isFinite }, "hide_color must be finite")
            for p in 0..<image.pixelCount {
                for c in 0..<image.channels { hidden[image.offset(p, c)] = values.count == 1 ? values[0] : values[c] }
            }
        case .segmentMean(let levels):
            try require(levels >= 0 && levels <= 65535, "integer levels must be between 0 and 65535")
            let s = superpixels.count
            var sums = [Double](repeating: 0, count: s * image.channels)
            let sizes = superpixels.sizes
            for p in 0..<image.pixelCount {
                let k = Int(superpixels.labels[p])
                for c in 0..<image.channels {
                    let v = Double(image.pixels[image.offset(p, c)])
                    sums[k * image.channels + c] += levels > 0 ? (v * Double(levels)).rounded() : v
                }
            }
            var means = [Float](repeating: 0, count: s * image.channels)
            for k in 0..<s {
                for c in 0..<image.channels {
                    let mean = sums[k * image.channels + c] / Double(sizes[k])
                    means[k * image.channels + c] = levels > 0 ? Float(mean.rounded(.towardZero)) / Float(levels) : Float(mean)
                }
            }
            for p in 0..<image.pixelCount {
                let k = Int(superpixels.labels[p])
                for c in 0..<image.channels { hidden[image.offset(p, c)] = means[k * image.channels + c] }
            }
        }
        return hidden
    }

    /// Perturbed images for rows [first, first + count) of Z into `out` [count, image values], in
    /// the image's layout.
    public static func perturb(_ image: LimeImage, hidden: UnsafePointer<Float>, _ superpixels: Superpixels,
                               z: UnsafePointer<UInt8>, features: Int, first: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let values = image.valueCount
        superpixels.labels.withUnsafeBufferPointer { labelBuffer in
            guard let labels = labelBuffer.baseAddress else { return }
            parallelRanges(count, grain: max(1, 16384 / max(1, values))) { lo, hi in
                for i in lo..<hi {
                    let row = z + (first + i) * features
                    let dst = out + i * values
                    if image.channelsLast {
                        let c = image.channels
                        for p in 0..<image.pixelCount {
                            let src = row[Int(labels[p])] != 0 ? image.pixels : hidden
                            for k in 0..<c { dst[p * c + k] = src[p * c + k] }
                        }
                    } else {
                        let plane = image.pixelCount
                        for k in 0..<image.channels {
                            let (s, h, d) = (image.pixels + k * plane, hidden + k * plane, dst + k * plane)
                            for p in 0..<plane { d[p] = row[Int(labels[p])] != 0 ? s[p] : h[p] }
                        }
                    }
                }
            }
        }
    }
}

/// Sizes the engine accepts for one explanation.
public enum LimeLimits {
    /// Superpixels per image (the surrogate's Gram matrix is features² doubles: 32 MiB at 2048).
    public static let maxFeatures = 2048
    /// Samples × superpixels (the surrogate holds two copies as doubles: 1 GiB at the limit).
    public static let maxSampleValues = 1 << 26
}
