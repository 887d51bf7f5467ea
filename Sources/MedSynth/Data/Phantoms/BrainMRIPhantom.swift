// Brain tumour MRI phantom: axial T1 contrast-enhanced slices like the Nickparvar data set the
// paper uses (figshare T1+C, SARTAJ, Br35H): glioma, meningioma, no tumour, pituitary.
//
// Anatomy in millimetres (facts in ../../../../../shared/notes/phantoms.md §1): head breadth
// 140-160 mm and length 176-196 mm; scalp with skin and bright subcutaneous fat; skull 4.7 mm
// (temporal) to 8 mm (frontal, occipital) with marrow (diploë) below fat brightness; CSF dull; grey
// matter darker than white matter on T1; sulci as CSF clefts lined by a 2.5-3 mm cortex; lateral
// ventricles with an Evans index near 0.25; deep grey nuclei, Sylvian fissure, falx; at the skull
// base (low slices) orbits, sphenoid sinus, sella with the pituitary gland, cavernous sinuses,
// clivus, petrous bones, pons and cerebellum. Contrast brightens the gland, cavernous sinuses,
// choroid plexus and venous sinuses. The tumours are drawn in BrainMRILesions.swift.
//
// Nuisances: field of view, head position and rotation, slice level, head and ventricle size,
// tissue contrast, a blur (point-spread function), a TorchIO-like polynomial bias field, Rician
// noise, and the intensity scaling of an exported image. They are drawn independently of the
// class (the real set has source shortcuts: its no-tumour images all come from Br35H).

import MedSynthCore

import Glibc

enum BrainMRIPhantom {
    static let classNames = ["glioma", "meningioma", "notumor", "pituitary"]
    static let defaultCounts = [1621, 1645, 2000, 1757]
    static let glioma = 0, meningioma = 1, noTumour = 2, pituitary = 3

    /// Difficulty knobs, all in one place: ranges are sampled uniformly (sizes log-uniformly).
    /// Measured with simple_cnn at 64 px (see python/tests/test_phantoms.py and the README).
    enum Knobs {
        /// Millimetres across the image (figshare: 512 px at 0.49 mm ≈ 251 mm).
        static let fieldOfView: (Float, Float) = (180, 250)
        /// Head centre offset (fraction of the field of view) and rotation (radians).
        static let headShift: Float = 0.06
        static let headRotation: Float = 0.25
        /// Fraction of non-pituitary slices taken at the skull base (where the pituitary lies).
        static let lowSliceFraction: Float = 0.25
        /// Tumour radii in mm (glioma core, meningioma, pituitary adenoma half-height).
        static let gliomaRadius: (Float, Float) = (9, 26)
        static let meningiomaRadius: (Float, Float) = (8, 22)
        static let pituitaryRadius: (Float, Float) = (6, 15)
        /// Scales every lesion's contrast to its surroundings (1 = textbook).
        static let lesionContrast: (Float, Float) = (0.75, 1.0)
        /// Glioma: fraction with an enhancing rim around a necrotic core (the rest: diffuse, hypointense).
        static let gliomaEnhancingFraction: Float = 0.65
        /// Rician noise σ (fraction of the white-matter signal), bias field coefficient bound, blur (pixels at 128 px).
        static let noiseSigma: (Float, Float) = (0.015, 0.05)
        static let biasStrength: Float = 0.4
        static let blur: (Float, Float) = (0.3, 0.9)
    }

