// Configuration of an image classifier, as stored in checkpoints and exchanged with Python.

import MedSynthCore

public struct ClassifierConfig: Equatable {
    public var architecture: String
    public var numClasses: Int
    public var inChannels: Int
    /// Height and width the model is trained on.
    public var imageSize: Int
    public var seed: UInt64
    /// Per-channel input normalisation x' = (x − mean) / std, measured on the first training set.
    public var mean: [Float]
    public var std: [Float]
    public var classNames: [String]
    /// GoogLeNet's auxiliary classifiers (torchvision's `aux_logits`, off by default as for its
    /// pretrained model); in training each adds `auxiliaryLossWeight` × its loss.
    public var auxLogits = false

    package static let keys: Set<String> = ["architecture", "num_classes", "in_channels", "image_size", "seed", "mean", "std",
                                    "class_names", "aux_logits", "parameters", "head_parameters", "normalization_fitted"]

    public init(architecture: String, numClasses: Int, inChannels: Int, imageSize: Int, seed: UInt64 = 0) {
        self.architecture = architecture
        self.numClasses = numClasses
        self.inChannels = inChannels
        self.imageSize = imageSize
        self.seed = seed
        // sizes are validated later (validate()); building these must not trap on bad values first
        mean = Array(repeating: 0, count: max(0, min(inChannels, 64)))
        std = Array(repeating: 1, count: max(0, min(inChannels, 64)))
        classNames = (0..<max(0, min(numClasses, 100_000))).map { String($0) }
    }

    public init(json: JSON) throws {
        try json.rejectUnknownKeys(Self.keys, in: "classifier config")
        guard let architecture = try json.string("architecture") else {
            throw MedSynthError.invalidArgument("classifier config needs 'architecture'")
        }
        guard let numClasses = try json.int("num_classes") else { throw MedSynthError.invalidArgument("classifier config needs 'num_classes'") }
        guard let inChannels = try json.int("in_channels") else { throw MedSynthError.invalidArgument("classifier config needs 'in_channels'") }
        guard let imageSize = try json.int("image_size") else { throw MedSynthError.invalidArgument("classifier config needs 'image_size'") }
        self.init(architecture: architecture, numClasses: numClasses, inChannels: inChannels, imageSize: imageSize,
                  seed: try json.seed() ?? 0)
        if let m = try json.doubleArray("mean") { mean = m.map { Float($0) } }
        if let s = try json.doubleArray("std") { std = s.map { Float($0) } }
        if let aux = try json.bool("aux_logits") { auxLogits = aux }
        if let names = json["class_names"]?.array {
            classNames = try names.map { n in
                guard let s = n.string else { throw MedSynthError.invalidArgument("class_names must be strings") }
                return s
            }
        }
        try validate()
    }

    public func validate() throws {
        let arch = try ClassifierArchitecture.named(architecture)
        try require(numClasses >= 2 && numClasses <= 100_000, "num_classes must be between 2 and 100000, got \(numClasses)")
        try require(inChannels >= 1 && inChannels <= 64, "in_channels must be between 1 and 64, got \(inChannels)")
        try require(imageSize >= arch.minImageSize && imageSize <= 1024,
                    "\(architecture) needs images of at least \(arch.minImageSize)x\(arch.minImageSize) pixels (and at most 1024), got image_size \(imageSize)")
        try require(mean.count == inChannels && std.count == inChannels, "mean and std need one value per input channel")
        try require(mean.allSatisfy { $0.isFinite } && std.allSatisfy { $0.isFinite && $0 > 0 }, "mean must be finite and std positive")
        try require(!auxLogits || arch.supportsAuxLogits, "aux_logits is only available for googlenet, not \(architecture)")
        try require(classNames.count == numClasses, "class_names needs \(numClasses) names, got \(classNames.count)")
    }

    /// The configuration, and (when given) the model's state: parameter count and head parameter
    /// names, which reading ignores.
    public func json(parameters: Int? = nil, headParameters: [String]? = nil, normalizationFitted: Bool) -> JSON {
        var pairs: [(String, JSON)] = [
            ("architecture", .string(architecture)),
            ("num_classes", .number(Double(numClasses))),
            ("in_channels", .number(Double(inChannels))),
            ("image_size", .number(Double(imageSize))),
            ("seed", .number(Double(seed))),
            ("mean", .array(mean.map { .number(Double($0)) })),
            ("std", .array(std.map { .number(Double($0)) })),
            ("class_names", .array(classNames.map { .string($0) })),
            ("aux_logits", .bool(auxLogits)),
            ("normalization_fitted", .bool(normalizationFitted)),
        ]
        if let parameters { pairs.append(("parameters", .number(Double(parameters)))) }
        if let headParameters { pairs.append(("head_parameters", .array(headParameters.map { .string($0) }))) }
        return .object(pairs)
    }
}
