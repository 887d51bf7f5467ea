// Gradient checking against central finite differences, used by every operation's tests.

import Testing
@testable import MedSynth
@testable import MedSynthCore

/// A tensor of standard-normal values (seeded), optionally requiring a gradient.
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, requiresGrad: Bool = true) throws -> Tensor {
    let t = try Tensor(uninitialized: shape)
    RandomGenerator(seed: seed).fillNormal(t.data, t.count, std: scale)
    t.requiresGrad = requiresGrad
    return t
}

/// Checks autograd against finite differences for L = Σ f(inputs) ⊙ r with a fixed random r:
/// every element of every input that requires a gradient (or `maxChecks` of them, spread evenly)
/// must satisfy |analytic − numeric| ≤ atol + rtol·|numeric|. Fails the test, naming the input and
/// index, on the first mismatch. `f` must be deterministic.
func expectGradientsMatch(
    _ inputs: [Tensor], eps: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2, maxChecks: Int = 400,
    sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) throws -> Tensor
) throws {
    for t in inputs { t.grad = nil }
    let out = try f(inputs)
    let r = try randomTensor(out.shape, seed: 99, requiresGrad: false)
    try out.backward(seed: r)

    func loss() throws -> Double {
        let o = try withoutGrad { try f(inputs) }
        var s = 0.0
        for i in 0..<o.count { s += Double(o.data[i]) * Double(r.data[i]) }
        return s
    }
    var checked = 0
    for (which, t) in inputs.enumerated() where t.requiresGrad {
        let analytic = t.grad?.scalars ?? [Float](repeating: 0, count: t.count)
        let step = max(1, t.count / maxChecks)
        for i in stride(from: 0, to: t.count, by: step) {
            let saved = t.data[i]
            t.data[i] = saved + eps
            let plus = try loss()
            t.data[i] = saved - eps
            let minus = try loss()
            t.data[i] = saved
            let numeric = Float((plus - minus) / (2 * Double(eps)))
            let ok = abs(analytic[i] - numeric) <= atol + rtol * abs(numeric)
            #expect(ok, "input \(which) \(t.shape) index \(i): analytic \(analytic[i]) vs numeric \(numeric)",
                    sourceLocation: sourceLocation)
            if !ok { return }
            checked += 1
        }
    }
    #expect(checked > 0, "no gradient was checked", sourceLocation: sourceLocation)
}

/// |a − b| ≤ atol + rtol·|b| elementwise, reporting the first difference.
func expectClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "lengths \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    for i in 0..<min(a.count, b.count) where !(abs(a[i] - b[i]) <= atol + rtol * abs(b[i])) {
        Issue.record("index \(i): \(a[i]) vs \(b[i])", sourceLocation: sourceLocation)
        return
    }
}
