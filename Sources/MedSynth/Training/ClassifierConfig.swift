// Configuration of an image classifier, as stored in checkpoints and exchanged with Python,
// declared once as a table (see MedSynthCore/IO/Options.swift).

import MedSynthCore

public struct ClassifierConfig: Equatable, Configurable {
    public var architecture = "simple_cnn"
    /// 0 until set (the Python layer takes it from the labels).
    public var numClasses = 0
    public var inChannels = 1
    /// Height and width the model is trained on (0 until set; taken from the data).
    public var imageSize = 0
    public var seed: UInt64 = 0
    /// Per-channel input normalisation x' = (x − mean) / std, measured on the first training set;
    /// empty until then (0 and 1).
    public var mean: [Float] = []
    public var std: [Float] = []
    /// One name per class; default "0", "1", ...
    public var classNames: [String] = []
    /// GoogLeNet's auxiliary classifiers (torchvision's `aux_logits`, off by default as for its
    /// pretrained model); in training each adds `auxiliaryLossWeight` × its loss.
    public var auxLogits = false

    public init() {}

    public init(architecture: String, numClasses: Int, inChannels: Int, imageSize: Int, seed: UInt64 = 0) {
        self.architecture = architecture
        self.numClasses = numClasses
        self.inChannels = inChannels
        self.imageSize = imageSize
        self.seed = seed
    }

    public static let name = "classifier config"

    public static let options: [Option<ClassifierConfig>] = [
        .string("architecture", \.architecture, "The network, one of the engine's architectures."),
        .int("num_classes", \.numClasses, "Classes.").shown("from the labels"),
        .int("in_channels", \.inChannels, "Image channels, 1 to 64.").shown("from the data"),
        .int("image_size", \.imageSize, "Height and width the model takes.").shown("from the data"),
        .seed("seed", \.seed, "Seeds weight initialisation (and training when fit is given no seed)."),
        .floats("mean", \.mean, "Per-channel mean subtracted from the input.").shown("measured by the first fit"),
        .floats("std", \.std, "Per-channel standard deviation the input is divided by.").shown("measured by the first fit"),
        .strings("class_names", \.classNames, "One name per class.").shown("'0', '1', ..."),
        .bool("aux_logits", \.auxLogits, "GoogLeNet's auxiliary classifiers (torchvision's aux_logits); in training each adds 0.3 x its loss."),
    ]

    /// Fills what the caller left to the defaults: class names "0", "1", ... and the identity
    /// normalisation.
    public mutating func resolve() {
        if classNames.isEmpty { classNames = (0..<max(0, min(numClasses, 100_000))).map { String($0) } }
        if mean.isEmpty { mean = Array(repeating: 0, count: max(0, min(inChannels, 64))) }
        if std.isEmpty { std = Array(repeating: 1, count: max(0, min(inChannels, 64))) }
    }

    public func validate() throws {
        let arch = try ClassifierArchitecture.named(architecture)
        try require(numClasses >= 2 && numClasses <= 100_000, "num_classes must be between 2 and 100000, got \(numClasses)")
        try require(inChannels >= 1 && inChannels <= 64, "in_channels must be between 1 and 64, got \(inChannels)")
        try require(imageSize >= arch.minImageSize && imageSize <= 1024,
                    "\(architecture) needs images of at least \(arch.minImageSize)x\(arch.minImageSize) pixels (and at most 1024), got image_size \(imageSize)")
        try require(mean.count == inChannels && std.count == inChannels, "mean and std need one value per input channel (\(inChannels))")
        try require(mean.allSatisfy { $0.isFinite } && std.allSatisfy { $0.isFinite && $0 > 0 }, "mean must be finite and std positive")
        try require(!auxLogits || arch.supportsAuxLogits, "aux_logits is only available for googlenet, not \(architecture)")
        try require(classNames.count == numClasses, "class_names needs \(numClasses) names, got \(classNames.count)")
        try require(Set(classNames).count == classNames.count, "class_names must be distinct")
    }
}
