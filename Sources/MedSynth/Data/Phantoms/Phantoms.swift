// Embedded phantom data sets for the paper's three domains (Nafi et al. 2024, Table 1): brain
// tumour MRI, acute lymphoblastic leukaemia smears and SARS-CoV-2 chest CT, drawn natively with a
// lesion mask per image, so that the whole pipeline runs without downloading anything.
//
// Images are independent: image j of class c is drawn from its own generator seeded by
// (seed, c, j), so a data set is the same bytes for any thread count, and asking for more images
// per class only appends images (the first n of each class do not change).

import MedSynthCore

/// One of the paper's three data domains.
public enum PhantomDomain: String, CaseIterable {
    case brainMRI = "brain_mri"
    case leukemia = "all"
    case covidCT = "covid_ct"

    /// Class names in label order (as the paper's data sets name their folders).
    public var classNames: [String] {
        switch self {
        case .brainMRI: return BrainMRIPhantom.classNames
        case .leukemia: return LeukemiaSmearPhantom.classNames
        case .covidCT: return ChestCTPhantom.classNames
        }
    }

    /// Images per class in the paper's Table 1 ('Total Images').
    public var defaultCounts: [Int] {
        switch self {
        case .brainMRI: return BrainMRIPhantom.defaultCounts
        case .leukemia: return LeukemiaSmearPhantom.defaultCounts
        case .covidCT: return ChestCTPhantom.defaultCounts
        }
    }

    /// 1 (gray) or 3 (RGB).
    public var channels: Int { self == .leukemia ? 3 : 1 }

    /// What the images show, in one line.
    public var summary: String {
        switch self {
        case .brainMRI: return "axial T1 contrast-enhanced brain MRI slices; mask: the tumour (no oedema)"
        case .leukemia: return "Wright-Giemsa peripheral blood smears at 100x; mask: the lymphoid cells (nucleus and cytoplasm)"
        case .covidCT: return "axial chest CT slices in a lung window; mask: the opacities or other findings"
        }
    }

    /// Draws one image of class `label` into `canvas` (image planes in [0, 1] and lesion coverage).
    func render(label: Int, canvas: PhantomCanvas, rng: RandomGenerator) {
        switch self {
        case .brainMRI: BrainMRIPhantom.render(label: label, canvas: canvas, rng: rng)
        case .leukemia: LeukemiaSmearPhantom.render(label: label, canvas: canvas, rng: rng)
        case .covidCT: ChestCTPhantom.render(label: label, canvas: canvas, rng: rng)
        }
    }
}

public enum Phantoms {
    /// Smallest and largest image side.
    public static let sizeRange = 16...1024
    /// Most images per class in one call.
    public static let maxPerClass = 1_000_000

    /// The generator of image `index` of class `label`: Philox of (index, label) under the seed,
    /// so every image has its own stream whatever the order in which images are drawn.
    package static func imageGenerator(seed: UInt64, label: Int, index: Int) -> RandomGenerator {
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        let block = RandomGenerator.philox4x32((UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32),
                                                UInt32(truncatingIfNeeded: label), 0x5048_414E), key: key)
        return RandomGenerator(seed: UInt64(block.0) << 32 | UInt64(block.1))
    }

    /// Draws `counts[c]` images of each class c, class by class: images [n, size, size, channels]
    /// (`channelsLast`) or [n, channels, size, size], values in [0, 1]; labels [n]; masks [n, size,
    /// size] (1 on the lesion) when not nil. Reports progress after every few dozen images.
    public static func generate(_ domain: PhantomDomain, counts: [Int], size: Int, seed: UInt64, channelsLast: Bool,
                                images: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int64>,
                                masks: UnsafeMutablePointer<UInt8>?, progress: Progress = .silent) throws {
        try require(counts.count == domain.classNames.count,
                    "\(domain.rawValue) has \(domain.classNames.count) classes (\(domain.classNames.joined(separator: ", "))), got \(counts.count) counts")
        try require(counts.allSatisfy { (0...maxPerClass).contains($0) }, "images per class must be between 0 and \(maxPerClass)")
        try require(counts.reduce(0, +) >= 1, "ask for at least one image")
        try require(sizeRange.contains(size), "image_size must be between \(sizeRange.lowerBound) and \(sizeRange.upperBound) pixels, got \(size)")

        // (label, index within the class) of every output image, class by class
        var owners: [(label: Int, index: Int)] = []
        owners.reserveCapacity(counts.reduce(0, +))
        for (label, count) in counts.enumerated() { for j in 0..<count { owners.append((label, j)) } }
        let total = owners.count
        let channels = domain.channels, plane = size * size
        let chunk = max(16, 8 * ThreadPool.shared.threadCount)

        var done = 0
        try progress.report(0, total, .object([("phase", .string("generate"))]))
        while done < total {
            let end = min(total, done + chunk)
            owners.withUnsafeBufferPointer { owner in
                parallelRanges(end - done) { lo, hi in
                    let canvas = PhantomCanvas(size: size, channels: channels)
                    for i in (done + lo)..<(done + hi) {
                        let (label, index) = owner[i]
                        labels[i] = Int64(label)
                        canvas.clear()
                        domain.render(label: label, canvas: canvas,
                                      rng: imageGenerator(seed: seed, label: label, index: index))
                        store(canvas, into: images + i * channels * plane, channelsLast: channelsLast)
                        if let masks {
                            let m = masks + i * plane
                            for p in 0..<plane { m[p] = canvas.mask[p] >= 0.5 ? 1 : 0 }
                        }
                    }
                }
            }
            done = end
            try progress.report(done, total, .object([("phase", .string("generate"))]))
        }
    }

    /// Copies a canvas's planes into one output image, clamped to [0, 1].
    private static func store(_ canvas: PhantomCanvas, into out: UnsafeMutablePointer<Float>, channelsLast: Bool) {
        let plane = canvas.plane, channels = canvas.channels
        for c in 0..<channels {
            let src = canvas.channel(c)
            if channelsLast && channels > 1 {
                for p in 0..<plane { out[p * channels + c] = clamp01(src[p]) }
            } else {
                let dst = out + c * plane
                for p in 0..<plane { dst[p] = clamp01(src[p]) }
            }
        }
    }
}
