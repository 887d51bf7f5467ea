// Gaussian pre-smoothing of an image before segmentation (quickshift's and SLIC's `sigma`), as
// scikit-image does it: scipy.ndimage.gaussian_filter over the two spatial axes (rows first, then
// columns), never across channels, 'reflect' borders (d c b a | a b c d | d c b a) and a kernel
// truncated at 4 sigma:
//   radius = ⌊4σ + 0.5⌋,  w_j = e^{−j²/(2σ²)} / Σ_k e^{−k²/(2σ²)},  j = −radius…radius
// The symmetric sum is taken as scipy's correlate1d takes it: centre first, then pairs from the
// outside in.

import MedSynthCore

import Glibc

enum GaussianSmoothing {
    /// The normalised kernel's half, w[0…radius].
    static func kernel(sigma: Double) -> [Double] {
        let radius = Int(4.0 * sigma + 0.5)
        let scale = -0.5 / (sigma * sigma)
        let full = (-radius...radius).map { exp(scale * Double($0 * $0)) }
        let total = full.reduce(0, +)
        return (0...radius).map { full[radius + $0] / total }
    }

    /// scipy's 'reflect' index for position i on an axis of length n.
    @inline(__always)
    static func reflect(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        var j = i
        let period = 2 * n
        j %= period
        if j < 0 { j += period }
        return j < n ? j : period - 1 - j
    }

    /// Smooths `image` [h, w, c] (channels-last) in place along rows and columns; sigma ≤ 0 is a no-op.
    static func smooth(_ image: inout [Double], height: Int, width: Int, channels: Int, sigma: Double) {
        guard sigma > 0 else { return }
        let w = kernel(sigma: sigma)
        let radius = w.count - 1
        var scratch = image
        // along rows (axis 0): each output pixel reads its column
        image.withUnsafeBufferPointer { srcBuffer in
            scratch.withUnsafeMutableBufferPointer { dstBuffer in
                guard let src = srcBuffer.baseAddress, let dst = dstBuffer.baseAddress else { return }
                parallelRanges(height, grain: 8) { lo, hi in
                    for y in lo..<hi {
                        for x in 0..<width {
                            for c in 0..<channels {
                                let at = { (yy: Int) in src[(reflect(yy, height) * width + x) * channels + c] }
                                var sum = at(y) * w[0]
                                for j in stride(from: radius, to: 0, by: -1) { sum += (at(y - j) + at(y + j)) * w[j] }
                                dst[(y * width + x) * channels + c] = sum
                            }
                        }
                    }
                }
            }
        }
        // along columns (axis 1)
        scratch.withUnsafeBufferPointer { srcBuffer in
            image.withUnsafeMutableBufferPointer { dstBuffer in
                guard let src = srcBuffer.baseAddress, let dst = dstBuffer.baseAddress else { return }
                parallelRanges(height, grain: 8) { lo, hi in
                    for y in lo..<hi {
                        for x in 0..<width {
                            for c in 0..<channels {
                                let at = { (xx: Int) in src[(y * width + reflect(xx, width)) * channels + c] }
                                var sum = at(x) * w[0]
                                for j in stride(from: radius, to: 0, by: -1) { sum += (at(x - j) + at(x + j)) * w[j] }
                                dst[(y * width + x) * channels + c] = sum
                            }
                        }
                    }
                }
            }
        }
    }
}
