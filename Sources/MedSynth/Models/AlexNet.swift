// AlexNet as torchvision builds it: the "one weird trick" variant (Krizhevsky, arXiv 1404.5997;
// 64/192 channels, no local response norm; torchvision/models/alexnet.py):
//   features: 0 conv 11×11/4 p2 (→64), ReLU, 2 maxpool 3/2, 3 conv 5×5 p2 (→192), ReLU,
//   5 maxpool 3/2, 6 conv 3×3 p1 (→384), ReLU, 8 conv 3×3 p1 (→256), ReLU, 10 conv 3×3 p1 (→256),
//   ReLU, 12 maxpool 3/2; avgpool adaptive 6×6;
//   classifier: 0 Dropout(0.5), 1 Linear(9216, 4096), ReLU, 3 Dropout(0.5), 4 Linear(4096, 4096),
//   ReLU, 6 Linear(4096, n) (dropout before the first two linears).
// Init: torch's defaults (no custom scheme). Smallest input 63×63 (62 fails at the last pool).

import MedSynthCore

public enum AlexNet {
    public static func make(inChannels: Int, numClasses: Int, rng: RandomGenerator) throws -> Layer {
        let features = Sequential([
            try Conv2d(inChannels, 64, kernelSize: 11, stride: 4, padding: 2, rng: rng), ReLU(),
            MaxPool2d(kernel: 3, stride: 2),
            try Conv2d(64, 192, kernelSize: 5, padding: 2, rng: rng), ReLU(),
            MaxPool2d(kernel: 3, stride: 2),
            try Conv2d(192, 384, kernelSize: 3, padding: 1, rng: rng), ReLU(),
            try Conv2d(384, 256, kernelSize: 3, padding: 1, rng: rng), ReLU(),
            try Conv2d(256, 256, kernelSize: 3, padding: 1, rng: rng), ReLU(),
            MaxPool2d(kernel: 3, stride: 2),
        ])
        let classifier = Sequential([
            Dropout(p: 0.5), try Linear(256 * 6 * 6, 4096, rng: rng), ReLU(),
            Dropout(p: 0.5), try Linear(4096, 4096, rng: rng), ReLU(),
            try Linear(4096, numClasses, rng: rng),
        ])
        return ConvClassifier(features: features, pool: AdaptiveAvgPool2d((6, 6)), classifier: classifier)
    }
}
