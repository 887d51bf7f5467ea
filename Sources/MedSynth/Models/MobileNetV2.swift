// MobileNetV2 (width 1.0) as torchvision builds it (Sandler et al., "MobileNetV2: inverted
// residuals and linear bottlenecks", CVPR 2018; torchvision/models/mobilenetv2.py):
//   features.0: conv 3×3/2 (→32) + BN + ReLU6; features.1…17: inverted residual blocks (t, c, n, s)
//   = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1);
//   features.18: conv 1×1 (→1280) + BN + ReLU6; adaptive avg (1,1); classifier Dropout(0.2),
//   Linear(1280, n).
// Block: [1×1 expand + BN + ReLU6 when t ≠ 1], 3×3 depthwise (stride) + BN + ReLU6, 1×1 linear
// projection + BN; a residual sum when the stride is 1 and the channels stay. Init: convs kaiming
// normal (fan_out, gain √2), BN 1/0, linear N(0, 0.01) with bias 0. Keys features.0.0.weight,
// features.2.conv.0.0.weight, features.2.conv.2.weight, classifier.1.*. Any input of 1×1 or more.

import MedSynthCore

/// Conv (no bias, "same" padding) + BN + ReLU6: torchvision's Conv2dNormActivation.
private func convBNReLU6(_ input: Int, _ output: Int, kernel: Int = 3, stride: Int = 1, groups: Int = 1,
                         rng: RandomGenerator) throws -> Sequential {
    Sequential([
        try Conv2d(input, output, kernelSize: kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups,
               bias: false, rng: rng),
        try BatchNorm(output), ReLU6(),
    ])
}

final class InvertedResidual: Layer {
    let conv: Sequential
    let residual: Bool

    init(input: Int, output: Int, stride: Int, expansion: Int, rng: RandomGenerator) throws {
        let hidden = input * expansion
        residual = stride == 1 && input == output
        var layers: [Layer] = []
        if expansion != 1 { layers.append(try convBNReLU6(input, hidden, kernel: 1, rng: rng)) }
        layers += [
            try convBNReLU6(hidden, hidden, stride: stride, groups: hidden, rng: rng),
            try Conv2d(hidden, output, kernelSize: 1, bias: false, rng: rng),
            try BatchNorm(output),
        ]
        conv = Sequential(layers)
        super.init()
        registerChild("conv", conv)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        residual ? try add(x, try conv(x)) : try conv(x)
    }
}

public enum MobileNetV2 {
    /// (expansion t, output channels c, repeats n, first stride s) per stage.
    static let stages: [(t: Int, c: Int, n: Int, s: Int)] = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]

    public static func make(inChannels: Int, numClasses: Int, rng: RandomGenerator) throws -> Layer {
        let features = Sequential([try convBNReLU6(inChannels, 32, stride: 2, rng: rng)])
        var channels = 32
        for stage in stages {
            for i in 0..<stage.n {
                features.append(try InvertedResidual(input: channels, output: stage.c, stride: i == 0 ? stage.s : 1,
                                                 expansion: stage.t, rng: rng))
                channels = stage.c
            }
        }
        features.append(try convBNReLU6(channels, 1280, kernel: 1, rng: rng))
        let classifier = Sequential([Dropout(p: 0.2), try Linear(1280, numClasses, rng: rng)])
        let model = ConvClassifier(features: features, pool: AdaptiveAvgPool2d((1, 1)), classifier: classifier)
        model.initializeLayers(
            conv: { TorchInit.kaimingNormalFanOut($0.weight, rng); $0.bias?.fill(0) },
            linear: { Initializer.normal($0.weight, std: 0.01, rng); $0.bias?.fill(0) })
        return model
    }
}
