import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct UNetTests {
    static let reference = UNetConfig(imageSize: 64, inChannels: 1, baseChannels: 32, channelMultipliers: [1, 2, 4],
                                      resBlocks: 1, attentionResolutions: [16], numClasses: 4)

    @Test func referenceConfigurationHasTorchRefParameterCount() throws {
        // ../shared/bench/torch_ref.py UNet(): sum(p.numel()) = 2,735,585
        let net = try UNet(Self.reference, rng: RandomGenerator(seed: 0))
        #expect(net.parameterCount == 2_735_585)
    }

    /// torch_ref.py's `UNet().state_dict()`: names and shapes, in order (dumped with PyTorch 2.15).
    static let torchRefStateDict: [String] = [
        "temb.0.weight [128, 32]",
        "temb.0.bias [128]",
        "temb.2.weight [128, 128]",
        "temb.2.bias [128]",
        "cemb.weight [5, 128]",
        "inc.weight [32, 1, 3, 3]",
        "inc.bias [32]",
        "down.0.0.n1.weight [32]",
        "down.0.0.n1.bias [32]",
        "down.0.0.c1.weight [32, 32, 3, 3]",
        "down.0.0.c1.bias [32]",
        "down.0.0.t.weight [32, 128]",
        "down.0.0.t.bias [32]",
        "down.0.0.n2.weight [32]",
        "down.0.0.n2.bias [32]",
        "down.0.0.c2.weight [32, 32, 3, 3]",
        "down.0.0.c2.bias [32]",
        "down.1.0.weight [32, 32, 3, 3]",
        "down.1.0.bias [32]",
        "down.2.0.n1.weight [32]",
        "down.2.0.n1.bias [32]",
        "down.2.0.c1.weight [64, 32, 3, 3]",
        "down.2.0.c1.bias [64]",
        "down.2.0.t.weight [64, 128]",
        "down.2.0.t.bias [64]",
        "down.2.0.n2.weight [64]",
        "down.2.0.n2.bias [64]",
        "down.2.0.c2.weight [64, 64, 3, 3]",
        "down.2.0.c2.bias [64]",
        "down.2.0.skip.weight [64, 32, 1, 1]",
        "down.2.0.skip.bias [64]",
        "down.3.0.weight [64, 64, 3, 3]",
        "down.3.0.bias [64]",
        "down.4.0.n1.weight [64]",
        "down.4.0.n1.bias [64]",
        "down.4.0.c1.weight [128, 64, 3, 3]",
        "down.4.0.c1.bias [128]",
        "down.4.0.t.weight [128, 128]",
        "down.4.0.t.bias [128]",
        "down.4.0.n2.weight [128]",
        "down.4.0.n2.bias [128]",
        "down.4.0.c2.weight [128, 128, 3, 3]",
        "down.4.0.c2.bias [128]",
        "down.4.0.skip.weight [128, 64, 1, 1]",
        "down.4.0.skip.bias [128]",
        "down.4.1.n.weight [128]",
        "down.4.1.n.bias [128]",
        "down.4.1.qkv.weight [384, 128, 1, 1]",
        "down.4.1.qkv.bias [384]",
        "down.4.1.o.weight [128, 128, 1, 1]",
        "down.4.1.o.bias [128]",
        "mid.0.n1.weight [128]",
        "mid.0.n1.bias [128]",
        "mid.0.c1.weight [128, 128, 3, 3]",
        "mid.0.c1.bias [128]",
        "mid.0.t.weight [128, 128]",
        "mid.0.t.bias [128]",
        "mid.0.n2.weight [128]",
        "mid.0.n2.bias [128]",
        "mid.0.c2.weight [128, 128, 3, 3]",
        "mid.0.c2.bias [128]",
        "mid.1.n.weight [128]",
        "mid.1.n.bias [128]",
        "mid.1.qkv.weight [384, 128, 1, 1]",
        "mid.1.qkv.bias [384]",
        "mid.1.o.weight [128, 128, 1, 1]",
        "mid.1.o.bias [128]",
        "mid.2.n1.weight [128]",
        "mid.2.n1.bias [128]",
        "mid.2.c1.weight [128, 128, 3, 3]",
        "mid.2.c1.bias [128]",
        "mid.2.t.weight [128, 128]",
        "mid.2.t.bias [128]",
        "mid.2.n2.weight [128]",
        "mid.2.n2.bias [128]",
        "mid.2.c2.weight [128, 128, 3, 3]",
        "mid.2.c2.bias [128]",
        "up.0.0.n1.weight [256]",
        "up.0.0.n1.bias [256]",
        "up.0.0.c1.weight [128, 256, 3, 3]",
        "up.0.0.c1.bias [128]",
        "up.0.0.t.weight [128, 128]",
        "up.0.0.t.bias [128]",
        "up.0.0.n2.weight [128]",
        "up.0.0.n2.bias [128]",
        "up.0.0.c2.weight [128, 128, 3, 3]",
        "up.0.0.c2.bias [128]",
        "up.0.0.skip.weight [128, 256, 1, 1]",
        "up.0.0.skip.bias [128]",
        "up.0.1.n.weight [128]",
        "up.0.1.n.bias [128]",
        "up.0.1.qkv.weight [384, 128, 1, 1]",
        "up.0.1.qkv.bias [384]",
        "up.0.1.o.weight [128, 128, 1, 1]",
        "up.0.1.o.bias [128]",
        "up.1.0.n1.weight [192]",
        "up.1.0.n1.bias [192]",
        "up.1.0.c1.weight [128, 192, 3, 3]",
        "up.1.0.c1.bias [128]",
        "up.1.0.t.weight [128, 128]",
        "up.1.0.t.bias [128]",
        "up.1.0.n2.weight [128]",
        "up.1.0.n2.bias [128]",
        "up.1.0.c2.weight [128, 128, 3, 3]",
        "up.1.0.c2.bias [128]",
        "up.1.0.skip.weight [128, 192, 1, 1]",
        "up.1.0.skip.bias [128]",
        "up.1.1.n.weight [128]",
        "up.1.1.n.bias [128]",
        "up.1.1.qkv.weight [384, 128, 1, 1]",
        "up.1.1.qkv.bias [384]",
        "up.1.1.o.weight [128, 128, 1, 1]",
        "up.1.1.o.bias [128]",
        "up.2.1.weight [128, 128, 3, 3]",
        "up.2.1.bias [128]",
        "up.3.0.n1.weight [192]",
        "up.3.0.n1.bias [192]",
        "up.3.0.c1.weight [64, 192, 3, 3]",
        "up.3.0.c1.bias [64]",
        "up.3.0.t.weight [64, 128]",
        "up.3.0.t.bias [64]",
        "up.3.0.n2.weight [64]",
        "up.3.0.n2.bias [64]",
        "up.3.0.c2.weight [64, 64, 3, 3]",
        "up.3.0.c2.bias [64]",
        "up.3.0.skip.weight [64, 192, 1, 1]",
        "up.3.0.skip.bias [64]",
        "up.4.0.n1.weight [96]",
        "up.4.0.n1.bias [96]",
        "up.4.0.c1.weight [64, 96, 3, 3]",
        "up.4.0.c1.bias [64]",
        "up.4.0.t.weight [64, 128]",
        "up.4.0.t.bias [64]",
        "up.4.0.n2.weight [64]",
        "up.4.0.n2.bias [64]",
        "up.4.0.c2.weight [64, 64, 3, 3]",
        "up.4.0.c2.bias [64]",
        "up.4.0.skip.weight [64, 96, 1, 1]",
        "up.4.0.skip.bias [64]",
        "up.5.1.weight [64, 64, 3, 3]",
        "up.5.1.bias [64]",
        "up.6.0.n1.weight [96]",
        "up.6.0.n1.bias [96]",
        "up.6.0.c1.weight [32, 96, 3, 3]",
        "up.6.0.c1.bias [32]",
        "up.6.0.t.weight [32, 128]",
        "up.6.0.t.bias [32]",
        "up.6.0.n2.weight [32]",
        "up.6.0.n2.bias [32]",
        "up.6.0.c2.weight [32, 32, 3, 3]",
        "up.6.0.c2.bias [32]",
        "up.6.0.skip.weight [32, 96, 1, 1]",
        "up.6.0.skip.bias [32]",
        "up.7.0.n1.weight [64]",
        "up.7.0.n1.bias [64]",
        "up.7.0.c1.weight [32, 64, 3, 3]",
        "up.7.0.c1.bias [32]",
        "up.7.0.t.weight [32, 128]",
        "up.7.0.t.bias [32]",
        "up.7.0.n2.weight [32]",
        "up.7.0.n2.bias [32]",
        "up.7.0.c2.weight [32, 32, 3, 3]",
        "up.7.0.c2.bias [32]",
        "up.7.0.skip.weight [32, 64, 1, 1]",
        "up.7.0.skip.bias [32]",
        "out.0.weight [32]",
        "out.0.bias [32]",
        "out.2.weight [1, 32, 3, 3]",
        "out.2.bias [1]",
    ]

    @Test func stateDictMatchesTorchRefKeyForKey() throws {
        let net = try UNet(Self.reference, rng: RandomGenerator(seed: 0))
        let keys = net.stateEntries().map { "\($0.name) \($0.shape)" }
        #expect(keys == Self.torchRefStateDict)
    }

    @Test func forwardShapeAndGradientsReachEveryParameter() throws {
        let config = UNetConfig(imageSize: 16, inChannels: 2, baseChannels: 8, channelMultipliers: [1, 2],
                                resBlocks: 1, attentionResolutions: [8], numClasses: 3, normGroups: 4)
        let net = try UNet(config, rng: RandomGenerator(seed: 1))
        let x = try randomTensor([2, 2, 16, 16], seed: 2, requiresGrad: false)
        let y = try net.forward(x, timesteps: [3, 700], labels: [0, 3])
        #expect(y.shape == [2, 2, 16, 16])
        try mean(square(y)).backward()
        for (name, p) in net.namedParameters() {
            // the class embedding rows of unused classes get no gradient; everything else must
            if name == "cemb.weight" { continue }
            let g = p.grad?.scalars ?? []
            #expect(g.contains { $0 != 0 }, "no gradient reached \(name)")
        }
    }

    @Test func gradientMatchesFiniteDifferencesThroughTheWholeNetwork() throws {
        let config = UNetConfig(imageSize: 8, inChannels: 1, baseChannels: 4, channelMultipliers: [1, 2],
                                resBlocks: 1, attentionResolutions: [4], numClasses: 2, normGroups: 2)
        let net = try UNet(config, rng: RandomGenerator(seed: 3))
        let x = try randomTensor([2, 1, 8, 8], seed: 4)
        // input gradient plus two parameter tensors from opposite ends of the network
        let params = net.namedParameters()
        let first = params.first { $0.0 == "inc.weight" }!.1
        let attention = params.first { $0.0 == "down.2.1.qkv.weight" }!.1
        try expectGradientsMatch([x, first, attention], eps: 1e-2, atol: 3e-3, rtol: 3e-2, maxChecks: 40) { t in
            try net.forward(t[0], timesteps: [10, 500], labels: [1, 2])
        }
    }

    @Test func rejectsBadConfigurationsAndInputs() throws {
        #expect(throws: MedSynthError.self) { try UNet(UNetConfig(imageSize: 60, channelMultipliers: [1, 2, 2, 2]), rng: RandomGenerator(seed: 0)) }
        #expect(throws: MedSynthError.self) { try UNet(UNetConfig(imageSize: 32, baseChannels: 12, normGroups: 8), rng: RandomGenerator(seed: 0)) }
        #expect(throws: MedSynthError.self) { try UNet(UNetConfig(imageSize: 4), rng: RandomGenerator(seed: 0)) }
        let net = try UNet(UNetConfig(imageSize: 8, baseChannels: 4, channelMultipliers: [1], numClasses: 2, normGroups: 2), rng: RandomGenerator(seed: 0))
        #expect(throws: MedSynthError.self) { try net.forward(Tensor(zeros: [1, 1, 16, 16]), timesteps: [0], labels: [0]) }
        #expect(throws: MedSynthError.self) { try net.forward(Tensor(zeros: [1, 1, 8, 8]), timesteps: [0], labels: nil) }
        #expect(throws: MedSynthError.self) { try net.forward(Tensor(zeros: [1, 1, 8, 8]), timesteps: [0], labels: [7]) }
    }
}
