// Antialiased bilinear resizing, as Pillow's Image.resize(BILINEAR) (libImaging/Resample.c): a
// separable triangle filter whose support widens by the reduction factor when shrinking, so that
// every input pixel contributes (an area-weighted average, no aliasing), and which is plain
// bilinear interpolation with pixel centres aligned ((x + 0.5)·scale) when enlarging. Rows are
// filtered first, then columns, as Pillow does.

public enum ResizeKernel {
    /// Filter taps of one axis: output pixel i reads input pixels start[i] ..< start[i] + count[i]
    /// with weights[i·taps ..< i·taps + count[i]] (summing to 1).
    package struct Taps {
        package let start: [Int]
        package let count: [Int]
        package let weights: [Float]
        package let taps: Int
    }

    /// Pillow's precompute_coeffs with the bilinear filter (support 1): centre = (i + 0.5)·scale,
    /// support = max(scale, 1), w(x) = max(0, 1 − |x − centre + 0.5| / max(scale, 1)).
    package static func taps(from inSize: Int, to outSize: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var start = [Int](repeating: 0, count: outSize), count = start
        var weights = [Float](repeating: 0, count: outSize * taps)
        for i in 0..<outSize {
            let centre = (Double(i) + 0.5) * scale
            let lo = max(0, Int(centre - support + 0.5))
            let hi = min(inSize, Int(centre + support + 0.5))
            var w = [Double](repeating: 0, count: max(0, hi - lo))
            var total = 0.0
            for j in 0..<w.count {
                let x = abs((Double(j + lo) - centre + 0.5) / filterScale)
                w[j] = x < 1 ? 1 - x : 0
                total += w[j]
            }
            start[i] = lo
            count[i] = min(w.count, taps)
            for j in 0..<count[i] { weights[i * taps + j] = Float(total != 0 ? w[j] / total : w[j]) }
        }
        return Taps(start: start, count: count, weights: weights, taps: taps)
    }

    /// y [n, outH, outW, c] = resize(x [n, h, w, c]) (channels-last; c = 1 for gray planes).
    public static func bilinear(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, outH: Int, outW: Int,
                                y: UnsafeMutablePointer<Float>) {
        let horizontal = taps(from: w, to: outW), vertical = taps(from: h, to: outH)
        let temp = UnsafeMutablePointer<Float>.allocate(capacity: n * h * outW * c)
        defer { temp.deallocate() }
        // rows: [n·h, w, c] -> [n·h, outW, c]
        horizontal.weights.withUnsafeBufferPointer { wt in
            parallelRanges(n * h, grain: 16) { lo, hi in
                for row in lo..<hi {
                    let src = x + row * w * c, dst = temp + row * outW * c
                    for i in 0..<outW {
                        let s = horizontal.start[i], k = horizontal.count[i], base = i * horizontal.taps
                        for ch in 0..<c {
                            var acc: Float = 0
                            for j in 0..<k { acc += wt[base + j] * src[(s + j) * c + ch] }
                            dst[i * c + ch] = acc
                        }
                    }
                }
            }
        }
        // columns: [n, h, outW·c] -> [n, outH, outW·c]
        let rowLength = outW * c
        vertical.weights.withUnsafeBufferPointer { wt in
            parallelRanges(n * outH, grain: 16) { lo, hi in
                for index in lo..<hi {
                    let image = index / outH, i = index % outH
                    let dst = y + index * rowLength, src = temp + image * h * rowLength
                    let s = vertical.start[i], k = vertical.count[i], base = i * vertical.taps
                    for p in 0..<rowLength { dst[p] = 0 }
                    for j in 0..<k {
                        let weight = wt[base + j], line = src + (s + j) * rowLength
                        for p in 0..<rowLength { dst[p] += weight * line[p] }
                    }
                }
            }
        }
    }
}
