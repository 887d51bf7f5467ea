// The registry of classifier architectures, by the names users pass from Python: how to build
// each, its smallest input, and what fine-tuning from pretrained weights needs to know (the head,
// the first convolution, the input normalisation the weights were trained with).

import MedSynthCore

/// What an architecture needs to build a model.
public struct ArchitectureOptions {
    public var inChannels: Int
    public var numClasses: Int
    /// GoogLeNet's auxiliary classifiers (torchvision's `aux_logits`); no other model has any.
    public var auxLogits: Bool

    public init(inChannels: Int, numClasses: Int, auxLogits: Bool = false) {
        self.inChannels = inChannels
        self.numClasses = numClasses
        self.auxLogits = auxLogits
    }
}

public struct ClassifierArchitecture {
    public let name: String
    /// Smallest input side the architecture accepts (torchvision's `min_size`).
    public let minImageSize: Int
    /// Modules forming the classification head: replaced when pretrained weights were trained for
    /// another number of classes, and trained apart from the backbone when fine-tuning.
    public let head: [String]
    /// The first convolution: its weight is adapted to the input channels of pretrained weights.
    public let stem: String
    /// Input normalisation the pretrained ImageNet weights expect, per RGB channel.
    public let pretrainedMean: [Float], pretrainedStd: [Float]
    public let supportsAuxLogits: Bool
    package let build: (ArchitectureOptions, RandomGenerator) throws -> Layer

    init(name: String, minImageSize: Int, head: [String], stem: String,
         pretrainedMean: [Float] = imagenetMean, pretrainedStd: [Float] = imagenetStd, supportsAuxLogits: Bool = false,
         build: @escaping (ArchitectureOptions, RandomGenerator) throws -> Layer) {
        self.name = name
        self.minImageSize = minImageSize
        self.head = head
        self.stem = stem
        self.pretrainedMean = pretrainedMean
        self.pretrainedStd = pretrainedStd
        self.supportsAuxLogits = supportsAuxLogits
        self.build = build
    }

    /// torchvision's ImageNet normalisation (transforms of every classification weight set).
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    public static let all: [ClassifierArchitecture] = [
        ClassifierArchitecture(name: "simple_cnn", minImageSize: 8, head: ["classifier.1"], stem: "features.0") {
            try SimpleCNN.make(inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "resnet18", minImageSize: 1, head: ["fc"], stem: "conv1") {
            try ResNet(.resnet18, inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "resnet50", minImageSize: 1, head: ["fc"], stem: "conv1") {
            try ResNet(.resnet50, inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "vgg16", minImageSize: 32, head: ["classifier.6"], stem: "features.0") {
            try VGG.make(.vgg16, inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "vgg19", minImageSize: 32, head: ["classifier.6"], stem: "features.0") {
            try VGG.make(.vgg19, inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "alexnet", minImageSize: 63, head: ["classifier.6"], stem: "features.0") {
            try AlexNet.make(inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "densenet121", minImageSize: 29, head: ["classifier"], stem: "features.conv0") {
            try DenseNet(inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        ClassifierArchitecture(name: "mobilenet_v2", minImageSize: 1, head: ["classifier.1"], stem: "features.0.0") {
            try MobileNetV2.make(inChannels: $0.inChannels, numClasses: $0.numClasses, rng: $1)
        },
        // torchvision's GoogLeNet weights (ported from the paper's) expect (x − 0.5)/0.5: googlenet(weights=…)
        // sets transform_input, which maps ImageNet-normalised input back to exactly that.
        ClassifierArchitecture(name: "googlenet", minImageSize: 15, head: ["fc", "aux1", "aux2"], stem: "conv1.conv",
                               pretrainedMean: [0.5, 0.5, 0.5], pretrainedStd: [0.5, 0.5, 0.5], supportsAuxLogits: true) {
            try GoogLeNet(inChannels: $0.inChannels, numClasses: $0.numClasses, auxLogits: $0.auxLogits, rng: $1)
        },
    ]

    public static func named(_ name: String) throws -> ClassifierArchitecture {
        guard let a = all.first(where: { $0.name == name }) else {
            throw MedSynthError.invalidArgument("unknown architecture '\(name)'; choose one of: \(all.map { $0.name }.joined(separator: ", "))")
        }
        return a
    }

    /// True when the state-dict entry `name` belongs to the head.
    public func isHead(_ name: String) -> Bool {
        head.contains { name == $0 || name.hasPrefix($0 + ".") }
    }
}
