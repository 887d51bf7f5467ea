// The three tumours of the brain MRI phantom (T1 contrast-enhanced; ../../../../../shared/notes/phantoms.md §1):
//
//  - glioma: an intra-axial mass in the hemispheric white matter (frontal, temporal, parietal),
//    irregular; most with an enhancing rim around a dark necrotic core, the rest diffuse and
//    hypointense; surrounded by oedema (T1-dark) that spreads along white matter; mass effect.
//  - meningioma: an extra-axial, round, homogeneously and vividly enhancing mass with a broad base
//    on the dura (convexity, sphenoid wing, posterior fossa, or the falx: parasagittal); sometimes
//    a CSF cleft between it and the brain, a dural tail, calcifications, hyperostosis, oedema.
//  - pituitary: a midline mass at the sella (or above it, in the suprasellar cistern), iso to
//    moderately enhancing, sometimes with a cyst; at the sella it replaces the normal gland, whose
//    size (≤ 9 mm high) small adenomas approach.
//
// The mask marks the tumour itself (enhancing and necrotic parts, not the oedema), as the
// figshare set's tumour outlines do.

import MedSynthCore

import Glibc

struct BrainLesion {
    enum Kind { case none, glioma, meningioma, pituitary }
    private(set) var kind: Kind = .none
    private var core = Blob(cx: 0, cy: 0, radius: 1, rng: RandomGenerator(seed: 0))
    private var halo: Blob? = nil
    private var cyst: Blob? = nil
    private var push: Float = 0
    private var texture: FractalNoise? = nil
    private var reach: Float = 0                         // bounding radius around the core centre
    // glioma
    private var enhancing = false
    private var rimFraction: Float = 0.3, rimValue: Float = 0, necrosisValue: Float = 0, solidValue: Float = 0
    private var oedemaFactor: Float = 1
    // meningioma
    private var falxSide: Float = 0                      // ±1 for a falcine mass, 0 otherwise
    private var baseC: Float = 1, baseS: Float = 0, baseAngle: Float = 0.2
    private var cleft: Float = 0, tail: Float = 0, hyperostosis: Float = 0
    private var calcifications: [(x: Float, y: Float, r: Float)] = []
    private var massValue: Float = 0

