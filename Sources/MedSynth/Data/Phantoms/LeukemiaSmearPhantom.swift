// Acute lymphoblastic leukaemia smear phantom: Wright-Giemsa peripheral blood at 100x like the
// Aria/Taleqani data set the paper uses (benign hematogones; early pre-B, pre-B and pro-B ALL).
//
// Facts (../../../../../shared/notes/phantoms.md §2): red cells 7-8 µm, pink to brick red, central
// pallor a third of the diameter; platelets 1.5-3 µm, purple granules; lymphocytes 8-12 µm,
// lymphoblasts 10-20 µm with sparse deep-blue cytoplasm, fine chromatin, variable nucleoli and
// indented nuclei; hematogones with condensed chromatin, scant cytoplasm and inconspicuous
// nucleoli; a whitish background; nucleus R ≤ 166, G ≤ 153 of 255. The subtypes are weakly visual
// (L1/L2 morphology does not predict the immunophenotype), so the classes differ in overlapping
// distributions of size, nuclear-cytoplasmic ratio, chromatin, nucleoli and nuclear contour.
//
// Colour comes from Beer-Lambert absorption: three stain densities (haemoglobin/eosin, nuclear
// azure, basophilic cytoplasm) times their optical densities per channel, I = I₀·exp(−Σ dₖ·ODₖ),
// so overlapping cells darken as real ones do. Stain strength and hue, illumination colour and
// vignetting, focus blur and sensor noise vary per image, independently of the class.
//
// The mask marks the lymphoid cells, nucleus and cytoplasm: every class is defined by them (they
// are present in benign images too, as hematogones), and the nuclear-cytoplasmic ratio, one of
// the class features, needs the whole cell; the nucleus is the darkest part of it.

import MedSynthCore

import Glibc

enum LeukemiaSmearPhantom {
    static let classNames = ["benign", "early", "pre", "pro"]
    static let defaultCounts = [504, 985, 963, 804]

    /// Difficulty knobs, all in one place. Class features are per-class means (benign, early, pre,
    /// pro) pulled towards their average by `separation` (1 = the means below, 0 = no difference),
    /// each image drawing uniformly within ± the spread.
    enum Knobs {
        static let separation: Float = 1.0
        static let cellRadius: ([Float], Float) = ([5.2, 6.3, 6.9, 7.6], 0.9)          // µm
        static let nuclearFraction: ([Float], Float) = ([0.84, 0.8, 0.77, 0.72], 0.06) // nucleus / cell area
        static let nuclearDensity: ([Float], Float) = ([1.9, 1.55, 1.45, 1.3], 0.2)     // stain density
        static let chromatinContrast: ([Float], Float) = ([0.42, 0.17, 0.22, 0.19], 0.07)
        static let chromatinGrain: ([Float], Float) = ([1.4, 0.8, 0.9, 0.9], 0.2)      // µm
        static let cytoplasmDensity: ([Float], Float) = ([0.45, 0.55, 0.65, 0.7], 0.15)
        static let nucleoli: [Float] = [0.05, 0.4, 0.6, 0.85]                          // probability
        static let indentation: [Float] = [0.08, 0.25, 0.35, 0.55]                     // probability of a cleft
        static let vacuoles: [Float] = [0, 0.05, 0.1, 0.25]
        /// Field of view (µm across), focus blur (pixels at 128 px), sensor noise.
        static let fieldOfView: (Float, Float) = (45, 65)
        static let blur: (Float, Float) = (0.3, 1.1)
        static let noise: (Float, Float) = (0.006, 0.025)
    }

    /// Optical densities per channel (R, G, B) at unit stain density.
    private static let haemoglobin: (Float, Float, Float) = (0.12, 0.62, 0.45)
    private static let azure: (Float, Float, Float) = (0.75, 1.05, 0.35)
    private static let basophil: (Float, Float, Float) = (0.5, 0.32, 0.1)

