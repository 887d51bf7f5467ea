// LIME's engine side (Explain/): the sample matrix, lime's kernel weights, the hidden image and
// perturbed images, the weighted ridge against its closed form, the singular fallback, and the
// classifier path against classifying the perturbed images one by one. Equality with the lime
// package's own numbers is tested from Python (python/tests/test_lime.py).

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Solves A x = b by Gaussian elimination with partial pivoting (an independent check of Cholesky).
private func gaussSolve(_ a: [[Double]], _ b: [Double]) -> [Double] {
    var m = a, y = b
    let n = b.count
    for col in 0..<n {
        let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
        m.swapAt(col, pivot)
        y.swapAt(col, pivot)
        for row in (col + 1)..<n {
            let f = m[row][col] / m[col][col]
            for k in col..<n { m[row][k] -= f * m[col][k] }
            y[row] -= f * y[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        var s = y[row]
        for k in (row + 1)..<n { s -= m[row][k] * x[k] }
        x[row] = s / m[row][row]
    }
    return x
}

@Suite struct LimeTests {
    @Test func samplesStartWithTheImageAndAreSeededBernoulliHalf() throws {
        let z = try LimeSampling.sampleMatrix(samples: 2000, features: 37, seed: 5)
        #expect(z[0..<37].allSatisfy { $0 == 1 })
        #expect(z.allSatisfy { $0 <= 1 })
        let mean = Double(z[37...].reduce(0) { $0 + Int($1) }) / Double(z.count - 37)
        #expect(abs(mean - 0.5) < 0.01)
        #expect(try LimeSampling.sampleMatrix(samples: 2000, features: 37, seed: 5) == z)
        #expect(try LimeSampling.sampleMatrix(samples: 2000, features: 37, seed: 6) != z)
        #expect(try LimeSampling.sampleMatrix(samples: 2000, features: 37, seed: 5, run: 1) != z)   // the second, independent draw
        expectInvalidArgument("superpixels") { _ = try LimeSampling.sampleMatrix(samples: 10, features: 0, seed: 0) }
    }

    @Test func kernelWeightsAreLimesExponentialKernelOfTheCosineDistance() {
        // rows with k of 4 superpixels on: d = 1 − √(k/4), w = √exp(−d²/0.25²); lime.md's table
        let z: [UInt8] = [1, 1, 1, 1,  1, 1, 0, 0,  1, 0, 0, 0,  0, 0, 0, 0,  0, 1, 1, 0]
        let w = z.withUnsafeBufferPointer { LimeSampling.kernelWeights($0.baseAddress!, samples: 5, features: 4, kernelWidth: 0.25) }
        let expected = [1.0, 2.0 / 4, 1.0 / 4, 0, 2.0 / 4].map { k -> Double in
            let d = k == 0 ? 1.0 : 1 - k.squareRoot()
            return exp(-d * d / 0.0625).squareRoot()
        }
        for (a, b) in zip(w, expected) { #expect(abs(a - b) < 1e-15) }
        #expect(abs(w[1] - 0.503) < 1e-3 && abs(w[2] - 0.135) < 1e-3)
    }

    @Test func hiddenImageIsEachSuperpixelsMeanOrTheGivenColour() throws {
        // 2x3 image, 2 channels, channels-first; superpixels [0 0 1 / 1 1 0]
        let pixels: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6,   1, 2, 3, 4, 5, 6]
        let sp = try Superpixels(labels: [0, 0, 1, 1, 1, 0], height: 2, width: 3)
        try pixels.withUnsafeBufferPointer { p in
            let image = try LimeImage(pixels: p.baseAddress!, height: 2, width: 3, channels: 2, channelsLast: false)
            let hidden = try LimeSampling.hiddenImage(image, sp, fill: .segmentMean(integerLevels: 0))
            let m0 = (Float(0.1) + 0.2 + 0.6) / 3, m1 = (Float(0.3) + 0.4 + 0.5) / 3
            let expected: [Float] = [m0, m0, m1, m1, m1, m0, 3, 3, 4, 4, 4, 3]
            for (a, b) in zip(hidden, expected) { #expect(abs(a - b) < 1e-6) }
            let grey = try LimeSampling.hiddenImage(image, sp, fill: .value([0.5, 7]))
            #expect(grey == [Float](repeating: 0.5, count: 6) + [Float](repeating: 7, count: 6))
            expectInvalidArgument("hide_color") { _ = try LimeSampling.hiddenImage(image, sp, fill: .value([1, 2, 3])) }
        }
        // uint8 levels: the mean of 10, 11, 11 (/255) is 10.67, lime's uint8 array keeps 10
        let levels: [Float] = [10, 11, 11, 200].map { $0 / 255 }
        let two = try Superpixels(labels: [0, 0, 0, 1], height: 2, width: 2)
        try levels.withUnsafeBufferPointer { p in
            let image = try LimeImage(pixels: p.baseAddress!, height: 2, width: 2, channels: 1, channelsLast: true)
            let hidden = try LimeSampling.hiddenImage(image, two, fill: .segmentMean(integerLevels: 255))
            #expect(hidden == [10 / 255, 10 / 255, 10 / 255, 200 / 255] as [Float])
        }
    }

    @Test func perturbedImagesTakeHiddenPixelsWhereTheirSuperpixelIsOff() throws {
        let (h, w, c) = (3, 4, 3)
        let pixels = (0..<(h * w * c)).map { Float($0) }
        let hidden = [Float](repeating: -1, count: h * w * c)
        let sp = try Superpixels(labels: [0, 0, 1, 1, 0, 2, 2, 1, 2, 2, 2, 1], height: h, width: w)
        let z: [UInt8] = [1, 1, 1,  0, 1, 0,  1, 0, 1]
        for channelsLast in [true, false] {
            var out = [Float](repeating: 0, count: 3 * h * w * c)
            try pixels.withUnsafeBufferPointer { p in
                let image = try LimeImage(pixels: p.baseAddress!, height: h, width: w, channels: c, channelsLast: channelsLast)
                hidden.withUnsafeBufferPointer { hp in
                    z.withUnsafeBufferPointer { zp in
                        out.withUnsafeMutableBufferPointer { o in
                            LimeSampling.perturb(image, hidden: hp.baseAddress!, sp, z: zp.baseAddress!, features: 3, first: 0, count: 3,
                                                 into: o.baseAddress!)
                        }
                    }
                }
                for s in 0..<3 {
                    for pixel in 0..<(h * w) {
                        for k in 0..<c {
                            let at = image.offset(pixel, k)
                            let kept = z[s * 3 + Int(sp.labels[pixel])] == 1
                            #expect(out[s * h * w * c + at] == (kept ? pixels[at] : -1))
                        }
                    }
                }
            }
        }
    }

    @Test func ridgeEqualsItsClosedFormWithWeightsAndIntercept() throws {
        // 40 samples, 5 binary features, random weights and targets
        let rng = RandomGenerator(seed: 11)
        let (n, s) = (40, 5)
        let x: [UInt8] = (0..<(n * s)).map { _ in UInt8(rng.nextUInt32() & 1) }
        let weights = (0..<n).map { _ in 0.1 + Double(rng.uniform()) }
        let y = (0..<n).map { _ in Double(rng.uniform()) }
        let problem = try x.withUnsafeBufferPointer { try RidgeProblem(x: $0.baseAddress!, samples: n, features: s, weights: weights) }
        for alpha in [0.0, 0.01, 1.0] {
            let fit = problem.fit(columns: Array(0..<s), alpha: alpha, moments: problem.moments(y))
            // closed form: weighted means, centred weighted normal equations, intercept
            let wsum = weights.reduce(0, +)
            let xm = (0..<s).map { j in (0..<n).map { weights[$0] * Double(x[$0 * s + j]) }.reduce(0, +) / wsum }
            let ym = (0..<n).map { weights[$0] * y[$0] }.reduce(0, +) / wsum
            var a = [[Double]](repeating: [Double](repeating: 0, count: s), count: s)
            var b = [Double](repeating: 0, count: s)
            for i in 0..<n {
                for p in 0..<s {
                    b[p] += weights[i] * (Double(x[i * s + p]) - xm[p]) * (y[i] - ym)
                    for q in 0..<s { a[p][q] += weights[i] * (Double(x[i * s + p]) - xm[p]) * (Double(x[i * s + q]) - xm[q]) }
                }
            }
            for p in 0..<s { a[p][p] += alpha }
            let beta = gaussSolve(a, b)
            let intercept = ym - zip(xm, beta).map { $0 * $1 }.reduce(0, +)
            for (u, v) in zip(fit.coefficients, beta) { #expect(abs(u - v) < 1e-10) }
            #expect(abs(fit.intercept - intercept) < 1e-10)
            // weighted R² against its definition
            let predictions = (0..<n).map { i in intercept + (0..<s).map { beta[$0] * Double(x[i * s + $0]) }.reduce(0, +) }
            let residual = (0..<n).map { weights[$0] * pow(y[$0] - predictions[$0], 2) }.reduce(0, +)
            let spread = (0..<n).map { weights[$0] * pow(y[$0] - ym, 2) }.reduce(0, +)
            #expect(abs(problem.score(fit, y, mean: ym) - (1 - residual / spread)) < 1e-10)
        }
    }

    @Test func singularSystemsFallBackToTheMinimumNormSolution() throws {
        // column 1 duplicates column 0: with alpha 0 the weight splits evenly, the fit is unchanged
        let n = 30
        let rng = RandomGenerator(seed: 2)
        var x = [UInt8](repeating: 0, count: n * 3)
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let a = UInt8(rng.nextUInt32() & 1), b = UInt8(rng.nextUInt32() & 1)
            x[i * 3] = a; x[i * 3 + 1] = a; x[i * 3 + 2] = b
            y[i] = 2 * Double(a) - Double(b) + 0.5
        }
        let problem = try x.withUnsafeBufferPointer { try RidgeProblem(x: $0.baseAddress!, samples: n, features: 3, weights: [Double](repeating: 1, count: n)) }
        let fit = problem.fit(columns: [0, 1, 2], alpha: 0, moments: problem.moments(y))
        #expect(abs(fit.coefficients[0] - 1) < 1e-8 && abs(fit.coefficients[1] - 1) < 1e-8 && abs(fit.coefficients[2] + 1) < 1e-8)
        #expect(abs(problem.score(fit, y, mean: problem.moments(y).mean) - 1) < 1e-10)
    }

    @Test func surrogateRecoversALinearModelAndOrdersByWeight() throws {
        // probability of class 1 = 0.2 + 0.3·z2 − 0.1·z5 exactly: ridge shrinks, but the order and signs hold
        let z = try LimeSampling.sampleMatrix(samples: 500, features: 8, seed: 1)
        let predictions: [Double] = (0..<500).flatMap { i -> [Double] in
            let p = 0.2 + 0.3 * Double(z[i * 8 + 2]) - 0.1 * Double(z[i * 8 + 5])
            return [1 - p, p]
        }
        let result = try z.withUnsafeBufferPointer { zp in
            try predictions.withUnsafeBufferPointer { pp in
                try LimeSurrogate.explain(z: zp.baseAddress!, samples: 500, features: 8, predictions: pp.baseAddress!, classes: 2,
                                          labels: [1, 0], options: LimeSurrogateOptions())
            }
        }
        #expect(result[0].features.prefix(2) == [2, 5])
        #expect(result[0].weights[0] > 0.25 && result[0].weights[1] < -0.07)
        #expect(abs(result[1].weights[0] + result[0].weights[0]) < 1e-9)   // class 0 is the mirror image
        #expect(result[0].score > 0.99)
        #expect(abs(result[0].localPrediction - (0.2 + 0.3 - 0.1)) < 0.02)
        expectInvalidArgument("label 2") {
            _ = try z.withUnsafeBufferPointer { zp in
                try predictions.withUnsafeBufferPointer { pp in
                    try LimeSurrogate.explain(z: zp.baseAddress!, samples: 500, features: 8, predictions: pp.baseAddress!, classes: 2,
                                              labels: [2], options: LimeSurrogateOptions())
                }
            }
        }
    }

    @Test func classifierPredictionsEqualClassifyingEachPerturbedImage() throws {
        let size = 16
        let classifier = try ImageClassifier(config: ClassifierConfig(architecture: "simple_cnn", numClasses: 3, inChannels: 1, imageSize: size, seed: 4))
        let rng = RandomGenerator(seed: 9)
        let pixels = (0..<(size * size)).map { _ in rng.uniform() }
        let labels = (0..<(size * size)).map { Int32(($0 / size) / 4 * 4 + ($0 % size) / 4) }   // 4x4 blocks, 16 superpixels
        let sp = try Superpixels(labels: labels, height: size, width: size)
        let z = try LimeSampling.sampleMatrix(samples: 23, features: 16, seed: 3)
        var batched = [Float](repeating: 0, count: 23 * 3)
        try pixels.withUnsafeBufferPointer { p in
            let image = try LimeImage(pixels: p.baseAddress!, height: size, width: size, channels: 1, channelsLast: false)
            let hidden = try LimeSampling.hiddenImage(image, sp, fill: .segmentMean(integerLevels: 0))
            try z.withUnsafeBufferPointer { zp in
                try batched.withUnsafeMutableBufferPointer { out in
                    try classifier.limePredictions(image, hidden: hidden, superpixels: sp, z: zp.baseAddress!, samples: 23, batchSize: 5,
                                                   into: out.baseAddress!)
                }
                // one perturbed image at a time through the ordinary prediction path
                for i in [0, 7, 22] {
                    var one = [Float](repeating: 0, count: size * size)
                    hidden.withUnsafeBufferPointer { hp in
                        one.withUnsafeMutableBufferPointer { o in
                            LimeSampling.perturb(image, hidden: hp.baseAddress!, sp, z: zp.baseAddress!, features: 16, first: i, count: 1, into: o.baseAddress!)
                        }
                    }
                    var probs = [Float](repeating: 0, count: 3)
                    try one.withUnsafeBufferPointer { op in
                        try probs.withUnsafeMutableBufferPointer { pp in
                            try classifier.predictProbabilities(ImageSet(images: op.baseAddress!, count: 1, channels: 1, height: size, width: size),
                                                                into: pp.baseAddress!)
                        }
                    }
                    for k in 0..<3 { #expect(abs(probs[k] - batched[i * 3 + k]) < 1e-5) }
                }
            }
        }
        #expect(batched[0..<3].reduce(0, +) > 0.999)
    }
}