    static func render(label: Int, canvas: PhantomCanvas, rng: RandomGenerator) {
        let head = Head(label: label, rng: rng)
        let lesion = BrainLesion(label: label, head: head, rng: rng)
        let size = canvas.size
        // the whole head stays in the picture, however it is shifted
        let fov = max(rng.uniform(Knobs.fieldOfView.0, Knobs.fieldOfView.1), 2 * head.outline.extent / (1 - 2 * Knobs.headShift) + 6)
        let shift = Knobs.headShift * fov
        let frame = PixelFrame(size: size, unitsPerPixel: fov / Float(size),
                               originX: Float(size) / 2 + rng.uniform(-shift, shift) * Float(size) / fov,
                               originY: Float(size) / 2 + rng.uniform(-shift, shift) * Float(size) / fov,
                               angle: rng.uniform(-Knobs.headRotation, Knobs.headRotation))
        let image = canvas.channel(0), pixel = frame.scale
        for py in 0..<size {
            for px in 0..<size {
                let (x, y) = frame.point(px, py)
                var sample = head.sample(x, y, pixel: pixel, lesion: lesion)
                let cover = lesion.apply(x, y, &sample, head: head, pixel: pixel)
                image[py * size + px] = sample.value
                canvas.mask[py * size + px] = cover
            }
        }
        finish(canvas, rng: rng)
    }

    /// The acquisition: blur, bias field, Rician noise, then the intensity scaling of an export.
    private static func finish(_ canvas: PhantomCanvas, rng: RandomGenerator) {
        let size = canvas.size, n = canvas.plane, image = canvas.channel(0)
        let scale = Float(size) / 128
        gaussianBlur(image, size: size, sigma: rng.uniform(Knobs.blur.0, Knobs.blur.1) * scale, scratch: canvas.scratch)
        BiasField(order: 3, strength: Knobs.biasStrength, rng: rng).fill(canvas.scratch, size: size)
        for i in 0..<n { image[i] *= canvas.scratch[i] }
        var pr = PixelRandom(rng)
        addRicianNoise(image, size: size, sigma: rng.logUniform(Knobs.noiseSigma.0, Knobs.noiseSigma.1), pr: &pr)
        let gain = rng.uniform(0.85, 1.15), gamma = rng.uniform(0.8, 1.2)
        for i in 0..<n { image[i] = pow(clamp01(image[i] * gain), gamma) }
    }
}

// MARK: - anatomy

/// What the anatomy gives the lesion painter at one point.
struct BrainSample {
    var value: Float
    /// Depth below the inner surface of the skull (mm; negative in scalp and bone).
    var innerDepth: Float
    /// Depth below the brain surface (mm; negative outside the brain).
    var brainDepth: Float
    /// White-matter fraction (oedema spreads along white matter).
    var whiteMatter: Float
}

/// A shape painted over the cortex pattern: ventricles, nuclei, cisterns, skull-base parts.
private struct Structure {
    enum Shape {
        case blob(Blob)
        case capsules([(x: Float, y: Float, r: Float)])   // a tube through points with radii
    }
    enum Fill {
        case value(Float)
        case folia(Float, Float)      // cerebellar folia: fine stripes between two intensities
        case airCells(Float, Float)   // air with thin bony septa (ethmoid, mastoid)
    }
    let shape: Shape
    let fill: Fill
    let strength: Float               // 0...1: how visible at this slice level
    let x0: Float, x1: Float, y0: Float, y1: Float

    init(_ shape: Shape, _ fill: Fill, strength: Float = 1) {
        self.shape = shape
        self.fill = fill
        self.strength = strength
        switch shape {
        case .blob(let b):
            let e = b.extent + 2
            (x0, x1, y0, y1) = (b.cx - e, b.cx + e, b.cy - e, b.cy + e)
        case .capsules(let p):
            let r = (p.map { $0.r }.max() ?? 0) + 2
            (x0, x1, y0, y1) = (p.map { $0.x }.min()! - r, p.map { $0.x }.max()! + r, p.map { $0.y }.min()! - r, p.map { $0.y }.max()! + r)
        }
    }

    @inline(__always)
    func distance(_ x: Float, _ y: Float) -> Float {
        switch shape {
        case .blob(let b): return b.distance(x, y)
        case .capsules(let p):
            var best = Float.greatestFiniteMagnitude
            for i in 1..<p.count {
                let (d, t) = segmentDistance(x, y, p[i - 1].x, p[i - 1].y, p[i].x, p[i].y)
                best = min(best, d - mix(p[i - 1].r, p[i].r, t))
            }
            return best
        }
    }
}

