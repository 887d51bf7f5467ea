// The seeded generator (Runtime/Random.swift): Philox4x32-10 known answers, determinism, the
// distributions' moments within statistical bounds, and state save/restore.

import Testing
@testable import MedSynth
@testable import MedSynthCore

private func words(_ t: (UInt32, UInt32, UInt32, UInt32)) -> [UInt32] { [t.0, t.1, t.2, t.3] }

@Suite struct RandomTests {
    // MARK: - Philox4x32-10

    @Test func philoxKnownAnswers() {
        // Random123's kat_vectors for philox4x32_10 (counter c0..c3, key k0 k1 → output):
        //   0 0 0 0 / 0 0                         → 6627e8d5 e169c58d bc57ac4c 9b00dbd8
        //   ffffffff ×4 / ffffffff ×2              → 408f276d 41c83b0e a20bc7c6 6d5451fd
        //   243f6a88 85a308d3 13198a2e 03707344 / a4093822 299f31d0 (digits of π)
        //                                         → d16cfe09 94fdcceb 5001e420 24126ea1
        #expect(words(RandomGenerator.philox4x32((0, 0, 0, 0), key: (0, 0))) == [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        let ones = UInt32.max
        #expect(words(RandomGenerator.philox4x32((ones, ones, ones, ones), key: (ones, ones)))
                == [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD])
        #expect(words(RandomGenerator.philox4x32((0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), key: (0xA409_3822, 0x299F_31D0)))
                == [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1])
    }

    @Test func generatorStreamIsPhiloxOfTheBlockCounterUnderTheSeed() {
        // seed 0, block 0 is the all-zero known answer; block n uses counter (n, 0, 0, 0)
        let g = RandomGenerator(seed: 0)
        #expect((0..<4).map { _ in g.nextUInt32() } == [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        #expect((0..<4).map { _ in g.nextUInt32() } == words(RandomGenerator.philox4x32((1, 0, 0, 0), key: (0, 0))))
        // the 64-bit seed is the key, low word first
        let seed: UInt64 = 0x299F_31D0_A409_3822
        let h = RandomGenerator(seed: seed)
        #expect((0..<4).map { _ in h.nextUInt32() } == words(RandomGenerator.philox4x32((0, 0, 0, 0), key: (0xA409_3822, 0x299F_31D0))))
        #expect(words(RandomGenerator.philox(counter: 0x0000_0002_0000_0001, key: seed))
                == words(RandomGenerator.philox4x32((1, 2, 0, 0), key: (0xA409_3822, 0x299F_31D0))))
        // nextUInt64 is two words, high first
        let u = RandomGenerator(seed: 0)
        #expect(u.nextUInt64() == 0x6627_E8D5_E169_C58D)
    }

    // MARK: - determinism

    @Test func sameSeedSameStreamDifferentSeedsDiffer() {
        let a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let sa = (0..<1000).map { _ in a.nextUInt32() }, sb = (0..<1000).map { _ in b.nextUInt32() }
        let sc = (0..<1000).map { _ in c.nextUInt32() }
        #expect(sa == sb)
        #expect(sa != sc)
        // neighbouring seeds are not shifted copies of each other
        #expect(Set(sa).intersection(sc).count < 5)
        let n1 = RandomGenerator(seed: 7), n2 = RandomGenerator(seed: 7)
        #expect((0..<100).map { _ in n1.normal() } == (0..<100).map { _ in n2.normal() })
        // forks are deterministic and differ from the parent
        let f1 = RandomGenerator(seed: 9).fork(), f2 = RandomGenerator(seed: 9).fork()
        #expect(f1.seed == f2.seed && f1.seed != 9)
        #expect(f1.nextUInt32() == f2.nextUInt32())
    }

    // MARK: - distributions

    @Test func uniformMoments() {
        // U[0, 1): mean ½, variance 1/12. For n = 100 000 the standard errors are
        // σ/√n = 0.2887/316 = 0.00091 (mean) and √(1/80 − 1/144)/√n = 0.0745/316 = 0.00024 (variance);
        // the bounds are 5 standard errors.
        let g = RandomGenerator(seed: 1)
        let n = 100_000
        var xs = [Float](repeating: 0, count: n)
        xs.withUnsafeMutableBufferPointer { g.fillUniform($0.baseAddress!, n) }
        #expect(xs.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = xs.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = xs.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)
        #expect(abs(mean - 0.5) < 0.0046, "mean \(mean)")
        #expect(abs(variance - 1.0 / 12) < 0.0012, "variance \(variance)")
        // each tenth of [0, 1) gets 10 000 ± 5·√(10 000·0.9) = ±474
        var bins = [Int](repeating: 0, count: 10)
        for x in xs { bins[Int(x * 10)] += 1 }
        #expect(bins.allSatisfy { abs($0 - 10_000) < 474 }, "\(bins)")
        // a shifted range
        let y = [Float](unsafeUninitializedCapacity: 1000) { buffer, count in
            RandomGenerator(seed: 2).fillUniform(buffer.baseAddress!, 1000, low: -3, high: -1); count = 1000
        }
        #expect(y.allSatisfy { $0 >= -3 && $0 < -1 })
    }

    @Test func normalMoments() {
        // N(0, 1), n = 100 000: standard errors 1/√n = 0.0032 (mean), √(2/n) = 0.0045 (variance),
        // √(0.6827·0.3173/n) = 0.0015 (fraction within ±1); bounds at 5 standard errors.
        let g = RandomGenerator(seed: 3)
        let n = 100_000
        let xs = (0..<n).map { _ in Double(g.normal()) }
        #expect(xs.allSatisfy { $0.isFinite })
        let mean = xs.reduce(0, +) / Double(n)
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
        let withinOne = Double(xs.filter { abs($0) < 1 }.count) / Double(n)
        #expect(abs(mean) < 0.016, "mean \(mean)")
        #expect(abs(variance - 1) < 0.023, "variance \(variance)")
        #expect(abs(withinOne - 0.6827) < 0.0074, "P(|x| < 1) = \(withinOne)")
        // the pair's two values are independent: correlation of consecutive draws ≈ 0 (5/√n)
        var c = 0.0
        for i in stride(from: 0, to: n - 1, by: 2) { c += xs[i] * xs[i + 1] }
        #expect(abs(c / Double(n / 2)) < 0.023)
        // mean and std arguments
        var ys = [Float](repeating: 0, count: 20_000)
        ys.withUnsafeMutableBufferPointer { RandomGenerator(seed: 4).fillNormal($0.baseAddress!, 20_000, mean: 5, std: 0.5) }
        let m = ys.reduce(0.0) { $0 + Double($1) } / 20_000
        #expect(abs(m - 5) < 0.018)   // 5·0.5/√20 000
    }

    @Test func intBelowIsInRangeAndRoughlyUniform() {
        let g = RandomGenerator(seed: 5)
        // bound 7, 70 000 draws: each value 10 000 ± 5·√(10 000·6/7) = ±463
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 {
            let k = g.int(below: 7)
            #expect((0..<7).contains(k))
            if (0..<7).contains(k) { counts[k] += 1 }
        }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 463 }, "\(counts)")
        // degenerate and huge bounds
        #expect(g.int(below: 1) == 0 && g.int(below: 0) == 0 && g.int(below: -5) == 0)
        for _ in 0..<1000 {
            let big = g.int(below: Int.max)
            #expect(big >= 0 && big < Int.max)
        }
        // a bound above 2^32 reaches its upper half
        #expect((0..<100).contains { _ in g.int(below: 1 << 40) >= 1 << 39 })
    }

    @Test func permutationIsAPermutation() {
        let g = RandomGenerator(seed: 6)
        for n in [0, 1, 2, 10, 1000] {
            let p = g.permutation(n)
            #expect(p.sorted() == Array(0..<n))
        }
        #expect(g.permutation(100) != Array(0..<100))
        // every position receives every value about equally often: 3 elements, 6000 shuffles,
        // each (position, value) 2000 ± 5·√(2000·2/3) = ±183
        var hits = [[Int]](repeating: [0, 0, 0], count: 3)
        for _ in 0..<6000 { for (i, v) in g.permutation(3).enumerated() { hits[i][v] += 1 } }
        #expect(hits.allSatisfy { $0.allSatisfy { abs($0 - 2000) < 183 } }, "\(hits)")
        var a = ["x"]
        g.shuffle(&a)
        #expect(a == ["x"])
    }

    // MARK: - state

    @Test func stateRestoreContinuesTheStream() throws {
        // at a block boundary, mid-block (5 words drawn: block 1, index 1), and with a spare normal
        for drawn in [0, 4, 5, 7] {
            let g = RandomGenerator(seed: 11)
            for _ in 0..<drawn { _ = g.nextUInt32() }
            let restored = try RandomGenerator(state: g.state)
            #expect((0..<50).map { _ in restored.nextUInt32() } == (0..<50).map { _ in g.nextUInt32() }, "after \(drawn) words")
        }
        let g = RandomGenerator(seed: 12)
        _ = g.uniform()
        _ = g.normal()             // leaves the pair's second value as the spare
        #expect(g.state[3] != UInt64.max)
        let restored = try RandomGenerator(state: g.state)
        #expect(restored.state == g.state)
        #expect((0..<21).map { _ in restored.normal() } == (0..<21).map { _ in g.normal() })
        #expect(restored.uniform() == g.uniform())
        // a fresh generator's state, and what it holds
        #expect(RandomGenerator(seed: 13).state == [13, 0, 4, UInt64.max])
        let h = RandomGenerator(seed: 13)
        for _ in 0..<5 { _ = h.nextUInt32() }
        #expect(h.state == [13, 2, 1, UInt64.max])
    }

    @Test func invalidStatesAreRejected() {
        expectInvalidArgument("4 values") { _ = try RandomGenerator(state: [1, 2, 3]) }
        expectInvalidArgument("4 values") { _ = try RandomGenerator(state: [1, 2, 5, 0]) }
        expectInvalidArgument("4 values") { _ = try RandomGenerator(state: []) }
    }
}
