// SARS-CoV-2 chest CT phantom: axial slices in a lung window like the Soares (São Paulo) data set
// the paper uses: COVID-19 and non-COVID (healthy or other lung disease).
//
// Drawn in Hounsfield units, then windowed (level −600/width 1600 or −500/1500, mapped to [0, 1]).
// Facts (../../../../../shared/notes/phantoms.md §3): aerated lung −850…−910 HU, denser where
// dependent; fat −50…−100, muscle +40, blood 45-65, bone 700+; trachea 13-25 mm; ascending aorta
// 31 mm, descending 24-25 mm, main pulmonary artery 25 mm; secondary lobules 1-2.5 cm; the
// table visible under the patient. COVID-19: ground-glass opacities (−450…−700 HU) in 87 %,
// peripheral 82 %, posterior 82 %, lower lobes 90 %, bilateral 76 %; vessels stay visible through
// ground glass and vanish in consolidation (12-55 %); crazy paving = septal lines over ground glass;
// sometimes a reverse halo. Non-COVID: normal lungs or another finding (a nodule, emphysema,
// dependent atelectasis, an effusion, a lobar pneumonia, basal reticulation); dependent
// atelectasis and reticulation mimic COVID. The slice level, habitus, position, window, noise
// (σ 15-60 HU, correlated) and blur vary independently of the class, except that COVID slices come
// from the lower two thirds of the chest, where the disease is.
//
// The mask marks the opacities (COVID) or the finding (non-COVID); normal slices have none.

import MedSynthCore

import Glibc

enum ChestCTPhantom {
    static let classNames = ["covid", "non_covid"]
    static let defaultCounts = [1252, 1229]

    /// Difficulty knobs, all in one place.
    enum Knobs {
        /// Millimetres across the image.
        static let fieldOfView: (Float, Float) = (290, 370)
        /// COVID: number of opacities (uniform), their radius (mm, log-uniform), ground-glass HU.
        static let covidPatches: (Int, Int) = (2, 7)
        static let covidRadius: (Float, Float) = (10, 35)
        static let groundGlass: (Float, Float) = (-620, -330)
        static let bilateral: Float = 0.76
        static let peripheral: Float = 0.82
        static let crazyPaving: Float = 0.3           // per opacity
        static let consolidation: Float = 0.35        // per opacity
        /// Non-COVID: probabilities of normal lungs and of each finding (the rest share the remainder).
        static let normal: Float = 0.4
        static let findings: [(Finding, Float)] = [(.nodule, 0.2), (.emphysema, 0.15), (.atelectasis, 0.22), (.effusion, 0.13),
                                                   (.pneumonia, 0.15), (.reticulation, 0.15)]
        /// Image noise σ (HU, log-uniform) and blur (pixels at 128 px).
        static let noise: (Float, Float) = (15, 60)
        static let blur: (Float, Float) = (0.35, 0.8)
    }

    enum Finding { case nodule, emphysema, atelectasis, effusion, pneumonia, reticulation }

