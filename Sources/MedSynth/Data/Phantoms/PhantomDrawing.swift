// Drawing primitives shared by the phantom generators (BrainMRIPhantom, LeukemiaSmearPhantom,
// ChestCTPhantom): a per-worker canvas, a fast per-pixel random stream, smooth random shapes,
// lattice noise, polynomial bias fields, separable Gaussian blur and the noise models of each
// modality. Every generator draws in physical units (mm or µm) through a `PixelFrame`, so the
// same anatomy comes out at any image size; edges are soft over about one pixel (anti-aliased).

import MedSynthCore

import Glibc

// MARK: - canvas

/// The planes one worker draws into, reused from image to image: `channels` image planes, a
/// lesion-coverage plane (0...1, thresholded at 0.5 into the mask) and two scratch planes.
package final class PhantomCanvas {
    package let size: Int
    package let channels: Int
    package let image: UnsafeMutablePointer<Float>     // [channels, size, size]
    package let mask: UnsafeMutablePointer<Float>      // [size, size]
    package let scratch: UnsafeMutablePointer<Float>   // [2, size, size]

    package init(size: Int, channels: Int) {
        self.size = size
        self.channels = channels
        let plane = size * size
        image = .allocate(capacity: channels * plane)
        mask = .allocate(capacity: plane)
        scratch = .allocate(capacity: 2 * plane)
    }

    deinit {
        image.deallocate()
        mask.deallocate()
        scratch.deallocate()
    }

    package var plane: Int { size * size }

    package func clear(image value: Float = 0) {
        image.update(repeating: value, count: channels * plane)
        mask.update(repeating: 0, count: plane)
    }

    package func channel(_ c: Int) -> UnsafeMutablePointer<Float> { image + c * plane }
}

// MARK: - coordinates

/// Maps pixel centres to a physical frame: `scale` units per pixel, the frame's origin at pixel
/// (originX, originY), rotated by `angle` (radians, counter-clockwise on screen).
package struct PixelFrame {
    package let scale: Float
    package let originX: Float, originY: Float
    package let cosA: Float, sinA: Float

    package init(size: Int, unitsPerPixel: Float, originX: Float, originY: Float, angle: Float = 0) {
        scale = unitsPerPixel
        self.originX = originX
        self.originY = originY
        cosA = cos(angle)
        sinA = sin(angle)
    }

    /// Physical coordinates of the centre of pixel (px, py).
    @inline(__always)
    package func point(_ px: Int, _ py: Int) -> (x: Float, y: Float) {
        let dx = (Float(px) + 0.5 - originX) * scale, dy = (Float(py) + 0.5 - originY) * scale
        return (cosA * dx + sinA * dy, -sinA * dx + cosA * dy)
    }

    /// The pixel rectangle (clamped to the image) holding a physical disc of `radius` around (x, y).
    package func pixelBounds(x: Float, y: Float, radius: Float, size: Int) -> (x0: Int, x1: Int, y0: Int, y1: Int) {
        let sx = cosA * x - sinA * y, sy = sinA * x + cosA * y          // back to screen axes
        let cx = originX + sx / scale, cy = originY + sy / scale, r = radius / scale + 2
        return (max(0, Int(floor(cx - r))), min(size, Int(ceil(cx + r))),
                max(0, Int(floor(cy - r))), min(size, Int(ceil(cy + r))))
    }
}

// MARK: - scalar helpers

@inline(__always) package func clamp01(_ v: Float) -> Float { min(1, max(0, v)) }

@inline(__always) package func mix(_ a: Float, _ b: Float, _ t: Float) -> Float { a + (b - a) * t }

@inline(__always)
package func smoothstep(_ e0: Float, _ e1: Float, _ x: Float) -> Float {
    let t = clamp01((x - e0) / (e1 - e0))
    return t * t * (3 - 2 * t)
}

/// Coverage of a pixel by a region whose signed distance (negative inside) is `d`, with an edge
/// ramp `width` wide (one pixel for an anti-aliased edge).
@inline(__always)
package func coverage(_ d: Float, _ width: Float) -> Float { clamp01(0.5 - d / width) }

