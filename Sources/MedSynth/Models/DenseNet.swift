// DenseNet-121 as torchvision builds it (Huang et al., "Densely connected convolutional networks",
// CVPR 2017; DenseNet-BC, growth 32, blocks (6, 12, 24, 16), 64 initial features, bottleneck 4·32;
// torchvision/models/densenet.py):
//   features: conv0 7×7/2 p3, norm0, relu0, pool0 max 3/2 p1, denseblock1, transition1, …,
//   denseblock4, norm5; then ReLU → adaptive avg (1,1) → classifier Linear(1024, n).
// Dense layer: norm1 → ReLU → conv1 1×1 (→128) → norm2 → ReLU → conv2 3×3 p1 (→32), its output
// concatenated onto everything before it in the block. Transition: norm → ReLU → conv 1×1 (C→C/2)
// → avg pool 2/2. Init: convs kaiming normal (fan_in, gain √2), BN 1/0, classifier bias 0 (weight
// torch's default). Keys use torchvision's modern names (…denselayer1.norm1.weight, not the
// legacy `norm.1`). Smallest input 29×29 (three halving average pools after the stem).

import MedSynthCore

/// One BN-ReLU-conv1×1-BN-ReLU-conv3×3 layer: the `growth` new channels of a dense block.
final class DenseLayer: Layer {
    let norm1: BatchNorm, conv1: Conv2d, norm2: BatchNorm, conv2: Conv2d

    init(inputFeatures: Int, growth: Int, bottleneck: Int, rng: RandomGenerator) throws {
        norm1 = try BatchNorm(inputFeatures)
        conv1 = try Conv2d(inputFeatures, bottleneck * growth, kernelSize: 1, bias: false, rng: rng)
        norm2 = try BatchNorm(bottleneck * growth)
        conv2 = try Conv2d(bottleneck * growth, growth, kernelSize: 3, padding: 1, bias: false, rng: rng)
        super.init()
        registerChild("norm1", norm1)
        registerChild("conv1", conv1)
        registerChild("norm2", norm2)
        registerChild("conv2", conv2)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        try conv2(try norm2.forward(try conv1(try norm1.forward(x, activation: .relu)), activation: .relu))
    }
}

/// Layers whose inputs are the concatenation of the block input and every earlier layer's output;
/// returns that concatenation including the last layer (input + n·growth channels).
final class DenseBlock: Layer {
    let layers: [DenseLayer]

    init(layers count: Int, inputFeatures: Int, growth: Int, bottleneck: Int, rng: RandomGenerator) throws {
        layers = try (0..<count).map {
            try DenseLayer(inputFeatures: inputFeatures + $0 * growth, growth: growth, bottleneck: bottleneck, rng: rng)
        }
        super.init()
        for (i, l) in layers.enumerated() { registerChild("denselayer\(i + 1)", l) }
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        var features = x
        for layer in layers { features = try concat([features, try layer(features)], dim: 1) }
        return features
    }
}

public final class DenseNet: Layer {
    let features: Sequential, classifier: Linear

    public init(inChannels: Int, numClasses: Int, growth: Int = 32, blocks: [Int] = [6, 12, 24, 16],
                initialFeatures: Int = 64, bottleneck: Int = 4, rng: RandomGenerator) throws {
        var layers: [(String, Layer)] = [
            ("conv0", try Conv2d(inChannels, initialFeatures, kernelSize: 7, stride: 2, padding: 3, bias: false, rng: rng)),
            ("norm0", try BatchNorm(initialFeatures)),
            ("relu0", ReLU()),
            ("pool0", MaxPool2d(kernel: 3, stride: 2, padding: 1)),
        ]
        var channels = initialFeatures
        for (i, count) in blocks.enumerated() {
            layers.append(("denseblock\(i + 1)",
                           try DenseBlock(layers: count, inputFeatures: channels, growth: growth, bottleneck: bottleneck, rng: rng)))
            channels += count * growth
            if i != blocks.count - 1 {
                layers.append(("transition\(i + 1)", Sequential(named: [
                    ("norm", try BatchNorm(channels)),
                    ("relu", ReLU()),
                    ("conv", try Conv2d(channels, channels / 2, kernelSize: 1, bias: false, rng: rng)),
                    ("pool", AvgPool2d(kernel: 2, stride: 2)),
                ])))
                channels /= 2
            }
        }
        layers.append(("norm5", try BatchNorm(channels)))
        features = Sequential(named: layers)
        classifier = try Linear(channels, numClasses, rng: rng)
        super.init()
        registerChild("features", features)
        registerChild("classifier", classifier)
        initializeLayers(conv: { TorchInit.kaimingNormalFanIn($0.weight, rng) }, linear: { $0.bias?.fill(0) })
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        let h = try relu(try features(x))
        return try classifier(try flatten(try adaptiveAvgPool2d(h, outputSize: (1, 1)), startDim: 1))
    }
}