    static func render(label: Int, canvas: PhantomCanvas, rng: RandomGenerator) {
        let size = canvas.size, n = canvas.plane
        let level = label == 0 ? rng.uniform(0.3, 1.0) : rng.uniform(0.05, 1.0)
        let chest = Chest(level: level, rng: rng)
        let fov = max(rng.uniform(Knobs.fieldOfView.0, Knobs.fieldOfView.1), 2.2 * chest.body.extent + 10)   // the whole chest in view
        let frame = PixelFrame(size: size, unitsPerPixel: fov / Float(size),
                               originX: Float(size) * (0.5 + rng.uniform(-0.04, 0.04)),
                               originY: Float(size) * (0.5 + rng.uniform(-0.06, 0.02)), angle: rng.uniform(-0.06, 0.06))
        let image = canvas.channel(0), lung = canvas.scratch, vessels = canvas.scratch + n
        // 1. everything but the lung parenchyma, and where the lungs are
        for py in 0..<size {
            for px in 0..<size {
                let (x, y) = frame.point(px, py)
                let (hu, lungFraction) = chest.sample(x, y, pixel: frame.scale)
                image[py * size + px] = hu
                lung[py * size + px] = lungFraction
            }
        }
        // 2. the pulmonary vessels, as coverage
        vessels.update(repeating: 0, count: n)
        chest.paintVessels(into: vessels, frame: frame, size: size)
        // 3. parenchyma with lesions and vessels, blended into the lungs
        let lesions = ChestLesions(label: label, chest: chest, rng: rng)
        var pr = PixelRandom(rng)
        for py in 0..<size {
            for px in 0..<size {
                let i = py * size + px
                let f = lung[i]
                guard f > 0 else { continue }
                let (x, y) = frame.point(px, py)
                var hu = chest.parenchyma(x, y) + 12 * pr.normal()
                let (weight, target, hide, mark) = lesions.sample(x, y, pixel: frame.scale)
                hu = mix(hu, target, weight)
                hu = mix(hu, 40, vessels[i] * (1 - hide))
                image[i] = mix(image[i], hu, f)
                canvas.mask[i] = mark * min(1, f * 2)
            }
        }
        // 4. the scanner: blur, correlated noise, window
        let scale = Float(size) / 128
        gaussianBlur(image, size: size, sigma: rng.uniform(Knobs.blur.0, Knobs.blur.1) * scale, scratch: canvas.scratch)
        addCorrelatedNoise(image, size: size, sigma: rng.logUniform(Knobs.noise.0, Knobs.noise.1), correlation: 0.7 * scale,
                           scratch: canvas.scratch, pr: &pr)
        let (windowLevel, windowWidth): (Float, Float) = rng.chance(0.5) ? (-600, 1600) : (-500, 1500)
        let wl = windowLevel + rng.uniform(-40, 40), ww = windowWidth * rng.uniform(0.93, 1.07)
        let padded = rng.chance(0.6), circle = fov * rng.uniform(0.5, 0.56)
        for py in 0..<size {
            for px in 0..<size {
                let i = py * size + px
                var v = (image[i] - (wl - ww / 2)) / ww
                if padded {
                    let (x, y) = frame.point(px, py)
                    let dx = x - chest.isocentre.0, dy = y - chest.isocentre.1
                    if dx * dx + dy * dy > circle * circle { v = 0 }
                }
                image[i] = clamp01(v)
            }
        }
    }
}

// MARK: - anatomy

/// One chest: its outline, wall, bones, mediastinum, lungs and vessel trees at one slice level
/// (0 apex ... 1 lung bases and liver dome). Millimetres, x to the image right, y posterior.
struct Chest {
    let level: Float
    let body: Blob, cavity: Blob
    let back: Float                       // the flat back, where the patient lies on the table
    let isocentre: (Float, Float)
    let fat: Float, muscle: Float, wall: Float
    let ribs: [Blob]
    let spineY: Float, spineR: Float
    let mediastinumHalf: Float
    let heart: Blob?
    let mediastinum: (x0: Float, y0: Float, r0: Float, x1: Float, y1: Float, r1: Float)
    private(set) var vessels: [(x0: Float, y0: Float, x1: Float, y1: Float, r0: Float, r1: Float)] = []
    private var organs: [(shape: Blob, hu: Float, reach: Float)] = []
    private let texture: FractalNoise
    let lungHU: Float, gradient: Float