    init(label: Int, head: Head, rng: RandomGenerator) {
        let K = BrainMRIPhantom.Knobs.self
        let k = head.breadth / 75
        let contrast = rng.uniform(K.lesionContrast.0, K.lesionContrast.1)
        switch label {
        case BrainMRIPhantom.glioma:
            kind = .glioma
            var r = rng.logUniform(K.gliomaRadius.0, K.gliomaRadius.1) * k
            var cx: Float = 0, cy: Float = 0
            if head.level < 0.3 {                           // temporal lobe at the skull base
                r = min(r, 15 * k)
                cx = (rng.chance(0.5) ? -1 : 1) * rng.uniform(30, 46) * k
                cy = rng.uniform(-28, 4) * k
            } else {
                for _ in 0..<16 {
                    let phi = rng.uniform(-Float.pi, Float.pi)
                    let limit = head.innerRadius(cos(phi), sin(phi)) - head.csfGap
                    let f = rng.uniform(0.15, max(0.2, 0.95 - 0.8 * r / limit))
                    (cx, cy) = (f * limit * cos(phi), f * limit * sin(phi))
                    if abs(cx) > 0.4 * r + 5 { break }
                }
            }
            core = Blob(cx: cx, cy: cy, radius: r, aspect: rng.uniform(0.8, 1.25), angle: rng.uniform(0, 3.14),
                        roughness: rng.uniform(0.2, 0.4), harmonics: 6, rng: rng)
            enhancing = rng.chance(K.gliomaEnhancingFraction)
            halo = Blob(cx: cx, cy: cy, radius: r * rng.uniform(1.25, enhancing ? 2.1 : 1.6), aspect: rng.uniform(0.8, 1.25),
                        angle: rng.uniform(0, 3.14), roughness: 0.4, harmonics: 7, rng: rng)
            rimFraction = rng.uniform(0.22, 0.5)
            rimValue = min(0.97, head.wmValue + contrast * rng.uniform(0.2, 0.32))
            necrosisValue = mix(head.csfValue, head.gmValue, rng.uniform(0.2, 0.6))
            solidValue = head.wmValue - contrast * rng.uniform(0.16, 0.28)
            oedemaFactor = 1 - contrast * rng.uniform(0.2, 0.38)
            push = r * rng.uniform(0.4, 0.9)
        case BrainMRIPhantom.meningioma:
            kind = .meningioma
            let r = rng.logUniform(K.meningiomaRadius.0, K.meningiomaRadius.1) * k
            var cx: Float, cy: Float
            if head.level >= 0.35 && rng.chance(0.25) {       // on the falx (parasagittal, falcine)
                falxSide = rng.chance(0.5) ? -1 : 1
                let half = head.innerRadius(0, 1)
                cx = falxSide * r * rng.uniform(0.35, 0.8)
                cy = rng.uniform(-0.6, 0.6) * half
            } else {
                let phi: Float
                if head.level < 0.3 {                       // sphenoid wing or posterior fossa
                    phi = rng.chance(0.6) ? -Float.pi / 2 + (rng.chance(0.5) ? -1 : 1) * rng.uniform(0.45, 1.1)
                        : Float.pi / 2 + rng.uniform(-0.9, 0.9)
                } else {
                    phi = rng.uniform(-Float.pi, Float.pi)
                }
                (baseC, baseS) = (cos(phi), sin(phi))
                let inner = head.innerRadius(baseC, baseS)
                let centre = inner - r * rng.uniform(0.15, 0.65)
                (cx, cy) = (centre * baseC, centre * baseS)
                baseAngle = r / inner
                cleft = rng.chance(0.5) ? rng.uniform(0.8, 2.0) : 0
                tail = rng.chance(0.6) ? rng.uniform(8, 20) / inner : 0
                hyperostosis = rng.chance(0.15) ? rng.uniform(2, 5) : 0
            }
            core = Blob(cx: cx, cy: cy, radius: r, aspect: rng.uniform(0.85, 1.2), angle: rng.uniform(0, 3.14),
                        roughness: rng.uniform(0.04, 0.14), harmonics: 5, rng: rng)
            massValue = min(0.96, head.wmValue + contrast * rng.uniform(0.14, 0.3))
            if rng.chance(0.2) {
                for _ in 0..<rng.int(2, 6) {
                    let a = rng.uniform(0, 6.28), d = r * rng.uniform(0, 0.6)
                    calcifications.append((cx + d * cos(a), cy + d * sin(a), rng.uniform(0.8, 2)))
                }
            }
            if rng.chance(0.3) {
                halo = Blob(cx: cx, cy: cy, radius: r * rng.uniform(1.3, 1.7), roughness: 0.35, harmonics: 6, rng: rng)
                oedemaFactor = 1 - contrast * rng.uniform(0.1, 0.25)
            }
            push = r * rng.uniform(0.5, 0.85)
        case BrainMRIPhantom.pituitary:
            kind = .pituitary
            var r = rng.logUniform(K.pituitaryRadius.0, K.pituitaryRadius.1) * k
            let cy: Float
            if head.level < 0.15 {
                cy = (-22 + 0.35 * r) * k
            } else {
                r = max(r, 7 * k)
                cy = -9 * k
            }
            core = Blob(cx: rng.uniform(-1.5, 1.5), cy: cy, radius: r, aspect: rng.uniform(0.85, 1.1), angle: rng.uniform(-0.3, 0.3),
                        roughness: rng.uniform(0.05, 0.18), harmonics: 5, rng: rng)
            massValue = mix(head.gmValue, head.enhanceValue, rng.uniform(0.15, 0.85) * contrast + 0.1)
            if rng.chance(0.25) {
                cyst = Blob(cx: core.cx + rng.uniform(-0.3, 0.3) * r, cy: cy + rng.uniform(-0.3, 0.3) * r, radius: r * rng.uniform(0.25, 0.5),
                            roughness: 0.1, rng: rng)
            }
            push = r * 0.5
        default:
            return
        }
        texture = FractalNoise(x0: core.cx - 60, y0: core.cy - 60, extent: 120, cell: max(3, core.radius * 0.45), octaves: 2, rng: rng)
        reach = max(core.extent, halo?.extent ?? 0) + (tail > 0 ? core.radius + 25 : 0) + 3
    }

