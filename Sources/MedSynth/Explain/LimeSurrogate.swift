// LIME's surrogate: for each explained label, a weighted ridge regression of the model's
// probability of that label on the binary superpixel matrix Z, exactly as lime's
// LimeBase.explain_instance_with_data computes it (lime_base.py):
//  1. sample weights: lime's exponential kernel of the cosine distance to row 0 (LimeSampling);
//  2. feature selection, lime's four methods:
//       none               every superpixel;
//       highest_weights    Ridge(α = 0.01) on every superpixel, the num_features largest |β·z₀|;
//       forward_selection  greedily add the superpixel whose Ridge(α = 0) fit has the best
//                          weighted R² (the first on ties), num_features times;
//       auto               forward_selection when num_features ≤ 6, else highest_weights;
//  3. Ridge(α = 1) with intercept on the selected superpixels: the explanation's weights, sorted
//     by |weight| (stable), its intercept, its weighted R² on the samples (`score`) and its
//     prediction for row 0 (`local_pred`).
// lime's `lasso_path` selection and custom regressors are not offered.

import MedSynthCore

public enum FeatureSelection: String, CaseIterable {
    case auto
    case highestWeights = "highest_weights"
    case forwardSelection = "forward_selection"
    case none
}

public struct LimeSurrogateOptions: Configurable {
    public var kernelWidth = 0.25
    public var alpha = 1.0
    public var featureSelection = FeatureSelection.auto
    /// nil: every superpixel (lime's num_features=100000).
    public var numFeatures: Int? = nil

    public init() {}

    public static let name = "LIME surrogate"

    /// lime's defaults (LimeImageExplainer and LimeBase).
    public static let options: [Option<LimeSurrogateOptions>] = [
        .double("kernel_width", \.kernelWidth, "Width w of the sample weights sqrt(exp(-d^2 / w^2)), d the cosine distance to the image (lime's 0.25)."),
        .double("alpha", \.alpha, "Ridge penalty of the surrogate (lime's Ridge(alpha=1))."),
        .choice("feature_selection", \.featureSelection,
                "lime's: 'auto' (forward_selection up to 6 features, else highest_weights), 'highest_weights', 'forward_selection', 'none'."),
        .int("num_features", \.numFeatures, "Superpixels kept in the surrogate; null keeps every one (lime's 100000)."),
    ]

    public func validate() throws {
        try require(kernelWidth.isFinite && kernelWidth > 0, "kernel_width must be a positive number, got \(kernelWidth)")
        try require(alpha.isFinite && alpha >= 0, "alpha must be a non-negative number, got \(alpha)")
        if let n = numFeatures { try require(n >= 1, "num_features must be at least 1, got \(n)") }
    }
}

/// The explainer's options as Python offers them (registry topic "lime"): lime's defaults, except
/// where noted. The engine reads the surrogate's part (ms_lime_fit); the Python layer runs the rest.
public struct LimeOptions: Configurable {
    public var numSamples = 1000
    public var batchSize = 100
    public var topLabels = 1
    public var seed: UInt64 = 0
    public var segmentation = SuperpixelMethod.quickshift
    public var surrogate = LimeSurrogateOptions()

    public init() {}

    public static let name = "LIME"

    public static let options: [Option<LimeOptions>] = [
        .int("num_samples", \.numSamples, "Perturbed images, the first being the image itself (lime's 1000)."),
        .int("batch_size", \.batchSize, "Images per model call (lime's 10; larger batches keep both cores busy)."),
        .int("top_labels", \.topLabels, "Labels explained when none are given: the model's most probable for the image (lime's 5)."),
        .seed("seed", \.seed, "Seeds the samples (Philox, stream 'explanation'): the same seed gives the same explanation bit for bit."),
        .choice("segmentation", \.segmentation, "Superpixels by name: 'quickshift' (lime's default) or 'slic' (Python also takes a label map or a callable)."),
    ] + LimeSurrogateOptions.options.map { $0.lifted(\.surrogate) }

    public func validate() throws {
        try require(numSamples >= 1 && numSamples <= 10_000_000, "num_samples must be between 1 and 10000000, got \(numSamples)")
        try require(batchSize >= 1 && batchSize <= 65536, "batch_size must be between 1 and 65536, got \(batchSize)")
        try require(topLabels >= 1, "top_labels must be at least 1, got \(topLabels)")
        try surrogate.validate()
    }
}