    init(level L: Float, rng: RandomGenerator) {
        level = L
        let a = rng.uniform(140, 180) * (0.88 + 0.12 * smoothstep(0, 0.4, L)), b = rng.uniform(95, 128)
        body = Blob(cx: 0, cy: 0, radius: (a * b).squareRoot(), aspect: (a / b).squareRoot(), roughness: 0.04, harmonics: 4, rng: rng)
        back = b * rng.uniform(0.82, 0.92)
        isocentre = (rng.uniform(-15, 15), rng.uniform(-10, 20))
        fat = rng.logUniform(4, 26)
        muscle = rng.uniform(5, 11)
        wall = fat + muscle + 6
        let ca = a - wall, cb = b - wall * 0.8
        cavity = Blob(cx: 0, cy: -wall * 0.15, radius: (ca * cb).squareRoot(), aspect: (ca / cb).squareRoot(),
                      roughness: 0.03, harmonics: 4, rng: rng)
        // ribs along the inner chest wall
        var ribs: [Blob] = []
        let ribCount = rng.int(7, 11)
        for i in 0..<ribCount {
            let t = (Float(i) + rng.uniform(0.2, 0.8)) / Float(ribCount)
            let phi = -Float.pi * 0.95 + t * Float.pi * 1.9 + Float.pi / 2     // skip the sternum and spine
            let c = cos(phi), s = sin(phi)
            let ex = (ca + 3) * c, ey = (cb + 3) * s - wall * 0.15
            ribs.append(Blob(cx: ex, cy: ey, radius: rng.uniform(4.5, 6.5), aspect: 1.5, angle: phi + Float.pi / 2, rng: rng))
        }
        self.ribs = ribs
        spineR = rng.uniform(15, 19)
        spineY = cb - wall * 0.15 - spineR * 0.35
        // the mediastinum widens from the upper chest to the heart
        mediastinumHalf = mix(20, 38, smoothstep(0.2, 0.7, L)) * rng.uniform(0.85, 1.15)
        let top = -cb - wall * 0.15, height = spineY - top
        // a teardrop: narrow behind the sternum, widest around the airway and great vessels
        let front = rng.uniform(8, 16)
        mediastinum = (rng.uniform(-5, 8), top + front, front, rng.uniform(-2, 6), spineY - spineR - 8, mediastinumHalf)
        heart = L > 0.55 ? Blob(cx: rng.uniform(10, 25), cy: -cb * 0.2, radius: rng.uniform(48, 58) * smoothstep(0.5, 0.75, L),
                                aspect: 1.2, angle: -0.5, roughness: 0.05, rng: rng) : nil
        lungHU = rng.uniform(-900, -840)
        gradient = rng.uniform(30, 110)
        texture = FractalNoise(x0: -250, y0: -250, extent: 500, cell: 6, octaves: 2, rng: rng)
        organs = Self.mediastinalOrgans(level: L, cavityB: cb, spineY: spineY, spineR: spineR, rng: rng).map { ($0.shape, $0.hu, $0.shape.extent + 25) }
        vessels = Self.vesselTrees(chest: self, rng: rng)
    }

    /// Organs over the mediastinal fat: airways, great vessels, heart chambers, oesophagus, liver.
    private static func mediastinalOrgans(level L: Float, cavityB cb: Float, spineY: Float, spineR: Float,
                                          rng: RandomGenerator) -> [(shape: Blob, hu: Float)] {
        var list: [(Blob, Float)] = []
        func disc(_ x: Float, _ y: Float, _ r: Float, _ hu: Float, aspect: Float = 1, angle: Float = 0) {
            list.append((Blob(cx: x, cy: y, radius: r, aspect: aspect, angle: angle, roughness: 0.02, harmonics: 3, rng: rng), hu))
        }
        let blood = rng.uniform(38, 55), front = spineY - spineR
        disc(3, front - 8, 6, 35)                                              // oesophagus
        if L < 0.45 {                                                          // trachea
            disc(0, front - 24, rng.uniform(8, 11), 25)
            disc(0, front - 24, rng.uniform(6.5, 8.5), -1000)
        } else if L < 0.6 {                                                    // main bronchi
            for side: Float in [-1, 1] { disc(side * 15, front - 22, 8, 25); disc(side * 15, front - 22, 6, -1000) }
        }
        if L < 0.3 {                                                           // great vessels of the upper chest
            disc(-14, front - 48, 7, blood); disc(8, front - 46, 5, blood); disc(18, front - 38, 5, blood); disc(-28, front - 42, 8, blood)
        } else if L < 0.4 {                                                    // aortic arch
            list.append((Blob(cx: 5, cy: front - 40, radius: 16, aspect: 1.6, angle: 0.9, roughness: 0.02, rng: rng), blood))
            disc(-28, front - 45, 9, blood)
        } else if L < 0.65 {                                                   // ascending and descending aorta, pulmonary trunk, SVC
            disc(-12, front - 52, 15.5, blood)
            disc(22, front + 6, 12.5, blood)
            disc(18, front - 52, 13, blood)
            list.append((Blob(cx: 30, cy: front - 38, radius: 11, aspect: 1.8, angle: 0.8, roughness: 0.02, rng: rng), blood))
            disc(-32, front - 48, 9, blood)
        } else {                                                               // descending aorta, IVC and the liver dome low down
            disc(22, front + 6, 12, blood)
            if L > 0.85 {
                let r = 90 * smoothstep(0.85, 1.0, L)
                list.append((Blob(cx: -70, cy: 10, radius: r, aspect: 1.1, roughness: 0.05, rng: rng), 60))
                disc(-20, front - 4, 12, blood)
            }
            if L > 0.92 { disc(70, 20, 50 * smoothstep(0.92, 1, L), 45) }     // spleen / stomach wall
        }
        return list
    }