    /// Mass effect: tissue displaced outwards from the tumour, the inverse of inserting a disc of
    /// radius R (area preserved: r₀² = r² − R²). Returns where the anatomy at (x, y) came from.
    @inline(__always)
    func warp(_ x: Float, _ y: Float) -> (Float, Float) {
        guard push > 0 else { return (x, y) }
        let dx = x - core.cx, dy = y - core.cy
        let r2 = dx * dx + dy * dy
        guard r2 > 1e-6 else { return (core.cx, core.cy) }
        let f = (max(0, r2 - push * push) / r2).squareRoot()
        return (core.cx + dx * f, core.cy + dy * f)
    }

    /// Skull thickening (mm) over a meningioma's base, in the direction (c, s).
    @inline(__always)
    func skullThickening(_ c: Float, _ s: Float) -> Float {
        guard hyperostosis > 0 else { return 0 }
        let angle2 = max(0, 2 * (1 - (c * baseC + s * baseS)))            // ≈ angle² for small angles
        return hyperostosis * exp(-angle2 / (baseAngle * baseAngle))
    }

    /// Paints the lesion over the anatomy at (x, y); returns the tumour's coverage (the mask).
    func apply(_ x: Float, _ y: Float, _ sample: inout BrainSample, head: Head, pixel: Float) -> Float {
        guard kind != .none, abs(x - core.cx) < reach, abs(y - core.cy) < reach else { return 0 }
        let t = texture?.sample(x, y) ?? 0
        switch kind {
        case .glioma:
            let inBrain = coverage(-sample.brainDepth, 2 * pixel)
            if let halo {
                let w = coverage(halo.distance(x, y), 4) * (0.4 + 0.6 * sample.whiteMatter) * inBrain
                sample.value = mix(sample.value, sample.value * oedemaFactor, w)
            }
            let a = coverage(core.distance(x, y), pixel) * inBrain
            guard a > 0 else { return 0 }
            let tumour: Float
            if enhancing {
                let rel = core.relative(x, y), rim = rimFraction * (1 + 0.45 * t)
                let inRim = smoothstep(-rim - 0.1, -rim + 0.1, rel)
                tumour = mix(necrosisValue * (1 + 0.1 * t), rimValue * (1 + 0.06 * t), inRim)
            } else {
                tumour = solidValue * (1 + 0.12 * t) + (t > 1.1 ? 0.12 : 0)
            }
            sample.value = mix(sample.value, tumour, a)
            return a
        case .meningioma:
            var allowed = coverage(-sample.innerDepth, pixel)
            if falxSide != 0 { allowed *= coverage(-x * falxSide + 0.6, pixel) }
            let d = core.distance(x, y)
            if let halo, sample.brainDepth > 0 {
                let w = coverage(halo.distance(x, y), 4) * (0.4 + 0.6 * sample.whiteMatter)
                sample.value = mix(sample.value, sample.value * oedemaFactor, w)
            }
            if cleft > 0 { sample.value = mix(sample.value, head.csfValue, coverage(d - cleft, pixel) * allowed) }
            if tail > 0 {
                let rho = (x * x + y * y).squareRoot()
                let angle = (max(0, 2 * (1 - (x * baseC + y * baseS) / max(rho, 1e-3)))).squareRoot()
                let along = (angle - baseAngle * 0.7) / tail
                if along > 0 && along < 1 {
                    let thick = 0.4 + 1.4 * (1 - along)
                    let w = coverage(sample.innerDepth - thick, pixel) * allowed * (1 - along)
                    sample.value = mix(sample.value, massValue, w)
                }
            }
            let a = coverage(d, pixel) * allowed
            guard a > 0 else { return 0 }
            var mass = massValue * (1 + 0.035 * t)
            for c in calcifications {
                let dc = ((x - c.x) * (x - c.x) + (y - c.y) * (y - c.y)).squareRoot()
                mass = mix(mass, head.boneValue + 0.1, coverage(dc - c.r, pixel))
            }
            sample.value = mix(sample.value, mass, a)
            return a
        case .pituitary:
            let a = coverage(core.distance(x, y), pixel)
            guard a > 0 else { return 0 }
            var mass = massValue * (1 + 0.07 * t)
            if let cyst { mass = mix(mass, mix(head.csfValue, head.gmValue, 0.5), coverage(cyst.distance(x, y), pixel)) }
            sample.value = mix(sample.value, mass, a)
            return a
        case .none:
            return 0
        }
    }
}