/// Distance from (px, py) to the segment a-b, and the position t in [0, 1] of the nearest point.
@inline(__always)
package func segmentDistance(_ px: Float, _ py: Float, _ ax: Float, _ ay: Float, _ bx: Float, _ by: Float) -> (Float, Float) {
    let vx = bx - ax, vy = by - ay, wx = px - ax, wy = py - ay
    let len2 = vx * vx + vy * vy
    let t = len2 > 0 ? clamp01((wx * vx + wy * vy) / len2) : 0
    let dx = wx - t * vx, dy = wy - t * vy
    return ((dx * dx + dy * dy).squareRoot(), t)
}

/// Radial distance to an ellipse with semi-axes (a, b): ρ − r(θ), negative inside, where r(θ) is
/// the ellipse's radius in the direction of the point. Close to the normal distance for the
/// near-circular outlines drawn here, and cheap.
@inline(__always)
package func ellipseDistance(_ x: Float, _ y: Float, _ a: Float, _ b: Float) -> Float {
    let rho = (x * x + y * y).squareRoot()
    guard rho > 1e-6 else { return -min(a, b) }
    let c = x / rho, s = y / rho
    return rho - 1 / ((c * c) / (a * a) + (s * s) / (b * b)).squareRoot()
}

// MARK: - random numbers

/// A fast per-pixel random stream (xoshiro128+, Blackman and Vigna 2018) seeded from the image's
/// Philox generator: noise fields draw millions of values per data set, where Philox with
/// Box-Muller would dominate the generation time.
package struct PixelRandom {
    private var s0: UInt32, s1: UInt32, s2: UInt32, s3: UInt32

    package init(_ rng: RandomGenerator) {
        s0 = rng.nextUInt32() | 1
        s1 = rng.nextUInt32()
        s2 = rng.nextUInt32()
        s3 = rng.nextUInt32() | 0x8000_0000
    }

    @inline(__always)
    package mutating func next() -> UInt32 {
        let result = s0 &+ s3
        let t = s1 << 9
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 11) | (s3 >> 21)
        return result
    }

    /// Uniform in [0, 1).
    @inline(__always)
    package mutating func uniform() -> Float { Float(next() >> 8) * 0x1p-24 }

    /// Approximately standard normal: the sum of four uniforms (Irwin-Hall), scaled to unit variance.
    /// Tails stop at ±3.46σ, which image noise does not miss.
    @inline(__always)
    package mutating func normal() -> Float {
        let a = next(), b = next()
        let sum = Float(a >> 16) + Float(a & 0xFFFF) + Float(b >> 16) + Float(b & 0xFFFF)
        return (sum * 0x1p-16 - 2) * 1.7320508
    }
}

extension RandomGenerator {
    /// Uniform in [lo, hi).
    @inline(__always)
    package func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// True with probability p.
    @inline(__always)
    package func chance(_ p: Float) -> Bool { uniform() < p }

    /// Uniform integer in lo...hi.
    package func int(_ lo: Int, _ hi: Int) -> Int { lo + int(below: hi - lo + 1) }

    /// Log-uniform in [lo, hi): scale parameters (sizes, noise levels) spread evenly in ratio.
    package func logUniform(_ lo: Float, _ hi: Float) -> Float { lo * pow(hi / lo, uniform()) }
}

// MARK: - smooth random shapes