/// One head: its random geometry, tissue intensities and slice level.
struct Head {
    let level: Float                       // 0 skull base ... 1 vertex
    let outline: Blob                      // the scalp surface
    let breadth: Float                     // outer half-breadth (mm), sets the brain's scale
    let skin: Float, fat: Float, muscle: Float, skullLateral: Float, skullAP: Float, diploe: Float, csfGap: Float
    let airValue: Float, skinValue: Float, fatValue: Float, muscleValue: Float, boneValue: Float, marrowValue: Float
    let csfValue: Float, gmValue: Float, wmValue: Float, deepValue: Float, enhanceValue: Float
    private let sulci: LatticeNoise, sulcalDepth: LatticeNoise, sulcalWarp: LatticeNoise
    private let sulcalCells: Int
    private let gyralSpacing: Float, sulcusDepth: Float, sulcusWidth: Float, cortex: Float
    private let texture: FractalNoise
    private let fissureFront: Float, fissureBack: Float   // the interhemispheric fissure runs for y < front or y > back
    private var structures: [Structure] = []

    init(label: Int, rng: RandomGenerator) {
        let K = BrainMRIPhantom.Knobs.self
        level = label == BrainMRIPhantom.pituitary ? rng.uniform(0.02, 0.28)
            : rng.chance(K.lowSliceFraction) ? rng.uniform(0.02, 0.3) : rng.uniform(0.3, 0.97)
        // head size: smaller and rounder towards the vertex, longer at the orbits
        let vertex = 1 - 0.22 * smoothstep(0.65, 1.0, level)
        let orbits: Float = level < 0.3 ? 1 + 0.06 * (1 - level / 0.3) : 1
        breadth = rng.uniform(70, 80) * vertex
        let length = rng.uniform(88, 98) * vertex * orbits * (1 - 0.06 * smoothstep(0.7, 1, level))
        outline = Blob(cx: 0, cy: 0, radius: (breadth * length).squareRoot(), aspect: (breadth / length).squareRoot(),
                       angle: 0, roughness: 0.035, harmonics: 4, rng: rng)
        skin = rng.uniform(1.0, 1.8)
        fat = rng.uniform(3, 6.5)
        muscle = level < 0.35 ? rng.uniform(3, 8) * (1 - level / 0.35) : 0
        let skullScale = rng.uniform(0.85, 1.15)
        skullLateral = 4.7 * skullScale
        skullAP = 8 * skullScale
        diploe = rng.uniform(0.3, 0.6)
        let atrophy = rng.uniform(0, 1)
        csfGap = 1 + 2.5 * atrophy

        // T1 contrast-enhanced intensities (white matter ≈ 0.62); contrast varies with the sequence
        wmValue = rng.uniform(0.58, 0.66)
        gmValue = wmValue - rng.uniform(0.13, 0.23)
        deepValue = mix(gmValue, wmValue, rng.uniform(0.35, 0.6))
        csfValue = rng.uniform(0.08, 0.17)
        fatValue = rng.uniform(0.82, 0.95)
        marrowValue = fatValue * rng.uniform(0.5, 0.72)
        skinValue = rng.uniform(0.4, 0.55)
        muscleValue = rng.uniform(0.28, 0.38)
        boneValue = rng.uniform(0.02, 0.07)
        airValue = 0
        enhanceValue = min(0.95, wmValue + rng.uniform(0.12, 0.28))

        // gyri: zero lines of a lattice noise, laid out around the brain and stretched radially
        gyralSpacing = rng.uniform(4.2, 5.5) * breadth / 75
        sulcalCells = max(8, Int((2 * Float.pi * 60 / gyralSpacing).rounded()))
        sulci = LatticeNoise(width: sulcalCells, height: 48, periodicX: true, rng: rng)
        sulcalDepth = LatticeNoise(width: sulcalCells, height: 2, periodicX: true, rng: rng)
        sulcalWarp = LatticeNoise(width: sulcalCells, height: 48, periodicX: true, rng: rng)
        sulcusDepth = rng.uniform(10, 18)
        sulcusWidth = 0.5 + 1.2 * atrophy
        cortex = rng.uniform(3, 4)
        texture = FractalNoise(x0: -120, y0: -120, extent: 240, cell: 8, octaves: 3, rng: rng)

        let s = breadth / 75
        if level >= 0.65 { (fissureFront, fissureBack) = (1000, -1000) }
        else if level >= 0.3 { (fissureFront, fissureBack) = (-38 * s, 36 * s) }
        else if level >= 0.15 { (fissureFront, fissureBack) = (-24 * s, 1000) }
        else { (fissureFront, fissureBack) = (-1000, 1000) }
        structures = Self.deepStructures(level: level, scale: s, ventricles: rng.uniform(0.8, 1.1) + 0.35 * atrophy, head: self, rng: rng)
    }