    /// Vessel trees from each hilum: branches shrinking by ~0.75 per generation; seen in an axial
    /// slice as lines and dots thinning towards the pleura.
    private static func vesselTrees(chest: Chest, rng: RandomGenerator) -> [(x0: Float, y0: Float, x1: Float, y1: Float, r0: Float, r1: Float)] {
        var out: [(x0: Float, y0: Float, x1: Float, y1: Float, r0: Float, r1: Float)] = []
        var stack: [(Float, Float, Float, Float, Int)] = []            // x, y, angle, radius, generation
        for side: Float in [-1, 1] {
            let hx = side * (chest.mediastinumHalf + 4), hy = chest.spineY - chest.spineR - rng.uniform(30, 50)
            // trunks fan out over the lung; each branches twice, and only some branches stay in the slice
            let trunks = rng.int(4, 6)
            for t in 0..<trunks {
                let spread = (Float(t) + rng.uniform(0.2, 0.8)) / Float(trunks) * 2.4 - 1.2
                stack.append((hx, hy, (side > 0 ? 0 : Float.pi) + side * spread * 1.3, rng.uniform(2.2, 3.6), 0))
            }
            while let (x, y, angle, r, g) = stack.popLast() {
                let length = rng.uniform(14, 30) * (1 - 0.25 * Float(g))
                let x1 = x + length * cos(angle), y1 = y + length * sin(angle), r1 = r * rng.uniform(0.6, 0.72)
                guard chest.cavityDistance(x1, y1) < -2 else { continue }
                out.append((x, y, x1, y1, r, r1))
                if g < 2 {
                    for turn in [rng.uniform(0.3, 0.7), -rng.uniform(0.3, 0.7)] where rng.chance(0.75) {
                        stack.append((x1, y1, angle + turn, r1, g + 1))
                    }
                }
            }
            // vessels crossing the slice: dots, larger near the hilum
            for _ in 0..<rng.int(90, 140) {
                let x = hx + side * rng.uniform(5, 150), y = rng.uniform(-120, 120)
                guard chest.cavityDistance(x, y) < -1 else { continue }
                let d = hypot(x - hx, y - hy)
                let r = 0.45 + 3.2 * exp(-d / 40) * rng.uniform(0.4, 1.2)
                // a short in-plane stretch for some: branching vessels cut obliquely
                let a = rng.uniform(0, 6.28), l = rng.chance(0.4) ? rng.uniform(2, 8) : 0
                out.append((x, y, x + l * cos(a), y + l * sin(a), r, r * 0.8))
            }
        }
        return out
    }

    /// Paints vessel coverage (0...1) into `plane`.
    func paintVessels(into plane: UnsafeMutablePointer<Float>, frame: PixelFrame, size: Int) {
        for v in vessels {
            let cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2
            let reach = hypot(v.x1 - v.x0, v.y1 - v.y0) / 2 + max(v.r0, v.r1)
            let b = frame.pixelBounds(x: cx, y: cy, radius: reach, size: size)
            guard b.x0 < b.x1 && b.y0 < b.y1 else { continue }
            for py in b.y0..<b.y1 {
                for px in b.x0..<b.x1 {
                    let (x, y) = frame.point(px, py)
                    let (d, t) = segmentDistance(x, y, v.x0, v.y0, v.x1, v.y1)
                    let r = mix(v.r0, v.r1, t)
                    // thin vessels lose contrast to partial volume (coverage of a pixel)
                    let a = coverage(d - r, frame.scale) * min(1, 2 * r / frame.scale + 0.15)
                    let i = py * size + px
                    plane[i] = max(plane[i], a)
                }
            }
        }
    }

    /// Aerated lung HU at (x, y): denser towards the dependent (posterior) lung, fine texture.
    @inline(__always)
    func parenchyma(_ x: Float, _ y: Float) -> Float {
        lungHU + gradient * smoothstep(-60, 90, y) + 18 * texture.sample(x, y)
    }

    /// Signed distance to the thoracic cavity (negative inside): the cavity's own outline, kept at
    /// least most of a chest wall inside the body and above the flat back.
    @inline(__always)
    func cavityDistance(_ x: Float, _ y: Float) -> Float {
        max(cavity.distance(x, y), max(body.distance(x, y), y - back) + 0.8 * wall)
    }

