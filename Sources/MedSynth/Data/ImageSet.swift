// A borrowed view of a batch of images and their labels, as they arrive from the caller.

import MedSynthCore

/// A borrowed batch of images [n, c, h, w] with optional labels.
public struct ImageSet {
    public let images: UnsafePointer<Float>
    public let count: Int
    public let channels: Int, height: Int, width: Int
    public let labels: UnsafePointer<Int64>?

    public init(images: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int, labels: UnsafePointer<Int64>? = nil) {
        self.images = images
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
        self.labels = labels
    }

    /// Floats in one image (channels · height · width).
    public var valuesPerImage: Int { channels * height * width }
}