/// A smooth random closed shape: an ellipse (semi-axes radius·aspect, radius/aspect, turned by
/// `angle`) whose radius is modulated by low harmonics, r(θ) = r_e(θ)·(1 + Σ a_k cos kθ + b_k sin kθ).
/// Harmonic k gets an amplitude ~ roughness/k, so outlines stay smooth and star-free.
package struct Blob {
    package var cx: Float, cy: Float
    package var radius: Float
    private let a: Float, b: Float, cosA: Float, sinA: Float
    private var harmonics: [(Float, Float)]

    package init(cx: Float, cy: Float, radius: Float, aspect: Float = 1, angle: Float = 0, roughness: Float = 0,
                 harmonics count: Int = 5, rng: RandomGenerator) {
        self.cx = cx
        self.cy = cy
        self.radius = radius
        a = radius * aspect
        b = radius / aspect
        cosA = cos(angle)
        sinA = sin(angle)
        harmonics = (0..<max(0, count - 1)).map { i in
            let k = Float(i + 2), amp = roughness / k
            return (amp * (2 * rng.uniform() - 1), amp * (2 * rng.uniform() - 1))
        }
    }

    /// The largest radius the outline can reach (for bounding boxes).
    package var extent: Float {
        max(a, b) * (1 + harmonics.reduce(0) { $0 + abs($1.0) + abs($1.1) })
    }

    /// Radial signed distance (negative inside) of the point (x, y).
    @inline(__always)
    package func distance(_ x: Float, _ y: Float) -> Float {
        let dx = x - cx, dy = y - cy
        let u = cosA * dx + sinA * dy, v = -sinA * dx + cosA * dy
        let rho = (u * u + v * v).squareRoot()
        guard rho > 1e-6 else { return -min(a, b) }
        let c1 = u / rho, s1 = v / rho
        var r = 1 / ((c1 * c1) / (a * a) + (s1 * s1) / (b * b)).squareRoot()
        // cos kθ, sin kθ by complex multiplication (no trigonometry per pixel)
        var ck = c1, sk = s1, modulation: Float = 1
        for (ak, bk) in harmonics {
            (ck, sk) = (ck * c1 - sk * s1, sk * c1 + ck * s1)
            modulation += ak * ck + bk * sk
        }
        r *= max(0.2, modulation)
        return rho - r
    }

    /// Distance relative to the local radius: −1 at the centre, 0 on the outline.
    @inline(__always)
    package func relative(_ x: Float, _ y: Float) -> Float {
        let d = distance(x, y)
        let dx = x - cx, dy = y - cy
        let rho = (dx * dx + dy * dy).squareRoot()
        let r = rho - d
        return r > 1e-6 ? d / r : -1
    }
}

// MARK: - lattice noise

/// Smooth value noise: random values on a lattice, interpolated with a quintic fade (Perlin
/// 2002), optionally periodic in x (for fields around a closed outline). Sampled in lattice units.
package struct LatticeNoise {
    private var values: [Float]
    private let nx: Int, ny: Int
    private let periodicX: Bool

    /// A lattice covering [0, width) × [0, height) in lattice units, values ~ N(0, 1).
    package init(width: Int, height: Int, periodicX: Bool = false, rng: RandomGenerator) {
        nx = max(1, width) + (periodicX ? 0 : 1)
        ny = max(1, height) + 1
        self.periodicX = periodicX
        var pr = PixelRandom(rng)
        values = (0..<(nx * ny)).map { _ in pr.normal() }
    }

    @inline(__always) private static func fade(_ t: Float) -> Float { t * t * t * (t * (t * 6 - 15) + 10) }

    /// The field at (x, y) (lattice units); outside the lattice it clamps (or wraps in x).
    @inline(__always)
    package func sample(_ x: Float, _ y: Float) -> Float {
        let fx = floor(x), fy = floor(y)
        var ix = Int(fx), iy = Int(fy)
        let tx = Self.fade(x - fx), ty = Self.fade(y - fy)
        var ix1: Int
        if periodicX {
            ix = ((ix % nx) + nx) % nx
            ix1 = ix + 1 == nx ? 0 : ix + 1
        } else {
            ix = min(max(ix, 0), nx - 1)
            ix1 = min(ix + 1, nx - 1)
        }
        iy = min(max(iy, 0), ny - 1)
        let iy1 = min(iy + 1, ny - 1)
        return values.withUnsafeBufferPointer { v in
            let a = v[iy * nx + ix], b = v[iy * nx + ix1], c = v[iy1 * nx + ix], d = v[iy1 * nx + ix1]
            return mix(mix(a, b, tx), mix(c, d, tx), ty)
        }
    }
}