    private static func feature(_ f: ([Float], Float), _ label: Int, _ rng: RandomGenerator) -> Float {
        let mean = f.0.reduce(0, +) / Float(f.0.count)
        return mean + Knobs.separation * (f.0[label] - mean) + rng.uniform(-f.1, f.1)
    }

    private static func probability(_ p: [Float], _ label: Int) -> Float {
        let mean = p.reduce(0, +) / Float(p.count)
        return mean + Knobs.separation * (p[label] - mean)
    }

    static func render(label: Int, canvas: PhantomCanvas, rng: RandomGenerator) {
        let size = canvas.size, n = canvas.plane
        let fov = rng.uniform(Knobs.fieldOfView.0, Knobs.fieldOfView.1)
        let frame = PixelFrame(size: size, unitsPerPixel: fov / Float(size), originX: 0, originY: 0)
        let hb = canvas.channel(0), nuc = canvas.channel(1), cyt = canvas.channel(2)
        var pr = PixelRandom(rng)

        // plasma: a faint even stain
        let plasma = rng.uniform(0.02, 0.12)
        for i in 0..<n { hb[i] = plasma; nuc[i] = plasma * 0.3 }

        // lymphoid cells first (so red cells can avoid them), drawn last
        var cells: [(x: Float, y: Float, r: Float)] = []
        let count = rng.chance(0.6) ? 1 : rng.chance(0.75) ? 2 : 3
        for c in 0..<count {
            let r = max(3.5, feature(Knobs.cellRadius, label, rng))
            var (x, y) = (fov * rng.uniform(0.3, 0.7), fov * rng.uniform(0.3, 0.7))
            if c > 0 {
                for _ in 0..<20 {
                    (x, y) = (fov * rng.uniform(0.05, 0.95), fov * rng.uniform(0.05, 0.95))
                    if cells.allSatisfy({ hypot($0.x - x, $0.y - y) > ($0.r + r) * 0.9 }) { break }
                }
            }
            cells.append((x, y, r))
        }

        // red cells: a random packing, denser in thick parts of the smear
        let crowding = rng.uniform(0.25, 0.85)
        let target = Int(crowding * fov * fov / 50)
        var placed: [(Float, Float, Float)] = []
        for _ in 0..<(target * 3) where placed.count < target {
            let r = rng.uniform(3.4, 4.3)
            let x = rng.uniform(-r, fov + r), y = rng.uniform(-r, fov + r)
            let overlap = placed.contains { hypot($0.0 - x, $0.1 - y) < ($0.2 + r) * rng.uniform(0.75, 1.0) }
            let onCell = cells.contains { hypot($0.x - x, $0.y - y) < ($0.r + r) * 0.9 } && !rng.chance(0.25)
            if overlap || onCell { continue }
            placed.append((x, y, r))
            drawRedCell(x: x, y: y, r: r, into: hb, frame: frame, size: size, rng: rng)
        }
        // platelets: small purple granular bodies
        for _ in 0..<rng.int(0, 5) {
            let x = rng.uniform(0, fov), y = rng.uniform(0, fov), r = rng.uniform(0.8, 1.5)
            let blob = Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(0.8, 1.25), roughness: 0.3, rng: rng)
            let grain = FractalNoise(x0: x - 3, y0: y - 3, extent: 6, cell: 0.5, octaves: 1, rng: rng)
            let d = rng.uniform(0.6, 1.1)
            paint(blob, frame: frame, size: size) { i, px, py, a in
                let (u, v) = frame.point(px, py)
                nuc[i] += a * d * max(0.2, 1 + 0.6 * grain.sample(u, v))
                hb[i] += a * 0.15
            }
        }
        for cell in cells { drawLymphoid(cell, label: label, hb: hb, nuc: nuc, cyt: cyt, mask: canvas.mask, frame: frame, size: size, rng: rng) }