    /// Skull thickness in the direction (c, s) from the centre (thin temporal, thick frontal/occipital).
    @inline(__always)
    func skull(_ c: Float, _ s: Float) -> Float { skullLateral + (skullAP - skullLateral) * s * s }

    /// Scalp (skin, fat, temporalis muscle) thickness in the direction (c, s).
    @inline(__always)
    func scalp(_ c: Float, _ s: Float) -> Float { skin + fat + muscle * c * c }

    /// Distance from the centre to the inner surface of the skull in the direction (c, s).
    func innerRadius(_ c: Float, _ s: Float) -> Float {
        let probe = outline.radius * 2
        let r = probe - outline.distance(c * probe, s * probe)       // the outline's radius that way
        return r - scalp(c, s) - skull(c, s)
    }

    /// Tissue at (x, y): scalp, skull, CSF, cortex and deep structures (before any lesion).
    func sample(_ x: Float, _ y: Float, pixel: Float, lesion: BrainLesion) -> BrainSample {
        let rho = (x * x + y * y).squareRoot()
        let c = rho > 1e-6 ? x / rho : 1, s = rho > 1e-6 ? y / rho : 0
        let depth = -outline.distance(x, y)
        var out = BrainSample(value: airValue, innerDepth: -100, brainDepth: -100, whiteMatter: 0)
        if depth < -pixel { return out }
        // at the orbits the globes sit under the eyelids, in front of the skull
        let open = level < 0.15 ? smoothstep(0.8, 0.9, -s) * smoothstep(0.12, 0.2, abs(c)) * (1 - smoothstep(0.45, 0.55, abs(c))) : 0
        let tScalp = scalp(c, s) * (1 - 0.6 * open), tSkull = (skull(c, s) + lesion.skullThickening(c, s)) * (1 - open)
        let inner = depth - tScalp - tSkull
        out.innerDepth = inner
        let t = texture.sample(x, y)
        // scalp: skin, fat, temporalis muscle
        var v = mix(airValue, skinValue, coverage(-depth, pixel))
        v = mix(v, fatValue * (1 + 0.03 * t), coverage(skin - depth, pixel))
        if muscle > 0 { v = mix(v, muscleValue, coverage(skin + fat - depth, pixel) * smoothstep(0.3, 0.8, c * c)) }
        // skull: outer table, diploë, inner table
        let intoBone = depth - tScalp
        let mid = tSkull * 0.5, half = tSkull * diploe * 0.5
        v = mix(v, boneValue, coverage(-intoBone, pixel))
        v = mix(v, marrowValue * (1 + 0.08 * t), coverage(abs(intoBone - mid) - half, pixel))
        if inner > -pixel {
            v = mix(v, csfValue, coverage(-inner, pixel))
            let brainDepth = inner - csfGap
            out.brainDepth = brainDepth
            if brainDepth > -pixel {
                let (bx, by) = lesion.warp(x, y)
                let (tissue, wm) = brain(bx, by, depth: brainDepth, pixel: pixel, texture: t)
                v = mix(v, tissue, coverage(-brainDepth, pixel))
                out.whiteMatter = wm
            }
        }
        out.value = v
        return out
    }