/// Fractal noise over a physical region: `octaves` lattices, each twice as fine and half as strong,
/// normalised to unit standard deviation (approximately). `cell` is the coarsest lattice spacing.
package struct FractalNoise {
    private var layers: [LatticeNoise] = []
    private let originX: Float, originY: Float, cell: Float
    private let norm: Float

    package init(x0: Float, y0: Float, extent: Float, cell: Float, octaves: Int, rng: RandomGenerator) {
        originX = x0
        originY = y0
        self.cell = cell
        var total: Float = 0
        for o in 0..<octaves {
            let cells = Int(ceil(extent / cell * Float(1 << o))) + 1
            layers.append(LatticeNoise(width: cells, height: cells, rng: rng))
            total += pow(0.25, Float(o))
        }
        norm = 1 / (total.squareRoot() * 0.55)   // value noise has std ≈ 0.55 of its lattice values
    }

    @inline(__always)
    package func sample(_ x: Float, _ y: Float) -> Float {
        var u = (x - originX) / cell, v = (y - originY) / cell, amp: Float = 1, sum: Float = 0
        for layer in layers {
            sum += amp * layer.sample(u, v)
            u *= 2; v *= 2; amp *= 0.5
        }
        return sum * norm
    }
}

/// Cellular (Worley) noise on a jittered grid: F2 − F1, the gap between the nearest and second
/// nearest feature points, is ~0 on cell borders: polygonal networks (lobular septa, chromatin).
package struct CellNoise {
    private var points: [(Float, Float)]
    private let n: Int
    private let originX: Float, originY: Float, cell: Float

    package init(x0: Float, y0: Float, extent: Float, cell: Float, rng: RandomGenerator) {
        originX = x0
        originY = y0
        self.cell = cell
        n = Int(ceil(extent / cell)) + 2
        var pr = PixelRandom(rng)
        points = (0..<(n * n)).map { _ in (pr.uniform(), pr.uniform()) }
    }

    /// (F1, F2 − F1) in physical units.
    @inline(__always)
    package func sample(_ x: Float, _ y: Float) -> (Float, Float) {
        let u = (x - originX) / cell, v = (y - originY) / cell
        let iu = Int(floor(u)), iv = Int(floor(v))
        var f1: Float = 9, f2: Float = 9
        points.withUnsafeBufferPointer { p in
            for j in (iv - 1)...(iv + 1) where j >= 0 && j < n {
                for i in (iu - 1)...(iu + 1) where i >= 0 && i < n {
                    let q = p[j * n + i]
                    let dx = Float(i) + q.0 - u, dy = Float(j) + q.1 - v
                    let d = dx * dx + dy * dy
                    if d < f1 { f2 = f1; f1 = d } else if d < f2 { f2 = d }
                }
            }
        }
        let d1 = f1.squareRoot(), d2 = f2.squareRoot()
        return (d1 * cell, (d2 - d1) * cell)
    }
}

// MARK: - bias fields

/// A smooth multiplicative field exp(Σ c_ij u^i v^j), i + j ≤ order, over u, v in [-1, 1], as
/// TorchIO's RandomBiasField (order 3, coefficients uniform in ±strength).
package struct BiasField {
    private var coefficients: [(Int, Int, Float)] = []

    package init(order: Int = 3, strength: Float, rng: RandomGenerator) {
        for i in 0...order {
            for j in 0...(order - i) where i + j > 0 {
                coefficients.append((i, j, strength * (2 * rng.uniform() - 1) / Float(i + j)))
            }
        }
    }

    /// Fills `out` [size, size] with the field.
    package func fill(_ out: UnsafeMutablePointer<Float>, size: Int) {
        let coeffs = coefficients
        for y in 0..<size {
            let v = 2 * (Float(y) + 0.5) / Float(size) - 1
            for x in 0..<size {
                let u = 2 * (Float(x) + 0.5) / Float(size) - 1
                var sum: Float = 0
                for (i, j, c) in coeffs { sum += c * ipow(u, i) * ipow(v, j) }
                out[y * size + x] = exp(sum)
            }
        }
    }

    @inline(__always) private func ipow(_ x: Float, _ n: Int) -> Float {
        switch n { case 0: return 1; case 1: return x; case 2: return x * x; default: return x * x * x }
    }
}