        // optics: stain strength and hue, illumination, vignetting, then blur and noise
        let strength = (rng.uniform(0.8, 1.2), rng.uniform(0.75, 1.25), rng.uniform(0.75, 1.25))
        func jitter(_ od: (Float, Float, Float), _ s: Float) -> (Float, Float, Float) {
            (s * od.0 * rng.uniform(0.85, 1.15), s * od.1 * rng.uniform(0.85, 1.15), s * od.2 * rng.uniform(0.85, 1.15))
        }
        let odH = jitter(haemoglobin, strength.0), odN = jitter(azure, strength.1), odC = jitter(basophil, strength.2)
        let light = rng.uniform(0.88, 0.98)
        let tint = (light * rng.uniform(0.95, 1.02), light * rng.uniform(0.93, 1.0), light * rng.uniform(0.95, 1.03))
        let vignette = rng.uniform(0, 0.18)
        let red = canvas.channel(0), green = canvas.channel(1), blue = canvas.channel(2)
        for py in 0..<size {
            for px in 0..<size {
                let i = py * size + px
                let u = 2 * (Float(px) + 0.5) / Float(size) - 1, v = 2 * (Float(py) + 0.5) / Float(size) - 1
                let lamp = 1 - vignette * (u * u + v * v) * 0.5
                let (h, k, c) = (hb[i], nuc[i], cyt[i])
                red[i] = tint.0 * lamp * exp(-(h * odH.0 + k * odN.0 + c * odC.0))
                green[i] = tint.1 * lamp * exp(-(h * odH.1 + k * odN.1 + c * odC.1))
                blue[i] = tint.2 * lamp * exp(-(h * odH.2 + k * odN.2 + c * odC.2))
            }
        }
        let sigma = rng.uniform(Knobs.blur.0, Knobs.blur.1) * Float(size) / 128
        let noise = rng.logUniform(Knobs.noise.0, Knobs.noise.1)
        for ch in 0..<3 {
            let plane = canvas.channel(ch)
            gaussianBlur(plane, size: size, sigma: sigma, scratch: canvas.scratch)
            for i in 0..<n { plane[i] += noise * (0.5 + plane[i]) * pr.normal() }
        }
    }

    /// Calls body(index, px, py, coverage) for the pixels a blob covers.
    private static func paint(_ blob: Blob, frame: PixelFrame, size: Int, _ body: (Int, Int, Int, Float) -> Void) {
        let b = frame.pixelBounds(x: blob.cx, y: blob.cy, radius: blob.extent, size: size)
        guard b.x0 < b.x1 && b.y0 < b.y1 else { return }
        for py in b.y0..<b.y1 {
            for px in b.x0..<b.x1 {
                let (x, y) = frame.point(px, py)
                let a = coverage(blob.distance(x, y), frame.scale)
                if a > 0 { body(py * size + px, px, py, a) }
            }
        }
    }

    /// A biconcave red cell: haemoglobin density highest at the rim, a central pallor a third of
    /// the diameter across.
    private static func drawRedCell(x: Float, y: Float, r: Float, into hb: UnsafeMutablePointer<Float>,
                                    frame: PixelFrame, size: Int, rng: RandomGenerator) {
        let blob = Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(0.9, 1.12), angle: rng.uniform(0, 3.14),
                        roughness: rng.chance(0.1) ? 0.12 : 0.03, harmonics: 6, rng: rng)
        let density = rng.uniform(0.55, 0.95), pallor = rng.uniform(0.35, 0.75), pallorRadius = r * rng.uniform(0.28, 0.4)
        paint(blob, frame: frame, size: size) { i, px, py, a in
            let (u, v) = frame.point(px, py)
            let d2 = ((u - x) * (u - x) + (v - y) * (v - y)) / (pallorRadius * pallorRadius)
            hb[i] += a * density * (1 - pallor * exp(-d2))
        }
    }

    /// A lymphoid cell: cytoplasm, then the nucleus (contour, chromatin, nucleoli) over it.
    private static func drawLymphoid(_ cell: (x: Float, y: Float, r: Float), label: Int, hb: UnsafeMutablePointer<Float>,
                                     nuc: UnsafeMutablePointer<Float>, cyt: UnsafeMutablePointer<Float>,
                                     mask: UnsafeMutablePointer<Float>, frame: PixelFrame, size: Int, rng: RandomGenerator) {
        let body = Blob(cx: cell.x, cy: cell.y, radius: cell.r, aspect: rng.uniform(0.9, 1.12), angle: rng.uniform(0, 3.14),
                        roughness: rng.uniform(0.04, 0.12), harmonics: 6, rng: rng)
        let fraction = min(0.95, max(0.5, feature(Knobs.nuclearFraction, label, rng)))
        let rn = cell.r * fraction.squareRoot()
        let offset = (cell.r - rn) * rng.uniform(0, 0.85), angle = rng.uniform(0, 6.283)
        let nx = cell.x + offset * cos(angle), ny = cell.y + offset * sin(angle)
        let nucleus = Blob(cx: nx, cy: ny, radius: rn, aspect: rng.uniform(0.88, 1.15), angle: rng.uniform(0, 3.14),
                           roughness: rng.uniform(0.03, 0.1), harmonics: 5, rng: rng)
        // a cleft: a small disc bitten out of the nuclear outline
        var cleft: Blob? = nil
        if rng.chance(probability(Knobs.indentation, label)) {
            let a = rng.uniform(0, 6.283), cr = rn * rng.uniform(0.25, 0.45)
            cleft = Blob(cx: nx + (rn + cr * 0.25) * cos(a), cy: ny + (rn + cr * 0.25) * sin(a), radius: cr, rng: rng)
        }
        let density = max(0.6, feature(Knobs.nuclearDensity, label, rng))
        let contrast = max(0.03, feature(Knobs.chromatinContrast, label, rng))
        let grain = max(0.4, feature(Knobs.chromatinGrain, label, rng))
        let cytoplasm = max(0.1, feature(Knobs.cytoplasmDensity, label, rng))
        let chromatin = FractalNoise(x0: nx - rn - 2, y0: ny - rn - 2, extent: 2 * rn + 4, cell: grain, octaves: 2, rng: rng)
        var nucleoli: [(Float, Float, Float)] = []
        if rng.chance(probability(Knobs.nucleoli, label)) {
            for _ in 0..<rng.int(1, label == 3 ? 3 : 2) {
                let a = rng.uniform(0, 6.283), d = rn * rng.uniform(0, 0.55)
                nucleoli.append((nx + d * cos(a), ny + d * sin(a), rng.uniform(0.55, 1.2)))
            }
        }
        var vacuoles: [(Float, Float, Float)] = []
        if rng.chance(probability(Knobs.vacuoles, label)) {
            for _ in 0..<rng.int(1, 4) {
                let a = rng.uniform(0, 6.283), d = rng.uniform(rn, cell.r * 0.95)
                vacuoles.append((cell.x + d * cos(a), cell.y + d * sin(a), rng.uniform(0.3, 0.7)))
            }
        }
        let pixel = frame.scale
        paint(body, frame: frame, size: size) { i, px, py, a in
            let (u, v) = frame.point(px, py)
            mask[i] = max(mask[i], a)
            hb[i] *= 1 - 0.7 * a                                        // the cell lies over plasma and red cells
            var c = cytoplasm * (1 + 0.15 * chromatin.sample(u * 0.5, v * 0.5))
            for (vx, vy, vr) in vacuoles { c *= 1 - 0.8 * coverage(hypot(u - vx, v - vy) - vr, pixel) }
            var dn = nucleus.distance(u, v)
            if let cleft { dn = max(dn, -cleft.distance(u, v)) }
            let inNucleus = coverage(dn, pixel)
            cyt[i] += a * c * (1 - inNucleus)
            guard inNucleus > 0 else { return }
            var k = density * max(0.25, 1 + contrast * chromatin.sample(u, v))
            for (qx, qy, qr) in nucleoli {
                let dq = hypot(u - qx, v - qy) - qr
                k *= 1 - 0.55 * coverage(dq, pixel)
            }
            nuc[i] += inNucleus * k
            cyt[i] += inNucleus * 0.25 * c
        }
    }
}