    /// Signed distance to the mediastinum's outline (negative inside).
    @inline(__always)
    func mediastinalDistance(_ x: Float, _ y: Float) -> Float {
        let m = mediastinum
        let (d, t) = segmentDistance(x, y, m.x0, m.y0, m.x1, m.y1)
        return d - mix(m.r0, m.r1, t)
    }

    /// How much of the pixel is lung (0...1): inside the cavity, outside the mediastinum, spine and heart.
    @inline(__always)
    func lungFraction(_ x: Float, _ y: Float, pixel: Float) -> Float {
        var f = coverage(cavityDistance(x, y), pixel)
        guard f > 0 else { return 0 }
        // the mediastinum: a band around the midline from the sternum to the spine, wider low down
        f *= coverage(-mediastinalDistance(x, y), pixel)
        f *= coverage(-(hypot(x, y - spineY) - spineR - 12), pixel)
        if let heart { f *= coverage(-(heart.distance(x, y) - 4), pixel) }
        for organ in organs where organ.hu > 50 && abs(x - organ.shape.cx) < organ.reach && abs(y - organ.shape.cy) < organ.reach {
            f *= coverage(-organ.shape.distance(x, y), pixel)                                            // liver, spleen
        }
        return f
    }

    /// HU of everything but the lung parenchyma, and the lung fraction.
    func sample(_ x: Float, _ y: Float, pixel: Float) -> (Float, Float) {
        // table: a curved shell under the flat back
        let tableY = back + 12 + 0.0006 * x * x
        var hu: Float = -1000
        let inTable = coverage(abs(y - tableY - 6) - 6, pixel) * coverage(abs(x) - 230, pixel)
        hu = mix(hu, -300 + 500 * coverage(abs(abs(y - tableY - 6) - 5) - 1, pixel), inTable)
        let outside = max(body.distance(x, y), y - back)
        guard outside < pixel else { return (hu, 0) }
        let depth = -outside
        var h = mix(hu, 20, coverage(outside, pixel))                                  // skin
        h = mix(h, -95 + 15 * texture.sample(x * 2, y * 2), coverage(2 - depth, pixel))   // subcutaneous fat
        let cd = cavityDistance(x, y)
        let muscleStart = -cd - muscle - 8                                              // muscle lies just outside the ribs
        h = mix(h, 45, coverage(-muscleStart, pixel) * coverage(fat - depth + 2, pixel))
        // paraspinal muscles and the posterior elements of the spine
        let paraspinal = hypot((x) / 1.6, y - spineY - spineR - 14) - 26
        h = mix(h, 45, coverage(paraspinal, pixel) * coverage(-(depth - 3), pixel))
        for rib in ribs where abs(x - rib.cx) < 14 && abs(y - rib.cy) < 14 {
            let d = rib.distance(x, y)
            if d < 3 {
                h = mix(h, 800, coverage(d, pixel))
                h = mix(h, 250, coverage(d + 1.5, pixel))
            }
        }
        // thoracic cavity: mediastinal fat; the lungs are blended in later
        h = mix(h, -80, coverage(cd, pixel))
        if let heart {
            h = mix(h, -90, coverage(heart.distance(x, y) - 3, pixel))                 // pericardial fat
            h = mix(h, 42, coverage(heart.distance(x, y), pixel))
        }
        for organ in organs where abs(x - organ.shape.cx) < organ.reach && abs(y - organ.shape.cy) < organ.reach {
            let d = organ.shape.distance(x, y)
            if d < 2 { h = mix(h, organ.hu, coverage(d, pixel)) }
        }
        // vertebra: cortical ring, cancellous body, canal, spinous process
        let dv = hypot(x, y - spineY) - spineR
        h = mix(h, 700, coverage(dv, pixel))
        h = mix(h, 230, coverage(dv + 2, pixel))
        let canal = hypot(x, y - spineY - spineR - 9) - 8
        h = mix(h, 700, coverage(canal - 4, pixel))
        h = mix(h, 30, coverage(canal, pixel))
        let (ds, _) = segmentDistance(x, y, 0, spineY + spineR + 16, 0, spineY + spineR + 40)
        h = mix(h, 600, coverage(ds - 3.5, pixel))
        return (h, lungFraction(x, y, pixel: pixel))
    }
}
