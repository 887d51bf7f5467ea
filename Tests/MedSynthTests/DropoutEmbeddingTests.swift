import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct DropoutEmbeddingTests {
    // MARK: dropout

    @Test func identityWhenNotTrainingOrZeroProbability() throws {
        let x = try randomTensor([4, 5], seed: 1)
        let generator = RandomGenerator(seed: 1)
        #expect(try dropout(x, p: 0.5, training: false, generator: generator) === x)
        #expect(try dropout(x, p: 0, generator: generator) === x)
        #expect(try dropout2d(Tensor(zeros: [2, 3, 4, 4]), p: 0.3, training: false, generator: generator).count == 96)
        // nothing was drawn from the generator
        #expect(generator.state == RandomGenerator(seed: 1).state)
    }

    @Test func probabilityOneGivesZeros() throws {
        let x = try randomTensor([3, 4], seed: 2)
        let y = try dropout(x, p: 1, generator: RandomGenerator(seed: 2))
        #expect(y.scalars.allSatisfy { $0 == 0 })
        try y.backward()
        #expect(x.grad?.scalars.allSatisfy { $0 == 0 } == true)
        #expect(try dropout2d(Tensor(repeating: 1, shape: [1, 2, 2, 2]), p: 1, generator: RandomGenerator(seed: 2))
            .scalars == [Float](repeating: 0, count: 8))
    }

    @Test func invalidProbabilitiesThrow() throws {
        let x = try Tensor(zeros: [4])
        let g = RandomGenerator(seed: 3)
        for p in [-0.1, 1.1, Double.nan] {
            #expect(throws: MedSynthError.self) { try dropout(x, p: p, generator: g) }
            #expect(throws: MedSynthError.self) { try dropout(x, p: p, training: false, generator: g) }
            #expect(throws: MedSynthError.self) { try dropout2d(Tensor(zeros: [1, 2, 2, 2]), p: p, generator: g) }
        }
        #expect(throws: MedSynthError.self) { try dropout2d(Tensor(zeros: [2, 4]), p: 0.5, generator: g) }  // rank 2
    }

    @Test func statisticsAndScaleOfKeptValues() throws {
        // 400 000 elements, p = 0.3: the zero fraction has standard deviation √(0.3·0.7/4e5) ≈ 7e-4
        let n = 400_000
        let x = try Tensor(uninitialized: [n])
        RandomGenerator(seed: 4).fillUniform(x.data, n, low: 0.5, high: 1.5)   // never 0
        let p = 0.3
        let y = try dropout(x, p: p, generator: RandomGenerator(seed: 5))
        var zeros = 0
        let scale = 1 / Float(1 - p)
        for i in 0..<n {
            if y.data[i] == 0 { zeros += 1 } else { #expect(y.data[i] == x.data[i] * scale) }
        }
        #expect(abs(Double(zeros) / Double(n) - p) < 0.004)
        // the same seed gives the same mask; another seed a different one
        let again = try dropout(x, p: p, generator: RandomGenerator(seed: 5))
        #expect(again.scalars == y.scalars)
        let other = try dropout(x, p: p, generator: RandomGenerator(seed: 6))
        #expect(other.scalars != y.scalars)
        // successive calls on one generator draw fresh masks
        let g = RandomGenerator(seed: 5)
        let first = try dropout(x, p: p, generator: g), second = try dropout(x, p: p, generator: g)
        #expect(first.scalars == y.scalars && second.scalars != first.scalars)
    }

    @Test func gradientIsTheMask() throws {
        let x = try positiveTensor([50, 40], seed: 7)
        let y = try dropout(x, p: 0.4, generator: RandomGenerator(seed: 8))
        try y.backward()
        // dx = mask: 0 where dropped, 1/(1 − p) where kept
        let scale = 1 / Float(1 - 0.4)
        for i in 0..<x.count { #expect(x.grad!.data[i] == (y.data[i] == 0 ? 0 : scale)) }
        // finite differences with the same mask each time (fresh generator with the same seed)
        try expectGradientsMatch([randomTensor([6, 7], seed: 9)]) { t in
            try dropout(t[0], p: 0.4, generator: RandomGenerator(seed: 10))
        }
        try expectGradientsMatch([randomTensor([3, 4, 3, 3], seed: 11)]) { t in
            try dropout2d(t[0], p: 0.5, generator: RandomGenerator(seed: 12))
        }
    }

    @Test func dropout2dDropsWholeChannels() throws {
        // 64·32 channels of 3×3 (and of length 5 for the 3-D form): each channel all zero or all scaled
        for shape in [[64, 32, 3, 3], [64, 32, 5]] {
            let x = try Tensor(repeating: 2, shape: shape)
            let p = 0.25
            let y = try dropout2d(x, p: p, generator: RandomGenerator(seed: 13))
            let plane = shape.dropFirst(2).reduce(1, *), channels = 64 * 32
            var dropped = 0
            for c in 0..<channels {
                let values = Set(y.scalars[(c * plane)..<((c + 1) * plane)])
                #expect(values == [0] || values == [2 / Float(1 - p)])
                if values == [0] { dropped += 1 }
            }
            // σ = √(0.25·0.75/2048) ≈ 0.0096
            #expect(abs(Double(dropped) / Double(channels) - p) < 0.05)
        }
    }

    // MARK: embedding

    @Test func handComputedEmbedding() throws {
        // 4 embeddings of dim 2: rows [0,1], [10,11], [20,21], [30,31]
        let w = try Tensor([0, 1, 10, 11, 20, 21, 30, 31], shape: [4, 2], requiresGrad: true)
        let y = try embedding(indices: [2, 0, 2, 3], weight: w)
        #expect(y.shape == [4, 2] && y.scalars == [20, 21, 0, 1, 20, 21, 30, 31])
        // dy rows [1,2], [3,4], [5,6], [7,8]: row 2 gets [1+5, 2+6], row 0 [3,4], row 3 [7,8], row 1 nothing
        try y.backward(seed: Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [4, 2]))
        #expect(w.grad?.scalars == [3, 4, 0, 0, 6, 8, 7, 8])
        // padding index 2 (or −2): still read forward, no gradient
        for padding in [2, -2] {
            w.zeroGrad()
            let z = try embedding(indices: [2, 0, 2, 3], weight: w, paddingIndex: padding)
            #expect(z.scalars == y.scalars)
            try z.backward(seed: Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [4, 2]))
            #expect(w.grad?.scalars == [3, 4, 0, 0, 0, 0, 7, 8])
        }
        #expect(try embedding(indices: [], weight: w).shape == [0, 2])
    }

    @Test func embeddingGradients() throws {
        let w = try randomTensor([7, 5], seed: 14)
        try expectGradientsMatch([w]) { t in try embedding(indices: [3, 1, 3, 6, 0, 3], weight: t[0]) }
        // (padding rows deliberately get no gradient, so they are covered by the hand-computed test)
        // many rows, wide embedding: parallel over columns, repeated indices summed in order
        let big = try randomTensor([10, 4096], seed: 15)
        let indices = (0..<64).map { $0 % 10 }
        let y = try embedding(indices: indices, weight: big)
        #expect(Array(y.scalars[4096..<8192]) == Array(big.scalars[4096..<8192]))
        try y.backward()
        #expect(big.grad!.scalars.allSatisfy { $0 == 6 || $0 == 7 })   // 64 rows over 10 ids: 7 or 6 each
    }

    @Test func embeddingErrorsThrow() throws {
        let w = try Tensor(zeros: [4, 3])
        #expect(throws: MedSynthError.self) { try embedding(indices: [0, 4], weight: w) }
        #expect(throws: MedSynthError.self) { try embedding(indices: [-1], weight: w) }
        #expect(throws: MedSynthError.self) { try embedding(indices: [0], weight: Tensor(zeros: [4])) }
        #expect(throws: MedSynthError.self) { try embedding(indices: [0], weight: w, paddingIndex: 4) }
        #expect(throws: MedSynthError.self) { try embedding(indices: [0], weight: w, paddingIndex: -5) }
    }
}