// MARK: - filtering and noise

/// Separable Gaussian blur of a [size, size] plane in place (edges clamped), `sigma` in pixels;
/// `scratch` holds one plane.
package func gaussianBlur(_ plane: UnsafeMutablePointer<Float>, size: Int, sigma: Float, scratch: UnsafeMutablePointer<Float>) {
    guard sigma > 0.05 else { return }
    let radius = min(size - 1, Int(ceil(3 * sigma)))
    guard radius >= 1 else { return }
    var kernel = [Float](repeating: 0, count: 2 * radius + 1)
    var sum: Float = 0
    for i in -radius...radius {
        let w = exp(-Float(i * i) / (2 * sigma * sigma))
        kernel[i + radius] = w
        sum += w
    }
    for i in kernel.indices { kernel[i] /= sum }
    kernel.withUnsafeBufferPointer { k in
        // rows into scratch
        for y in 0..<size {
            let row = plane + y * size, out = scratch + y * size
            for x in 0..<size {
                var acc: Float = 0
                if x >= radius && x + radius < size {
                    for i in 0...(2 * radius) { acc += k[i] * row[x - radius + i] }
                } else {
                    for i in 0...(2 * radius) { acc += k[i] * row[min(size - 1, max(0, x - radius + i))] }
                }
                out[x] = acc
            }
        }
        // columns back into the plane
        for y in 0..<size {
            let out = plane + y * size
            for x in 0..<size { out[x] = 0 }
            for i in 0...(2 * radius) {
                let src = scratch + min(size - 1, max(0, y - radius + i)) * size
                let w = k[i]
                for x in 0..<size { out[x] += w * src[x] }
            }
        }
    }
}

/// Magnitude MR noise: |v + σ(n1 + i·n2)| (Rician in tissue, Rayleigh in air; Gudbjartsson and
/// Patz 1995).
package func addRicianNoise(_ plane: UnsafeMutablePointer<Float>, size: Int, sigma: Float, pr: inout PixelRandom) {
    for i in 0..<(size * size) {
        let re = plane[i] + sigma * pr.normal(), im = sigma * pr.normal()
        plane[i] = (re * re + im * im).squareRoot()
    }
}

/// Adds N(0, σ²) noise, spatially correlated by a Gaussian blur of `correlation` pixels (CT noise
/// is correlated by the reconstruction kernel); σ is the standard deviation after smoothing.
package func addCorrelatedNoise(_ plane: UnsafeMutablePointer<Float>, size: Int, sigma: Float, correlation: Float,
                                scratch: UnsafeMutablePointer<Float>, pr: inout PixelRandom) {
    let n = size * size
    let noise = scratch + n                          // the second scratch plane
    for i in 0..<n { noise[i] = pr.normal() }
    var gain: Float = 1
    if correlation > 0.05 {
        gaussianBlur(noise, size: size, sigma: correlation, scratch: scratch)
        // a blur by σ_b shrinks unit white noise to std 1/(2·σ_b·√π) in 2-D
        gain = max(1, 2 * correlation * Float.pi.squareRoot())
    }
    let s = sigma * gain
    for i in 0..<n { plane[i] += s * noise[i] }
}

/// atan2 to about 0.01 degrees (a minimax polynomial on [0, 1]), for per-pixel angles.
@inline(__always)
package func fastAtan2(_ y: Float, _ x: Float) -> Float {
    let ax = abs(x), ay = abs(y)
    let a = min(ax, ay) / max(max(ax, ay), 1e-20)
    let s = a * a
    var r = ((-0.046_496_474 * s + 0.159_314_22) * s - 0.327_622_76) * s * a + a
    if ay > ax { r = 1.570_796_3 - r }
    if x < 0 { r = 3.141_592_7 - r }
    return y < 0 ? -r : r
}
