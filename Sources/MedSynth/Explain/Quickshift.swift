// Quickshift superpixels (Vedaldi & Soatto, "Quick shift and kernel methods for mode seeking",
// ECCV 2008), step for step as scikit-image computes them (skimage/segmentation/_quickshift.py
// and _quickshift_cy.pyx), so that LIME's default segmentation here is lime's:
//  1. features: the image in Lab (gray v as the RGB pixel (v, v, v), as lime's gray2rgb passes
//     it), optionally Gaussian-smoothed, times `ratio`; the pixel's (row, column) come on top;
//  2. density p(i) = noise(i) + Σ_{j in the (2⌈3k⌉+1)² window} exp(−‖f_i − f_j‖² / (2k²)), with
//     k = kernel_size and noise = numpy's default_rng(seed).normal(scale=1e-5) to break ties;
//  3. parent(i) = the nearest pixel of the window with a higher density, kept only if it lies
//     within max_dist (lime's 200 never cuts: in-window distances stay below ~61);
//  4. segments = trees of the parent forest, numbered by their root's position in the image.
// Rows are independent in steps 2 and 3, so they run in parallel; each pixel's sum keeps
// scikit-image's order, so the densities are the same numbers whatever the thread count.
// Cost: h·w·(2⌈3k⌉+1)² exponentials (2.6 M at 64 × 64 with k = 4).

import MedSynthCore

import Glibc

public struct QuickshiftOptions: Configurable {
    public var ratio = 0.2
    public var kernelSize = 4.0
    public var maxDist = 200.0
    public var sigma = 0.0
    public var convertToLab = true
    public var seed: UInt64 = 42

    public init() {}

    public static let name = "quickshift"

    /// lime's defaults (lime_image.py); scikit-image's own are ratio 1, kernel_size 5, max_dist 10.
    public static let options: [Option<QuickshiftOptions>] = [
        .double("ratio", \.ratio, "Weight of colour against position (lime's 0.2; scikit-image's default is 1)."),
        .double("kernel_size", \.kernelSize, "Width of the Gaussian density kernel (lime's 4; scikit-image's 5); larger gives fewer segments."),
        .double("max_dist", \.maxDist, "Longest parent link kept (lime's 200, which never cuts one; scikit-image's 10)."),
        .double("sigma", \.sigma, "Gaussian pre-smoothing of the image, 0 for none."),
        .bool("convert2lab", \.convertToLab, "Segment in CIE Lab (a gray image as the RGB image (v, v, v), as lime passes it)."),
        .seed("rng", \.seed, "Seed of the 1e-5 tie-breaking noise, drawn as numpy's default_rng(rng) draws it (scikit-image's 42)."),
    ]

    public func validate() throws {
        try require(ratio.isFinite && ratio >= 0, "ratio must be a non-negative number, got \(ratio)")
        try require(kernelSize.isFinite && kernelSize >= 1 && kernelSize <= 100, "kernel_size must be between 1 and 100, got \(kernelSize)")
        try require(!maxDist.isNaN && maxDist >= 0, "max_dist must be non-negative, got \(maxDist)")
        try require(sigma.isFinite && sigma >= 0 && sigma <= 100, "sigma must be between 0 and 100, got \(sigma)")
    }
}

public enum Quickshift {
    public static func segment(_ image: SegmentationInput, options: QuickshiftOptions = QuickshiftOptions()) throws -> Superpixels {
        try options.validate()
        let (height, width) = (image.height, image.width)
        // 1. features
        var features: [Double]
        let channels: Int
        if options.convertToLab {
            features = CIELab.convert(image)
            channels = 3
        } else {
            features = Array(UnsafeBufferPointer(start: image.pixels, count: image.pixelCount * image.channels))
            channels = image.channels
        }
        GaussianSmoothing.smooth(&features, height: height, width: width, channels: channels, sigma: options.sigma)
        for i in features.indices { features[i] *= options.ratio }

        // 2. densities, starting from the tie-breaking noise
        var generator = NumpyGenerator(seed: options.seed)
        var density = generator.normal(scale: 0.00001, count: height * width)
        let window = Int(ceil(3 * options.kernelSize))
        let scale = -0.5 / (options.kernelSize * options.kernelSize)
        features.withUnsafeBufferPointer { featureBuffer in
            density.withUnsafeMutableBufferPointer { densityBuffer in
                guard let f = featureBuffer.baseAddress, let p = densityBuffer.baseAddress else { return }
                parallelRanges(height, grain: 1) { lo, hi in
                    switch channels {
                    case 3: densityRows(lo, hi, f, p, height, width, window, scale, Lab3())
                    case 1: densityRows(lo, hi, f, p, height, width, window, scale, Gray1())
                    default: densityRows(lo, hi, f, p, height, width, window, scale, AnyChannels(count: channels))
                    }
                }
            }
        }

        // 3. parents: the nearest denser pixel in the window (the first in scan order on ties)
        var parent = [Int](0..<(height * width))
        features.withUnsafeBufferPointer { featureBuffer in
            density.withUnsafeBufferPointer { densityBuffer in
                parent.withUnsafeMutableBufferPointer { parentBuffer in
                    guard let f = featureBuffer.baseAddress, let p = densityBuffer.baseAddress,
                          let up = parentBuffer.baseAddress else { return }
                    parallelRanges(height, grain: 1) { lo, hi in
                        switch channels {
                        case 3: parentRows(lo, hi, f, p, up, height, width, window, options.maxDist, Lab3())
                        case 1: parentRows(lo, hi, f, p, up, height, width, window, options.maxDist, Gray1())
                        default: parentRows(lo, hi, f, p, up, height, width, window, options.maxDist, AnyChannels(count: channels))
                        }
                    }
                }
            }
        }

        // 4. roots: parents are strictly denser, so every chain ends; resolve each once
        var root = [Int](repeating: -1, count: parent.count)
        var chain: [Int] = []
        for start in parent.indices where root[start] < 0 {
            var i = start
            while root[i] < 0 && parent[i] != i {
                chain.append(i)
                i = parent[i]
            }
            let top = root[i] >= 0 ? root[i] : i
            root[i] = top
            for j in chain { root[j] = top }
            chain.removeAll(keepingCapacity: true)
        }
        return try Superpixels.consecutive(root, height: height, width: width)
    }

