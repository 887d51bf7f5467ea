// Superpixels: a label per pixel, 0..<count, every value used, covering the image. Every
// segmentation in this folder returns one; a caller's own segmentation arrives renumbered the same
// way by the Python layer (sorted unique values → 0..<count), so scikit-image's
// `slic(start_label=1)` or a label map with gaps cannot shift LIME's features against the image
// (lime issue #502, SeldonIO/alibi#748).

import MedSynthCore

public struct Superpixels {
    /// Labels [height · width], row-major, each in 0..<count, every value used.
    public let labels: [Int32]
    public let height: Int, width: Int
    public let count: Int

    /// Wraps labels already numbered 0..<count with every value used; throws otherwise.
    public init(labels: [Int32], height: Int, width: Int) throws {
        try require(height >= 1 && width >= 1 && labels.count == height * width,
                    "a segmentation of \(height)x\(width) pixels needs \(height * width) labels, got \(labels.count)")
        var seen = [Bool](repeating: false, count: labels.count + 1)
        var largest: Int32 = -1
        for l in labels {
            try require(l >= 0 && Int(l) < labels.count, "segment labels must lie in 0..<\(labels.count), got \(l)")
            seen[Int(l)] = true
            largest = max(largest, l)
        }
        let count = Int(largest) + 1
        try require(seen[0..<count].allSatisfy { $0 }, "segment labels must use every value 0..<\(count) ")
        self.labels = labels
        self.height = height
        self.width = width
        self.count = count
    }

    /// Renumbers labels (any integers in a range no wider than the image, e.g. root pixel indices
    /// or cluster numbers) to 0..<count in sorted order: numpy's `unique(raw, return_inverse=True)`.
    package static func consecutive(_ raw: [Int], height: Int, width: Int) throws -> Superpixels {
        let low = raw.min() ?? 0, high = raw.max() ?? 0
        try require(high - low <= 4 * raw.count, "labels span too wide a range to renumber")
        var index = [Int32](repeating: -1, count: high - low + 1)
        for v in raw { index[v - low] = 0 }
        var next: Int32 = 0
        for i in index.indices where index[i] == 0 {
            index[i] = next
            next += 1
        }
        return try Superpixels(labels: raw.map { index[$0 - low] }, height: height, width: width)
    }

    /// Pixels in each segment.
    public var sizes: [Int] {
        var s = [Int](repeating: 0, count: count)
        for l in labels { s[Int(l)] += 1 }
        return s
    }
}

/// An image as the segmentations read it: float64 [height, width, channels] channels-last, the
/// values scikit-image would see after `img_as_float` (uint8 scaled by 1/255).
public struct SegmentationInput {
    public let pixels: UnsafePointer<Double>
    public let height: Int, width: Int, channels: Int

    public init(pixels: UnsafePointer<Double>, height: Int, width: Int, channels: Int) throws {
        try require(height >= 1 && width >= 1 && height <= 1 << 14 && width <= 1 << 14 && height * width <= 1 << 22,
                    "images to segment must be 1 to 16384 pixels per side and at most 4194304 pixels, got \(height)x\(width)")
        try require(channels == 1 || channels == 3, "images to segment must have 1 (gray) or 3 (RGB) channels, got \(channels)")
        for i in 0..<(height * width * channels) where !pixels[i].isFinite {
            throw MedSynthError.invalidArgument("the image to segment contains NaN or infinite values")
        }
        self.pixels = pixels
        self.height = height
        self.width = width
        self.channels = channels
    }

    public var pixelCount: Int { height * width }
}
