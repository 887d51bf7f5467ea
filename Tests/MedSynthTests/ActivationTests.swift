import Testing
import Glibc
@testable import MedSynth
@testable import MedSynthCore

/// Standard-normal values scaled by `scale`, moved at least 0.1 away from each of `kinks` so that
/// finite differences (step 0.01) never straddle a point where the derivative jumps.
func tensorAwayFromKinks(_ shape: [Int], seed: UInt64, scale: Float = 3, kinks: [Float]) throws -> Tensor {
    let t = try randomTensor(shape, seed: seed, scale: scale)
    for i in 0..<t.count {
        for k in kinks where abs(t.data[i] - k) < 0.1 {
            t.data[i] = t.data[i] < k ? k - 0.1 - 0.05 * Float(i % 3) : k + 0.1 + 0.05 * Float(i % 3)
        }
    }
    return t
}

@Suite struct ActivationTests {
    @Test func handComputedValues() throws {
        let x = try Tensor([-2, -0.5, 0, 0.5, 3, 7], shape: [6])
        #expect(try relu(x).scalars == [0, 0, 0, 0.5, 3, 7])
        #expect(try relu6(x).scalars == [0, 0, 0, 0.5, 3, 6])
        // slope 0.1: −2·0.1, −0.5·0.1, 0, then identity
        expectClose(try leakyRelu(x, negativeSlope: 0.1).scalars, [-0.2, -0.05, 0, 0.5, 3, 7], atol: 1e-7)
        #expect(try leakyRelu(Tensor([-100], shape: [1])).item == -1)   // default slope 0.01
        // σ(0) = ½; σ(ln 3) = 1/(1 + ⅓) = ¾; σ(−ln 3) = ¼
        let l3 = Float(log(3.0))
        expectClose(try sigmoid(try Tensor([0, l3, -l3], shape: [3])).scalars, [0.5, 0.75, 0.25])
        // tanh(ln 2) = (2 − ½)/(2 + ½) = 0.6
        expectClose(try tanh(try Tensor([0, Float(log(2.0))], shape: [2])).scalars, [0, 0.6])
        // silu(ln 3) = ln 3 · ¾; silu(0) = 0
        expectClose(try silu(try Tensor([0, l3], shape: [2])).scalars, [0, 0.823959217])
        // gelu(±1) = ±Φ(±1) = 0.841344746, −0.158655254 (erf form); tanh form 0.841191991, −0.158808009
        expectClose(try gelu(try Tensor([0, 1, -1], shape: [3])).scalars, [0, 0.841344746, -0.158655254], atol: 1e-6, rtol: 1e-6)
        expectClose(try gelu(try Tensor([0, 1, -1], shape: [3]), approximate: .tanh).scalars, [0, 0.841191991, -0.158808009],
                    atol: 1e-6, rtol: 1e-6)
        // saturation: no NaN from overflowing exponentials
        let extreme = try Tensor([-200, 200], shape: [2])
        #expect(try sigmoid(extreme).scalars == [0, 1])
        #expect(try silu(extreme).scalars == [-0, 200])
        #expect(try gelu(extreme).scalars == [-0, 200])
    }

    @Test func nanPropagates() throws {
        // torch's backward kernels pass dy through at NaN (their "is it zero" tests are false)
        for f in [relu, relu6] {
            let v = try Tensor([.nan], shape: [1], requiresGrad: true)
            try f(v).backward(seed: Tensor([3], shape: [1]))
            #expect(v.grad?.item == 3)
        }
        let x = try Tensor([.nan], shape: [1])
        let functions: [(Tensor) throws -> Tensor] = [relu, relu6, { try leakyRelu($0) }, sigmoid, tanh, silu, { try gelu($0) },
                                               { try gelu($0, approximate: .tanh) }]
        for f in functions {
            #expect(try f(x).item.isNaN)
        }
    }

    @Test func gradientsAtTheKinksFollowTorch() throws {
        // relu'(0) = 0; relu6' is 0 at 0 and at 6 (and outside), 1 strictly inside
        let x = try Tensor([0, 6, 3, -1, 7], shape: [5], requiresGrad: true)
        try relu(x).backward()
        #expect(x.grad?.scalars == [0, 1, 1, 0, 1])
        x.zeroGrad()
        try relu6(x).backward()
        #expect(x.grad?.scalars == [0, 0, 1, 0, 0])
        x.zeroGrad()
        // leaky relu: slope at and below 0
        try leakyRelu(x, negativeSlope: 0.2).backward()
        #expect(x.grad?.scalars == [0.2, 1, 1, 0.2, 1])
        // σ'(0) = ¼, tanh'(0) = 1, silu'(0) = ½, gelu'(0) = Φ(0) = ½
        let z = try Tensor([0], shape: [1], requiresGrad: true)
        for (f, expected) in [(sigmoid, Float(0.25)), (tanh, 1), (silu, 0.5), ({ try gelu($0) }, 0.5),
                              ({ try gelu($0, approximate: .tanh) }, 0.5)] as [((Tensor) throws -> Tensor, Float)] {
            z.zeroGrad()
            try f(z).backward()
            #expect(z.grad?.item == expected)
        }
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        let kinked = try tensorAwayFromKinks([4, 5, 6], seed: 1, kinks: [0, 6])
        try expectGradientsMatch([kinked]) { t in try relu(t[0]) }
        try expectGradientsMatch([kinked]) { t in try relu6(t[0]) }
        try expectGradientsMatch([kinked]) { t in try leakyRelu(t[0]) }
        try expectGradientsMatch([kinked]) { t in try leakyRelu(t[0], negativeSlope: 0.3) }
        let smooth = try randomTensor([4, 5, 6], seed: 2, scale: 2)
        try expectGradientsMatch([smooth]) { t in try sigmoid(t[0]) }
        try expectGradientsMatch([smooth]) { t in try tanh(t[0]) }
        try expectGradientsMatch([smooth]) { t in try silu(t[0]) }
        try expectGradientsMatch([smooth]) { t in try gelu(t[0]) }
        try expectGradientsMatch([smooth]) { t in try gelu(t[0], approximate: .tanh) }
    }