    /// Densities of rows [lo, hi): p(i) += Σ_window exp(scale · d²), in scikit-image's order.
    static func densityRows<F: FeatureDistance>(_ lo: Int, _ hi: Int, _ f: UnsafePointer<Double>, _ p: UnsafeMutablePointer<Double>,
                                                _ height: Int, _ width: Int, _ window: Int, _ scale: Double, _ metric: F) {
        let channels = metric.channels
        for r in lo..<hi {
            let (r0, r1) = (max(r - window, 0), min(r + window + 1, height))
            for c in 0..<width {
                let (c0, c1) = (max(c - window, 0), min(c + window + 1, width))
                let here = f + (r * width + c) * channels
                var sum = p[r * width + c]
                for rr in r0..<r1 {
                    let tr = Double(r - rr)
                    let row = f + rr * width * channels
                    var neighbour = row + c0 &* channels
                    for cc in c0..<c1 {
                        let dist = metric.squared(here, neighbour, tr, Double(c &- cc))
                        sum += exp(dist * scale)
                        neighbour += channels
                    }
                }
                p[r * width + c] = sum
            }
        }
    }

    /// Parents of rows [lo, hi): the nearest strictly denser pixel of the window, the first in scan
    /// order among equals, or the pixel itself when none is denser or the nearest is beyond maxDist.
    static func parentRows<F: FeatureDistance>(_ lo: Int, _ hi: Int, _ f: UnsafePointer<Double>, _ p: UnsafePointer<Double>,
                                               _ up: UnsafeMutablePointer<Int>, _ height: Int, _ width: Int, _ window: Int,
                                               _ maxDist: Double, _ metric: F) {
        let channels = metric.channels
        for r in lo..<hi {
            let (r0, r1) = (max(r - window, 0), min(r + window + 1, height))
            for c in 0..<width {
                let (c0, c1) = (max(c - window, 0), min(c + window + 1, width))
                let here = f + (r * width + c) * channels
                let own = p[r * width + c]
                var closest = Double.greatestFiniteMagnitude
                var best = r * width + c
                for rr in r0..<r1 {
                    let tr = Double(r - rr)
                    let row = f + rr * width * channels
                    let densities = p + rr * width
                    var neighbour = row + c0 &* channels
                    for cc in c0..<c1 {
                        // branch-free: the distance is cheap, a mispredicted density test is not
                        let dist = metric.squared(here, neighbour, tr, Double(c &- cc))
                        let candidate = densities[cc] > own ? dist : Double.infinity
                        if candidate < closest { best = rr &* width &+ cc }
                        closest = min(candidate, closest)
                        neighbour += channels
                    }
                }
                up[r * width + c] = closest.squareRoot() > maxDist ? r * width + c : best
            }
        }
    }
}

/// ‖f_a − f_b‖² + dr² + dc², summed in scikit-image's order (channels, then row, then column), so
/// that the densities are scikit-image's to the last bit.
protocol FeatureDistance {
    var channels: Int { get }
    func squared(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ tr: Double, _ tc: Double) -> Double
}

struct Lab3: FeatureDistance {
    var channels: Int { 3 }
    @inline(__always)
    func squared(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ tr: Double, _ tc: Double) -> Double {
        let (t0, t1, t2) = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
        var dist = 0.0
        dist += t0 * t0
        dist += t1 * t1
        dist += t2 * t2
        dist += tr * tr
        dist += tc * tc
        return dist
    }
}

struct Gray1: FeatureDistance {
    var channels: Int { 1 }
    @inline(__always)
    func squared(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ tr: Double, _ tc: Double) -> Double {
        let t = a[0] - b[0]
        var dist = 0.0
        dist += t * t
        dist += tr * tr
        dist += tc * tc
        return dist
    }
}

struct AnyChannels: FeatureDistance {
    let count: Int
    var channels: Int { count }
    @inline(__always)
    func squared(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ tr: Double, _ tc: Double) -> Double {
        var dist = 0.0
        for k in 0..<count {
            let t = a[k] - b[k]
            dist += t * t
        }
        dist += tr * tr
        dist += tc * tc
        return dist
    }
}
