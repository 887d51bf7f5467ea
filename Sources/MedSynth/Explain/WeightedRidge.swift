// Weighted ridge regression with an intercept, as scikit-learn's `Ridge(alpha, fit_intercept=True)
// .fit(X, y, sample_weight=w)` solves it with its default (Cholesky) solver, the surrogate model
// of LIME:
//   x̄ = Σ w x / Σ w,  ȳ = Σ w y / Σ w,  X_c = X − x̄,  y_c = y − ȳ
//   (X_cᵀ W X_c + α I) β = X_cᵀ W y_c,   intercept = ȳ − x̄ · β
// and its `score`, the weighted R² on the same samples:
//   R² = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ)²   (1 when both sums are 0, 0 when only the second is).
// The centred weighted Gram matrix X_cᵀ W X_c depends only on the samples, not on the label being
// explained or on α, so `RidgeProblem` computes it once and every fit (feature selection, every
// label) reads the rows and columns it needs. When Cholesky finds the system singular (α = 0 with
// a constant or duplicated column) the solution falls back to the pseudo-inverse, as scikit-learn
// falls back to its SVD solver.

import MedSynthCore

public final class RidgeProblem {
    public let samples: Int, features: Int
    /// X [samples, features] as doubles, the sample weights, their sum and the weighted column means.
    let x: [Double]
    let weights: [Double]
    let weightSum: Double
    let means: [Double]
    /// X_cᵀ W X_c [features, features].
    let gram: [Double]

    public init(x: UnsafePointer<UInt8>, samples: Int, features: Int, weights: [Double]) throws {
        try require(samples >= 1 && features >= 1 && weights.count == samples, "the ridge problem needs samples, features and one weight per sample")
        try require(weights.allSatisfy { $0.isFinite && $0 >= 0 }, "sample weights must be finite and non-negative")
        let total = weights.reduce(0, +)
        try require(total > 0, "the sample weights sum to zero")
        self.samples = samples
        self.features = features
        self.weights = weights
        weightSum = total
        let xs = (0..<(samples * features)).map { Double(x[$0]) }
        self.x = xs
        var means = [Double](repeating: 0, count: features)
        for i in 0..<samples {
            for j in 0..<features { means[j] += weights[i] * xs[i * features + j] }
        }
        for j in 0..<features { means[j] /= total }
        self.means = means
        // columns of √w · X_c, contiguous, so each Gram entry is one dot product over the samples
        var columns = [Double](repeating: 0, count: samples * features)
        for i in 0..<samples {
            let root = weights[i].squareRoot()
            for j in 0..<features { columns[j * samples + i] = root * (xs[i * features + j] - means[j]) }
        }
        var gram = [Double](repeating: 0, count: features * features)
        columns.withUnsafeBufferPointer { cb in
            gram.withUnsafeMutableBufferPointer { gb in
                guard let c = cb.baseAddress, let g = gb.baseAddress else { return }
                parallelRanges(features, grain: max(1, 4096 / max(1, samples))) { lo, hi in
                    for a in lo..<hi {
                        for b in a..<features {
                            var dot = 0.0
                            let (ca, cbb) = (c + a * samples, c + b * samples)
                            for i in 0..<samples { dot += ca[i] * cbb[i] }
                            g[a * features + b] = dot
                        }
                    }
                }
            }
        }
        for a in 0..<features {
            for b in 0..<a { gram[a * features + b] = gram[b * features + a] }
        }
        self.gram = gram
    }

    /// A fitted model over a subset of the columns.
    public struct Fit {
        public let columns: [Int]
        public let coefficients: [Double]
        public let intercept: Double

        public func predict(_ row: UnsafePointer<Double>) -> Double {
            var y = intercept
            for (k, j) in columns.enumerated() { y += coefficients[k] * row[j] }
            return y
        }
    }

    /// The weighted mean of y and X_cᵀ W (y − ȳ) over all columns, for one target.
    public func moments(_ y: [Double]) -> (mean: Double, xty: [Double]) {
        var mean = 0.0
        for i in 0..<samples { mean += weights[i] * y[i] }
        mean /= weightSum
        var xty = [Double](repeating: 0, count: features)
        for i in 0..<samples {
            let r = weights[i] * (y[i] - mean)
            for j in 0..<features { xty[j] += (x[i * features + j] - means[j]) * r }
        }
        return (mean, xty)
    }