    /// Cortex, sulci, white matter, the fissure and the deep structures at (x, y), `depth` mm
    /// below the brain surface. Returns the intensity and the white-matter fraction.
    private func brain(_ x: Float, _ y: Float, depth: Float, pixel: Float, texture t: Float) -> (Float, Float) {
        // sulci: zero lines of g(u, v), u around the brain, v down from the surface
        let theta = fastAtan2(y, x)
        let stretch: Float = 1.6                                          // sulci run mostly inwards
        let v = depth / (gyralSpacing * stretch)
        let u = (theta + Float.pi) / (2 * Float.pi) * Float(sulcalCells) + 0.4 * sulcalWarp.sample(theta * 3, v * 0.5)
        let g = sulci.sample(u, v), gu = sulci.sample(u + 0.05, v) - g, gv = sulci.sample(u, v + 0.05) - g
        let rho = (x * x + y * y).squareRoot()
        let uPerMM = Float(sulcalCells) / (2 * Float.pi * max(rho, 10)), vPerMM = 1 / (gyralSpacing * stretch)
        let slope = max((gu * gu * uPerMM * uPerMM + gv * gv * vPerMM * vPerMM).squareRoot() / 0.05, 0.08 * uPerMM)
        let along = abs(g) / slope                                        // mm to the zero line: the sulcus
        let fundus = sulcusDepth * min(1.5, max(0.3, 1 + 0.8 * sulcalDepth.sample(u * 0.5, 0.5)))
        let toSulcus = depth < fundus ? along : (along * along + (depth - fundus) * (depth - fundus)).squareRoot()
        let width = sulcusWidth * (1 - 0.5 * min(1, depth / fundus))
        var toCSF = min(toSulcus - width, depth)
        // interhemispheric fissure (and the falx in it)
        if y < fissureFront || y > fissureBack { toCSF = min(toCSF, abs(x) - 0.6 - 0.4 * sulcusWidth) }
        let grey = coverage(-toCSF, pixel)
        let white = smoothstep(cortex - 0.8 * pixel, cortex + 0.8 * pixel, toCSF)
        var value = mix(csfValue, gmValue * (1 + 0.025 * t), grey)
        value = mix(value, wmValue * (1 + 0.02 * t), white)
        var wm = white
        for st in structures where x >= st.x0 && x <= st.x1 && y >= st.y0 && y <= st.y1 {
            let a = coverage(st.distance(x, y), pixel) * st.strength
            guard a > 0 else { continue }
            switch st.fill {
            case .value(let f): value = mix(value, f, a)
            case .folia(let light, let dark):
                // folia: thin lamellae concentric around the fourth ventricle
                let d = ((x * x) + (y - 18) * (y - 18)).squareRoot()
                let stripe = 0.5 + 0.5 * sin(d * 2.2 + 3 * t)
                value = mix(value, mix(dark, light, stripe), a)
            case .airCells(let air, let septum):
                value = mix(value, mix(air, septum, smoothstep(0.55, 0.95, sin(x * 1.3) * sin(y * 1.1))), a)
            }
            wm *= 1 - a
        }
        return (value, wm)
    }

