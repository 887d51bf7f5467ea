// A generated labelled image set for demos and tests: one shape per class, drawn at a random
// position, size and brightness on a noisy, unevenly lit background. The class is only visible in
// the spatial arrangement of pixels (every class has the same brightness distribution), so a
// model must use convolutions to tell classes apart. Nothing is downloaded: the project makes its
// own default data.

import MedSynthCore

import Glibc

public enum ShapesDataset {
    public static let classNames = ["disc", "square", "triangle", "cross", "ring", "horizontal_bars",
                                    "vertical_bars", "diagonal_bars"]

    /// images [nPerClass·numClasses, channels, size, size] in [0, 1]; labels cycle 0, 1, ..., K−1;
    /// masks [n, size, size] (1 on the shape's own pixels), when given, for explanation tests.
    public static func generate(nPerClass: Int, numClasses: Int, size: Int, channels: Int, seed: UInt64,
                                images: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int64>,
                                masks: UnsafeMutablePointer<UInt8>? = nil) throws {
        try require(nPerClass >= 1, "n_per_class must be at least 1")
        try require((2...classNames.count).contains(numClasses), "num_classes must be between 2 and \(classNames.count)")
        try require((8...1024).contains(size), "size must be between 8 and 1024 pixels")
        try require(channels == 1 || channels == 3, "channels must be 1 or 3")
        let total = nPerClass * numClasses
        let plane = size * size
        // every image gets its own generator, so images can be drawn in parallel, deterministically
        parallelRanges(total, grain: 8) { lo, hi in
            for i in lo..<hi {
                let label = i % numClasses
                labels[i] = Int64(label)
                let rng = RandomGenerator(seed: seed, stream: .dataset, index: i)
                draw(shape: label, into: images + i * channels * plane, size: size, channels: channels, rng: rng,
                     mask: masks.map { $0 + i * plane })
            }
        }
    }

    /// 1 inside the shape, 0 outside, for offsets (dx, dy) from the centre in units of the radius.
    @inline(__always)
    package static func inside(_ shape: Int, _ dx: Float, _ dy: Float, period: Float) -> Bool {
        let r2 = dx * dx + dy * dy
        switch shape {
        case 0: return r2 <= 1
        case 1: return abs(dx) <= 0.85 && abs(dy) <= 0.85
        case 2: return dy <= 0.8 && dy >= -1 + 0.0 && abs(dx) <= (dy + 1) * 0.55   // apex up
        case 3: return (abs(dx) <= 0.28 && abs(dy) <= 1) || (abs(dy) <= 0.28 && abs(dx) <= 1)
        case 4: return r2 <= 1 && r2 >= 0.45
        case 5: return abs(dx) <= 1 && abs(dy) <= 1 && Int(((dy + 4) / period).rounded(.down)) % 2 == 0
        case 6: return abs(dx) <= 1 && abs(dy) <= 1 && Int(((dx + 4) / period).rounded(.down)) % 2 == 0
        default: return abs(dx) <= 1 && abs(dy) <= 1 && Int(((dx + dy + 8) / (period * 1.4)).rounded(.down)) % 2 == 0
        }
    }

    package static func draw(shape: Int, into out: UnsafeMutablePointer<Float>, size: Int, channels: Int, rng: RandomGenerator,
                             mask: UnsafeMutablePointer<UInt8>? = nil) {
        let s = Float(size)
        let radius = s * (0.18 + 0.12 * rng.uniform())
        let cx = radius + (s - 2 * radius) * rng.uniform(), cy = radius + (s - 2 * radius) * rng.uniform()
        let background = 0.1 + 0.2 * rng.uniform()
        let foreground = 0.55 + 0.4 * rng.uniform()
        let gradient = (rng.uniform() - 0.5) * 0.2            // uneven illumination
        let period = 0.3 + 0.15 * rng.uniform()
        var tint = [Float](repeating: 1, count: channels)
        if channels == 3 { for c in 0..<3 { tint[c] = 0.8 + 0.2 * rng.uniform() } }
        for y in 0..<size {
            for x in 0..<size {
                let dx = (Float(x) + 0.5 - cx) / radius, dy = (Float(y) + 0.5 - cy) / radius
                let lit = background + gradient * (Float(x) / s - 0.5)
                let isShape = inside(shape, dx, dy, period: period)
                mask?[y * size + x] = isShape ? 1 : 0
                let base = isShape ? foreground : lit
                for c in 0..<channels {
                    let v = base * tint[c] + 0.05 * rng.normal()
                    out[c * size * size + y * size + x] = min(1, max(0, v))
                }
            }
        }
    }
}
