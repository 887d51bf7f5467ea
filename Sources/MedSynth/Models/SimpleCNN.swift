// A small VGG-style convolutional classifier for quick experiments, tests and the demo:
// three conv-BN-ReLU stages (32, 64, 128 channels; 2×2 max pooling after the first two), global
// average pooling, dropout and a linear head. 94k parameters at 4 classes; any input of 8×8 or
// more. Keys: features.{0,1,4,5,8,9}.*, classifier.1.*.

import MedSynthCore

public enum SimpleCNN {
    public static func make(inChannels: Int, numClasses: Int, rng: RandomGenerator) throws -> Layer {
        let features = Sequential([
            try Conv2d(inChannels, 32, kernelSize: 3, padding: 1, bias: false, rng: rng), try BatchNorm(32), ReLU(),
            MaxPool2d(kernel: 2),
            try Conv2d(32, 64, kernelSize: 3, padding: 1, bias: false, rng: rng), try BatchNorm(64), ReLU(),
            MaxPool2d(kernel: 2),
            try Conv2d(64, 128, kernelSize: 3, padding: 1, bias: false, rng: rng), try BatchNorm(128), ReLU(),
        ])
        let classifier = Sequential([Dropout(p: 0.2), try Linear(128, numClasses, rng: rng)])
        return ConvClassifier(features: features, pool: AdaptiveAvgPool2d((1, 1)), classifier: classifier)
    }
}
