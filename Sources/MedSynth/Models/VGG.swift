// VGG-16 and VGG-19 without batch norm, as torchvision builds them (Simonyan & Zisserman, "Very
// deep convolutional networks for large-scale image recognition", ICLR 2015; configurations D and
// E; torchvision/models/vgg.py):
//   features: per number a 3×3 conv (padding 1, bias) + ReLU, per "M" a 2×2 max pool;
//   avgpool: adaptive average to 7×7 (replicates a smaller map: 1×1 at 32 px becomes 7×7);
//   classifier: Linear(25088, 4096), ReLU, Dropout(0.5), Linear(4096, 4096), ReLU, Dropout(0.5),
//   Linear(4096, n). The flatten is NCHW (column c·49 + h·7 + w), as the engine's tensors.
// Init: convs kaiming normal (fan_out, relu), bias 0; linears N(0, 0.01), bias 0. Keys
// features.{0,2,5,…}.*, classifier.{0,3,6}.*. Smallest input 32×32 (five halving pools).

import MedSynthCore

public enum VGG {
    public enum Depth { case vgg16, vgg19 }

    /// Output channels per convolution; 0 marks a max pool ("M").
    static func configuration(_ depth: Depth) -> [Int] {
        switch depth {
        case .vgg16: return [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]
        case .vgg19: return [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0]
        }
    }

    public static func make(_ depth: Depth, inChannels: Int, numClasses: Int, rng: RandomGenerator) throws -> Layer {
        let features = Sequential([])
        var channels = inChannels
        for c in configuration(depth) {
            if c == 0 {
                features.append(MaxPool2d(kernel: 2, stride: 2))
            } else {
                features.append(try Conv2d(channels, c, kernelSize: 3, padding: 1, rng: rng))
                features.append(ReLU())
                channels = c
            }
        }
        let classifier = Sequential([
            try Linear(512 * 7 * 7, 4096, rng: rng), ReLU(), Dropout(p: 0.5),
            try Linear(4096, 4096, rng: rng), ReLU(), Dropout(p: 0.5),
            try Linear(4096, numClasses, rng: rng),
        ])
        let model = ConvClassifier(features: features, pool: AdaptiveAvgPool2d((7, 7)), classifier: classifier)
        model.initializeLayers(
            conv: { TorchInit.kaimingNormalFanOut($0.weight, rng); $0.bias?.fill(0) },
            linear: { Initializer.normal($0.weight, std: 0.01, rng); $0.bias?.fill(0) })
        return model
    }
}