/// One label's explanation.
public struct LimeLabelExplanation {
    public let label: Int
    /// Selected superpixels sorted by |weight|, largest first, and their weights.
    public let features: [Int]
    public let weights: [Double]
    public let intercept: Double
    public let score: Double
    public let localPrediction: Double
}

public enum LimeSurrogate {
    /// Explains `labels` from Z [samples, features] and the model's outputs [samples, classes].
    public static func explain(z: UnsafePointer<UInt8>, samples: Int, features: Int, predictions: UnsafePointer<Double>,
                               classes: Int, labels: [Int], options: LimeSurrogateOptions) throws -> [LimeLabelExplanation] {
        try options.validate()
        try require(samples >= 1 && samples <= 10_000_000, "num_samples must be between 1 and 10000000, got \(samples)")
        try require(features >= 1 && features <= LimeLimits.maxFeatures, "LIME needs 1 to \(LimeLimits.maxFeatures) superpixels, got \(features)")
        try require(samples * features <= LimeLimits.maxSampleValues, "num_samples x superpixels (\(samples) x \(features)) is too large")
        try require(classes >= 1, "the predictions need at least one column")
        for label in labels { try require(label >= 0 && label < classes, "label \(label) is outside the \(classes) predicted classes") }
        for i in 0..<(samples * features) where z[i] > 1 {
            throw MedSynthError.invalidArgument("the sample matrix must hold only 0 and 1")
        }
        try requireFiniteDoubles(predictions, samples * classes, "the predictions")
        let weights = LimeSampling.kernelWeights(z, samples: samples, features: features, kernelWidth: options.kernelWidth)
        let problem = try RidgeProblem(x: z, samples: samples, features: features, weights: weights)
        let wanted = min(options.numFeatures ?? 100_000, 100_000)
        return labels.map { label in
            let y = (0..<samples).map { predictions[$0 * classes + label] }
            let moments = problem.moments(y)
            let used = select(problem, y: y, moments: moments, numFeatures: wanted, method: options.featureSelection, z0: z)
            let fit = problem.fit(columns: used, alpha: options.alpha, moments: moments)
            // stable sort by |weight|, largest first, as lime's sorted(..., reverse=True)
            let order = used.indices.sorted { abs(fit.coefficients[$0]) > abs(fit.coefficients[$1]) || (abs(fit.coefficients[$0]) == abs(fit.coefficients[$1]) && $0 < $1) }
            return LimeLabelExplanation(label: label, features: order.map { used[$0] }, weights: order.map { fit.coefficients[$0] },
                                        intercept: fit.intercept, score: problem.score(fit, y, mean: moments.mean),
                                        localPrediction: problem.predict(fit, row: 0))
        }
    }

    /// lime's LimeBase.feature_selection.
    static func select(_ problem: RidgeProblem, y: [Double], moments: (mean: Double, xty: [Double]), numFeatures: Int,
                       method: FeatureSelection, z0: UnsafePointer<UInt8>) -> [Int] {
        let all = Array(0..<problem.features)
        switch method {
        case .none:
            return all
        case .auto:
            return select(problem, y: y, moments: moments, numFeatures: numFeatures,
                          method: numFeatures <= 6 ? .forwardSelection : .highestWeights, z0: z0)
        case .highestWeights:
            let fit = problem.fit(columns: all, alpha: 0.01, moments: moments)
            let weighted = all.map { fit.coefficients[$0] * Double(z0[$0]) }
            let order = all.sorted { abs(weighted[$0]) > abs(weighted[$1]) || (abs(weighted[$0]) == abs(weighted[$1]) && $0 < $1) }
            return Array(order.prefix(numFeatures))
        case .forwardSelection:
            var used: [Int] = []
            for _ in 0..<min(numFeatures, problem.features) {
                var best = 0, bestScore = -100_000_000.0
                for feature in all where !used.contains(feature) {
                    let fit = problem.fit(columns: used + [feature], alpha: 0, moments: moments)
                    let score = problem.score(fit, y, mean: moments.mean)
                    if score > bestScore {
                        best = feature
                        bestScore = score
                    }
                }
                used.append(best)
            }
            return used
        }
    }

    static func requireFiniteDoubles(_ p: UnsafePointer<Double>, _ count: Int, _ what: String) throws {
        for i in 0..<count where !p[i].isFinite { throw MedSynthError.invalidArgument("\(what) contain NaN or infinite values (at index \(i))") }
    }
}
