// The findings of the chest CT phantom: COVID-19 opacities (ground glass, crazy paving,
// consolidation, reverse halo; peripheral, posterior, mostly bilateral) and the non-COVID
// findings (nodule, emphysema, dependent atelectasis, effusion, lobar pneumonia with air
// bronchograms, basal reticulation). Each is a patch with a target HU, blended into the aerated
// lung by a soft weight; `hide` says how much it hides the vessels (ground glass spares them,
// consolidation and fluid hide them). See ChestCTPhantom.swift for the facts and sources.

import MedSynthCore

import Glibc

struct ChestLesions {
    private struct Patch {
        var blob: Blob
        var soft: Float                       // edge width (mm) of the weight
        var hu: Float                         // target HU
        var core: Float = 2                   // relative radius below which `coreHU` applies (consolidation)
        var coreHU: Float = 0
        var ringCore = false                  // reverse halo: the consolidation is the rim
        var paving: CellNoise? = nil          // septal lines over the patch
        var pavingHU: Float = 0
        var hide: Float = 0
        var bronchograms: [(Float, Float, Float, Float)] = []
        var effusionSide: Float = 0           // ±1: a dependent pleural effusion on that side
        var effusionDepth: Float = 0
    }
    private var patches: [Patch] = []
    private var texture: FractalNoise
    private let chest: Chest