    /// The structures of one slice level (mm; anterior is −y), scaled to the head, mirrored left
    /// and right with small independent jitter.
    private static func deepStructures(level L: Float, scale k: Float, ventricles vs: Float, head h: Head,
                                       rng: RandomGenerator) -> [Structure] {
        var list: [Structure] = []
        func j(_ v: Float) -> Float { v + rng.uniform(-1.5, 1.5) }
        func blob(_ x: Float, _ y: Float, _ a: Float, _ b: Float, angle: Float = 0, rough: Float = 0.05) -> Structure.Shape {
            .blob(Blob(cx: x * k, cy: y * k, radius: (a * b).squareRoot() * k, aspect: (a / b).squareRoot(), angle: angle,
                       roughness: rough, harmonics: 4, rng: rng))
        }
        func tube(_ p: [(Float, Float, Float)]) -> Structure.Shape { .capsules(p.map { (x: $0.0 * k, y: $0.1 * k, r: $0.2 * k) }) }
        func window(_ lo: Float, _ hi: Float, fade: Float = 0.04) -> Float {
            smoothstep(lo - fade, lo + fade, L) * (1 - smoothstep(hi - fade, hi + fade, L))
        }
        let csf = Structure.Fill.value(h.csfValue), deep = Structure.Fill.value(h.deepValue)
        let enhance = Structure.Fill.value(h.enhanceValue), bone = Structure.Fill.value(h.boneValue)

        if L >= 0.28 {
            // lateral ventricles: frontal horns + atria at the third-ventricle level, bodies higher up
            let front = window(0.3, 0.62), body = window(0.4, 0.74), back = window(0.3, 0.58)
            for side: Float in [-1, 1] {
                let w = vs * rng.uniform(0.9, 1.1)
                if front > 0 {
                    list.append(Structure(tube([(side * 3.5, j(-36), 1.2 * w), (side * 8, -27, 6.2 * w), (side * 8.5, -14, 3.6 * w)]),
                                          csf, strength: front))
                }
                if body > 0 {
                    let lift = smoothstep(0.45, 0.72, L)
                    list.append(Structure(tube([(side * (8 - 2 * lift), -22 + 8 * lift, 3.5 * w), (side * 10, 0, 3.6 * w * (1 - 0.3 * lift)),
                                                (side * 12, 16, 3.4 * w)]), csf, strength: body))
                }
                if back > 0 {
                    list.append(Structure(tube([(side * 11, 8, 2.5 * w), (side * 15, 21, 5.5 * w), (side * j(21), 34, 1.2 * w)]),
                                          csf, strength: back))
                    list.append(Structure(blob(side * 15.5, 21, 2.6, 3.4), enhance, strength: back))       // choroid plexus
                }
                let basal = window(0.3, 0.52)
                if basal > 0 {
                    list.append(Structure(blob(side * 16, -19, 4.5, 7.5, angle: side * 0.3), deep, strength: window(0.3, 0.6)))   // caudate head
                    list.append(Structure(blob(side * 24, -3, 5, 13, angle: side * 0.28), deep, strength: basal))                 // lentiform nucleus
                    list.append(Structure(blob(side * 10, 7, 7, 10.5), deep, strength: basal))                                    // thalamus
                    list.append(Structure(blob(side * 33, -4, 3, 15, angle: side * 0.1), .value(h.gmValue), strength: basal))     // insula
                    list.append(Structure(tube([(side * 35, -6, 1.2), (side * 50, -9, 1.3), (side * 70, -12, 1.6)]), csf, strength: basal))   // Sylvian fissure
                }
            }
            let third = window(0.3, 0.46)
            if third > 0 { list.append(Structure(tube([(0, -8, 1.4 * vs), (0, 10, 1.8 * vs)]), csf, strength: third)) }
        } else if L >= 0.15 {
            // suprasellar level: star-shaped cistern, chiasm, circle of Willis, midbrain, temporal horns
            list.append(Structure(.blob(Blob(cx: 0, cy: -9 * k, radius: 9 * k, aspect: 1.05, roughness: 0.3, harmonics: 6, rng: rng)), csf))
            list.append(Structure(tube([(-8, -15, 1.6), (0, -14, 2.0), (8, -15, 1.6)]), .value(h.wmValue)))
            for i in 0..<6 {
                let a = Float(i) / 6 * 2 * Float.pi + rng.uniform(-0.3, 0.3)
                list.append(Structure(blob(10 * cos(a), -9 + 9 * sin(a), 1.3, 1.3), enhance))
            }
            list.append(Structure(blob(0, 12, 14, 11, rough: 0.1), .value(mix(h.deepValue, h.wmValue, 0.3)), strength: 0.7))    // midbrain
            list.append(Structure(blob(0, 2, 3, 3), csf))                                                        // interpeduncular cistern
            list.append(Structure(blob(0, 15, 1.2, 1.2), csf))                                                   // aqueduct
            list.append(Structure(tube([(-12, 23, 2), (0, 27, 2.8), (12, 23, 2)]), csf))                         // quadrigeminal cistern
            for side: Float in [-1, 1] {
                list.append(Structure(blob(side * 27, 1, 2, 5, angle: side * 0.4), csf))                         // temporal horn
                list.append(Structure(tube([(side * 9, -12, 1.2), (side * 30, -20, 1.4), (side * 62, -14, 1.8)]), csf))   // Sylvian fissure
            }
        } else {
            // sellar level: orbits, ethmoid, sphenoid sinus, sella, cavernous sinuses, clivus, petrous bones, pons, cerebellum
                        for side: Float in [-1, 1] {
                list.append(Structure(blob(side * 25, -62, 12, 15, angle: side * 0.45), .value(h.fatValue * 0.92)))  // orbital fat
                list.append(Structure(blob(side * 31, -74, 11, 11), .value(h.csfValue * 0.9 + 0.04)))            // globe (vitreous)
                list.append(Structure(tube([(side * 10, -33, 1.5), (side * 28, -40, 2.2), (side * 46, -37, 1.8)]), bone))  // greater sphenoid wing
                list.append(Structure(tube([(side * 13, -4, 1.5), (side * 30, 6, 4.5), (side * 47, 21, 4)]), bone))   // petrous bone
                list.append(Structure(tube([(side * 24, 3, 0.8), (side * 31, 8, 1.8), (side * 42, 17, 1.2)]), .value(h.marrowValue * 0.8)))
                list.append(Structure(blob(side * 57, 30, 7, 8), .airCells(h.airValue + 0.02, h.boneValue + 0.25))) // mastoid
                list.append(Structure(blob(side * 9, -22, 4.5, 7), enhance))                                     // cavernous sinus
                list.append(Structure(blob(side * 8.5, -24, 2.2, 2.2), .value(0.04)))                           // carotid flow void
                list.append(Structure(blob(side * 24, 42, 27, 21, angle: side * 0.25), .folia(h.gmValue, h.wmValue)))  // cerebellar hemisphere
            }
            list.append(Structure(blob(0, -62, 8, 15), .airCells(h.airValue + 0.02, h.boneValue + 0.3)))          // ethmoid cells
            list.append(Structure(blob(0, -37, 13, 9, rough: 0.15), .value(h.airValue + 0.02)))                  // sphenoid sinus
            list.append(Structure(blob(0, -22, 5.5, 4), .value(h.enhanceValue * 0.95)))                          // pituitary gland
            list.append(Structure(tube([(0, -15, 5.5), (0, -5, 5)]), .value(h.marrowValue)))                    // clivus
            list.append(Structure(tube([(-11, -1, 2), (0, -2.5, 2.4), (11, -1, 2)]), csf))                      // prepontine cistern
            list.append(Structure(blob(0, 10, 15, 11, rough: 0.08), .value(mix(h.deepValue, h.wmValue, 0.6))))   // pons
            list.append(Structure(blob(0, -1, 1.4, 1.4), .value(0.05)))                                          // basilar artery
            list.append(Structure(blob(0, 40, 7, 16), .folia(h.gmValue, h.wmValue)))                             // vermis
            list.append(Structure(blob(0, 24, 5, 3, rough: 0.2), csf))                                           // fourth ventricle
        }
        // venous sinuses enhance with contrast: the superior sagittal sinus at both ends of the falx
        if L >= 0.3 {
            let back = h.innerRadius(0, 1), front = h.innerRadius(0, -1)
            list.append(Structure(.blob(Blob(cx: 0, cy: back - 3, radius: 3.5, rng: rng)), enhance))
            list.append(Structure(.blob(Blob(cx: 0, cy: -front + 2.5, radius: 2.5, rng: rng)), enhance, strength: 0.7))
        }
        return list
    }
}