    @Test func largeTensorsMatchScalarFormulas() throws {
        // 100 000 elements: several parallel blocks; compare with the scalar formulas in double
        let x = try randomTensor([100_000], seed: 3, scale: 3)
        let erfForm = try gelu(x), tanhForm = try gelu(x, approximate: .tanh), s = try sigmoid(x), r = try relu(x), sw = try silu(x)
        for i in stride(from: 0, to: x.count, by: 97) {
            let v = Double(x.data[i])
            let sig = 1 / (1 + Glibc.exp(-v))
            #expect(abs(Double(erfForm.data[i]) - v * 0.5 * (1 + erf(v / 2.0.squareRoot()))) < 1e-5)
            let inner = (2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)
            #expect(abs(Double(tanhForm.data[i]) - 0.5 * v * (1 + Glibc.tanh(inner))) < 1e-5)
            #expect(abs(Double(s.data[i]) - sig) < 1e-6)
            #expect(abs(Double(sw.data[i]) - v * sig) < 1e-5)
            #expect(r.data[i] == max(x.data[i], 0))
        }
        // backward of the large tensor: dx = dy·σ(1 − σ) for sigmoid, checked at a few points
        let seed = try randomTensor([100_000], seed: 4, requiresGrad: false)
        try s.backward(seed: seed)
        for i in stride(from: 0, to: x.count, by: 1009) {
            let y = Double(s.data[i])
            #expect(abs(Double(x.grad!.data[i]) - Double(seed.data[i]) * (1 - y) * y) < 1e-6)
        }
    }

    /// |a − b| in units in the last place of b (as a float).
    private func ulps(_ a: Float, _ b: Double) -> Double {
        let f = Float(b)
        return abs(Double(a) - b) / Double(f == 0 ? Float.leastNonzeroMagnitude : f.ulp)
    }

    @Test func fastMathAccuracy() {
        // exp over its whole finite range, including results in the subnormal range: ≤ 1.5 ulp
        var worst = 0.0
        var x: Float = -103.9
        while x < 88.7 {
            worst = max(worst, ulps(VectorMath.exp(x), Glibc.exp(Double(x))))
            x += 0.0173
        }
        #expect(worst <= 1.5, "exp: \(worst) ulp")
        #expect(VectorMath.exp(0) == 1)
        #expect(VectorMath.exp(89) == .infinity && VectorMath.exp(.infinity) == .infinity)
        #expect(VectorMath.exp(-105) == 0 && VectorMath.exp(-.infinity) == 0)
        #expect(VectorMath.exp(.nan).isNaN)
        // erf: absolute error of the A&S approximation ≤ 1.5e-7, plus float rounding of its terms
        var erfWorst = 0.0
        x = -6
        while x < 6 { erfWorst = max(erfWorst, abs(Double(VectorMath.erf(x)) - erf(Double(x)))); x += 0.00137 }
        #expect(erfWorst <= 6e-7, "erf: \(erfWorst)")   // 1.5e-7 + roundings near |x| = 0 (as torch)
        #expect(VectorMath.erf(.infinity) == 1 && VectorMath.erf(-.infinity) == -1 && VectorMath.erf(.nan).isNaN)
        // tanh: a few ulp everywhere, exact limits, odd, tiny arguments keep their precision
        var tanhWorst = 0.0
        x = -12
        while x < 12 { tanhWorst = max(tanhWorst, ulps(VectorMath.tanh(x), Glibc.tanh(Double(x)))); x += 0.00071 }
        for tiny: Float in [1e-30, 1e-10, 1e-5, 3e-3, -2e-4] { tanhWorst = max(tanhWorst, ulps(VectorMath.tanh(tiny), Glibc.tanh(Double(tiny)))) }
        #expect(tanhWorst <= 4, "tanh: \(tanhWorst) ulp")
        #expect(VectorMath.tanh(.infinity) == 1 && VectorMath.tanh(-.infinity) == -1 && VectorMath.tanh(.nan).isNaN)
        #expect(VectorMath.tanh(-0.0).sign == .minus && VectorMath.tanh(50) == 1)
    }
}