    init(label: Int, chest: Chest, rng: RandomGenerator) {
        texture = FractalNoise(x0: -250, y0: -250, extent: 500, cell: 5, octaves: 2, rng: rng)
        self.chest = chest
        let K = ChestCTPhantom.Knobs.self
        if label == 0 {
            let count = rng.int(K.covidPatches.0, K.covidPatches.1)
            let bilateral = rng.chance(K.bilateral)
            let firstSide: Float = rng.chance(0.5) ? -1 : 1
            let late = rng.chance(0.4)                       // later disease: more consolidation and paving
            for i in 0..<count {
                let side = bilateral && i % 2 == 1 ? -firstSide : firstSide
                let r = rng.logUniform(K.covidRadius.0, K.covidRadius.1)
                guard let (x, y) = place(chest: chest, side: side, radius: r, peripheral: rng.chance(K.peripheral),
                                         posterior: rng.chance(0.82), rng: rng) else { continue }
                var p = Patch(blob: Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(1, 1.7), angle: fastAtan2(y, x) + Float.pi / 2,
                                         roughness: 0.35, harmonics: 6, rng: rng),
                              soft: rng.uniform(2, 6), hu: rng.uniform(K.groundGlass.0, K.groundGlass.1))
                if rng.chance(K.crazyPaving * (late ? 1.5 : 0.7)) {
                    p.paving = CellNoise(x0: -250, y0: -250, extent: 500, cell: rng.uniform(6, 12), rng: rng)
                    p.pavingHU = rng.uniform(120, 260)
                }
                if rng.chance(K.consolidation * (late ? 1.6 : 0.6)) {
                    p.core = -rng.uniform(0.3, 0.6)
                    p.coreHU = rng.uniform(-150, 20)
                    p.ringCore = rng.chance(0.1)
                }
                patches.append(p)
            }
            if patches.isEmpty {                             // never a COVID image without an opacity
                let (x, y) = (firstSide * (chest.mediastinumHalf + 40), chest.spineY - 10)
                patches.append(Patch(blob: Blob(cx: x, cy: y, radius: 15, roughness: 0.3, rng: rng), soft: 5, hu: -600))
            }
        } else if !rng.chance(K.normal) {
            let total = K.findings.reduce(0) { $0 + $1.1 }
            var pick = rng.uniform(0, total)
            var finding = K.findings[0].0
            for (f, p) in K.findings { if pick < p { finding = f; break }; pick -= p }
            addFinding(finding, chest: chest, rng: rng)
            if rng.chance(0.15) { addFinding(K.findings[rng.int(below: K.findings.count)].0, chest: chest, rng: rng) }
        }
    }

    /// A point in the lung on `side` for a patch of radius r: near the pleura when peripheral, in
    /// the dependent half when posterior.
    private func place(chest: Chest, side: Float, radius r: Float, peripheral: Bool, posterior: Bool,
                       rng: RandomGenerator) -> (Float, Float)? {
        for _ in 0..<60 {
            let x = side * rng.uniform(chest.mediastinumHalf + 8, 170), y = rng.uniform(-120, 120)
            let d = chest.cavityDistance(x, y)
            guard d < -min(r * 0.3, 8) else { continue }
            if peripheral && d < -(r * 0.9 + 4) { continue }          // subpleural: the patch reaches the pleura
            if !peripheral && d > -25 { continue }
            if posterior && y < chest.spineY - 90 { continue }
            if chest.lungFraction(x, y, pixel: 1) < 0.5 { continue }
            return (x, y)
        }
        return nil
    }

    private mutating func addFinding(_ finding: ChestCTPhantom.Finding, chest: Chest, rng: RandomGenerator) {
        let side: Float = rng.chance(0.5) ? -1 : 1
        switch finding {
        case .nodule:
            let r = rng.logUniform(2.5, 14)
            guard let (x, y) = place(chest: chest, side: side, radius: r, peripheral: rng.chance(0.5), posterior: false, rng: rng) else { return }
            patches.append(Patch(blob: Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(0.85, 1.2),
                                            roughness: rng.chance(0.3) ? 0.3 : 0.06, harmonics: rng.chance(0.3) ? 9 : 4, rng: rng),
                                 soft: 0.8, hu: rng.uniform(0, 50), hide: 1))
        case .emphysema:
            // centrilobular lucencies in the upper lungs, sometimes a subpleural bulla
            for _ in 0..<rng.int(6, 18) {
                let r = rng.uniform(1.5, 5)
                let s: Float = rng.chance(0.5) ? -1 : 1
                guard let (x, y) = place(chest: chest, side: s, radius: r, peripheral: rng.chance(0.4), posterior: false, rng: rng) else { continue }
                patches.append(Patch(blob: Blob(cx: x, cy: y, radius: r, roughness: 0.2, rng: rng), soft: 0.8, hu: rng.uniform(-1000, -970)))
            }
            if rng.chance(0.4) {
                let r = rng.uniform(8, 22)
                if let (x, y) = place(chest: chest, side: side, radius: r, peripheral: true, posterior: false, rng: rng) {
                    patches.append(Patch(blob: Blob(cx: x, cy: y, radius: r, roughness: 0.1, rng: rng), soft: 0.8, hu: -1000))
                }
            }
        case .atelectasis:
            // dependent (posterior, subpleural) density: the classic mimic of ground glass
            for s in rng.chance(0.6) ? [Float(-1), 1] : [side] {
                let r = rng.uniform(10, 26)
                let x = s * rng.uniform(chest.mediastinumHalf + 25, chest.mediastinumHalf + 70)
                var y = chest.spineY
                while chest.cavityDistance(x, y + 2) < -r * 0.2 && y < 200 { y += 2 }
                patches.append(Patch(blob: Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(1.6, 2.4), angle: 0, roughness: 0.2, rng: rng),
                                     soft: rng.uniform(2, 5), hu: rng.uniform(-450, -50), hide: rng.uniform(0.4, 1)))
            }
        case .effusion:
            var p = Patch(blob: Blob(cx: side * 80, cy: chest.spineY, radius: 150, rng: rng), soft: 1, hu: rng.uniform(0, 20), hide: 1)
            p.effusionSide = rng.chance(0.4) ? 0 : side
            p.effusionDepth = rng.uniform(8, 35)
            patches.append(p)
        case .pneumonia:
            let r = rng.uniform(18, 40)
            guard let (x, y) = place(chest: chest, side: side, radius: r, peripheral: rng.chance(0.5), posterior: rng.chance(0.6), rng: rng) else { return }
            var p = Patch(blob: Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(0.7, 1.4), angle: rng.uniform(0, 3.14), roughness: 0.25,
                                     harmonics: 6, rng: rng), soft: rng.uniform(2, 5), hu: rng.uniform(-550, -350))
            p.core = -0.2
            p.coreHU = rng.uniform(-80, 30)
            p.hide = 1
            for _ in 0..<rng.int(1, 3) {
                let a = rng.uniform(0, 6.28), l = r * rng.uniform(0.5, 0.9)
                p.bronchograms.append((x - 0.5 * l * cos(a), y - 0.5 * l * sin(a), x + 0.5 * l * cos(a), y + 0.5 * l * sin(a)))
            }
            patches.append(p)
        case .reticulation:
            // basal subpleural reticulation (fibrosis): septal lines with faint ground glass, both lungs
            for s: Float in [-1, 1] {
                let r = rng.uniform(15, 35)
                guard let (x, y) = place(chest: chest, side: s, radius: r, peripheral: true, posterior: true, rng: rng) else { continue }
                var p = Patch(blob: Blob(cx: x, cy: y, radius: r, aspect: rng.uniform(1.2, 2), angle: fastAtan2(y, x) + Float.pi / 2,
                                         roughness: 0.3, rng: rng), soft: rng.uniform(3, 6), hu: rng.uniform(-820, -700))
                p.paving = CellNoise(x0: -250, y0: -250, extent: 500, cell: rng.uniform(4, 7), rng: rng)
                p.pavingHU = rng.uniform(250, 450)
                patches.append(p)
            }
        }
    }

    /// (weight, target HU, vessel hiding, mask coverage) at (x, y) inside the lung.
    @inline(__always)
    func sample(_ x: Float, _ y: Float, pixel: Float) -> (Float, Float, Float, Float) {
        var weight: Float = 0, target: Float = 0, hide: Float = 0, mark: Float = 0
        for p in patches {
            var w: Float, hu = p.hu, m: Float
            if p.effusionSide != 0 || p.effusionDepth > 0 {
                if p.effusionSide != 0 && x * p.effusionSide < 0 { continue }
                let depth = p.effusionDepth * smoothstep(-40, 60, y)
                let d = chest.cavityDistance(x, y) + depth
                w = coverage(d, p.soft)
                m = coverage(d, pixel)
            } else {
                let e = p.blob.extent + p.soft
                guard abs(x - p.blob.cx) < e && abs(y - p.blob.cy) < e else { continue }
                let d = p.blob.distance(x, y)
                w = coverage(d, p.soft) * max(0, min(1, 1 + 0.2 * texture.sample(x, y)))
                m = coverage(d, pixel)
                if p.core < 1 {
                    let rel = p.blob.relative(x, y)
                    let inCore = p.ringCore ? smoothstep(p.core - 0.1, p.core + 0.1, rel) * smoothstep(0.05, -0.1, rel)
                                            : smoothstep(p.core + 0.1, p.core - 0.1, rel)
                    hu = mix(hu, p.coreHU, inCore)
                    for b in p.bronchograms {
                        let (db, _) = segmentDistance(x, y, b.0, b.1, b.2, b.3)
                        hu = mix(hu, -900, coverage(db - 1.2, pixel) * inCore)
                    }
                    hide = max(hide, inCore * p.hide)
                } else {
                    hide = max(hide, w * p.hide)
                }
                if let paving = p.paving {
                    let (_, edge) = paving.sample(x, y)
                    hu += p.pavingHU * coverage(edge - 0.6, pixel)
                }
            }
            if p.effusionSide != 0 || p.effusionDepth > 0 { hide = max(hide, w) }
            guard w > 0 else { continue }
            target = (weight * target + w * hu) / (weight + w)
            weight = 1 - (1 - weight) * (1 - w)
            mark = max(mark, m)
        }
        return (weight, target, hide, mark)
    }
}