    /// Ridge(alpha) on `columns` (in that order) for a target with the given moments.
    public func fit(columns: [Int], alpha: Double, moments: (mean: Double, xty: [Double])) -> Fit {
        let m = columns.count
        var a = [Double](repeating: 0, count: m * m)
        var b = [Double](repeating: 0, count: m)
        for (p, i) in columns.enumerated() {
            b[p] = moments.xty[i]
            for (q, j) in columns.enumerated() { a[p * m + q] = gram[i * features + j] }
            a[p * m + p] += alpha
        }
        let beta = DenseSolve.cholesky(a, b, m) ?? DenseSolve.pseudoInverse(a, b, m)
        var intercept = moments.mean
        for (p, j) in columns.enumerated() { intercept -= means[j] * beta[p] }
        return Fit(columns: columns, coefficients: beta, intercept: intercept)
    }

    /// Weighted R² of `fit` on the samples against y (scikit-learn's r2_score, force_finite).
    public func score(_ fit: Fit, _ y: [Double], mean: Double) -> Double {
        var residual = 0.0, spread = 0.0
        x.withUnsafeBufferPointer { xb in
            guard let base = xb.baseAddress else { return }
            for i in 0..<samples {
                let e = y[i] - fit.predict(base + i * features)
                residual += weights[i] * e * e
                let s = y[i] - mean
                spread += weights[i] * s * s
            }
        }
        if spread == 0 { return residual == 0 ? 1 : 0 }
        return 1 - residual / spread
    }

    /// The prediction of `fit` for sample `row`.
    public func predict(_ fit: Fit, row: Int) -> Double {
        x.withUnsafeBufferPointer { xb in xb.baseAddress.map { fit.predict($0 + row * features) } ?? fit.intercept }
    }
}

/// Small dense symmetric systems.
enum DenseSolve {
    /// Solves A x = b for symmetric positive definite A [m, m] (row-major) by Cholesky; nil if a
    /// pivot is not positive (LAPACK's potrf fails there too).
    static func cholesky(_ a: [Double], _ b: [Double], _ m: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: m * m)
        for j in 0..<m {
            var d = a[j * m + j]
            for k in 0..<j { d -= l[j * m + k] * l[j * m + k] }
            guard d > 0 && d.isFinite else { return nil }
            let root = d.squareRoot()
            l[j * m + j] = root
            for i in (j + 1)..<max(j + 1, m) {
                var s = a[i * m + j]
                for k in 0..<j { s -= l[i * m + k] * l[j * m + k] }
                l[i * m + j] = s / root
            }
        }
        var y = b
        for i in 0..<m {
            for k in 0..<i { y[i] -= l[i * m + k] * y[k] }
            y[i] /= l[i * m + i]
        }
        for i in stride(from: m - 1, through: 0, by: -1) {
            for k in (i + 1)..<max(i + 1, m) { y[i] -= l[k * m + i] * y[k] }
            y[i] /= l[i * m + i]
        }
        return y
    }

    /// Minimum-norm solution through the eigen-decomposition of symmetric A (cyclic Jacobi),
    /// ignoring eigenvalues below 1e-12 of the largest.
    static func pseudoInverse(_ a: [Double], _ b: [Double], _ m: Int) -> [Double] {
        var s = a
        var v = [Double](repeating: 0, count: m * m)
        for i in 0..<m { v[i * m + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<m { for q in (p + 1)..<max(p + 1, m) { off += s[p * m + q] * s[p * m + q] } }
            if off < 1e-30 { break }
            for p in 0..<m {
                for q in (p + 1)..<max(p + 1, m) where s[p * m + q] != 0 {
                    let theta = (s[q * m + q] - s[p * m + p]) / (2 * s[p * m + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), sn = t * c
                    for k in 0..<m {
                        let (skp, skq) = (s[k * m + p], s[k * m + q])
                        s[k * m + p] = c * skp - sn * skq
                        s[k * m + q] = sn * skp + c * skq
                    }
                    for k in 0..<m {
                        let (spk, sqk) = (s[p * m + k], s[q * m + k])
                        s[p * m + k] = c * spk - sn * sqk
                        s[q * m + k] = sn * spk + c * sqk
                    }
                    for k in 0..<m {
                        let (vkp, vkq) = (v[k * m + p], v[k * m + q])
                        v[k * m + p] = c * vkp - sn * vkq
                        v[k * m + q] = sn * vkp + c * vkq
                    }
                }
            }
        }
        let largest = (0..<m).map { abs(s[$0 * m + $0]) }.max() ?? 0
        var x = [Double](repeating: 0, count: m)
        for e in 0..<m {
            let lambda = s[e * m + e]
            guard lambda > largest * 1e-12 && lambda > 0 else { continue }
            var proj = 0.0
            for k in 0..<m { proj += v[k * m + e] * b[k] }
            for k in 0..<m { x[k] += v[k * m + e] * proj / lambda }
        }
        return x
    }
}
