// Configuration of the diffusion U-Net, as stored in checkpoints and sent from Python.

import MedSynthCore

public struct UNetConfig: Equatable {
    public var imageSize: Int
    public var inChannels: Int
    public var outChannels: Int
    public var baseChannels: Int
    public var channelMultipliers: [Int]
    /// Residual blocks per level on the way down; the way up has one more (Ho et al. 2020).
    public var resBlocks: Int
    /// Feature-map sides that get self-attention (the middle block always has it).
    public var attentionResolutions: [Int]
    public var attentionHeads: Int
    public var dropout: Float
    /// 0: unconditional. Otherwise the class embedding has one extra row, the null class used for
    /// classifier-free guidance.
    public var numClasses: Int
    public var normGroups: Int

    /// The DDPM layout at a size: multipliers and attention chosen by image size (the torch_ref
    /// benchmark model at 64: base 32, (1, 2, 4), attention at 16, 2,735,585 parameters with 4
    /// classes).
    public init(imageSize: Int, inChannels: Int = 1, outChannels: Int? = nil, baseChannels: Int = 32,
                channelMultipliers: [Int]? = nil, resBlocks: Int = 1, attentionResolutions: [Int] = [16],
                attentionHeads: Int = 1, dropout: Float = 0, numClasses: Int = 0, normGroups: Int = 8) {
        self.imageSize = imageSize
        self.inChannels = inChannels
        self.outChannels = outChannels ?? inChannels
        self.baseChannels = baseChannels
        self.channelMultipliers = channelMultipliers ?? UNetConfig.defaultMultipliers(imageSize)
        self.resBlocks = resBlocks
        self.attentionResolutions = attentionResolutions
        self.attentionHeads = attentionHeads
        self.dropout = dropout
        self.numClasses = numClasses
        self.normGroups = normGroups
    }

    public static func defaultMultipliers(_ size: Int) -> [Int] {
        switch size {
        case ..<48: return [1, 2, 2]
        case ..<96: return [1, 2, 4]
        case ..<192: return [1, 1, 2, 4]
        default: return [1, 1, 2, 2, 4]
        }
    }

    public var timeEmbeddingChannels: Int { 4 * baseChannels }

    public func validate() throws {
        try require((8...512).contains(imageSize), "image_size must be between 8 and 512, got \(imageSize)")
        try require((1...4).contains(inChannels) && (1...8).contains(outChannels), "in_channels must be 1 to 4 (gray to RGBA)")
        try require(baseChannels >= 4 && baseChannels <= 512, "base_channels must be between 4 and 512")
        try require(!channelMultipliers.isEmpty && channelMultipliers.count <= 8 && channelMultipliers.allSatisfy { (1...16).contains($0) },
                    "channel_multipliers must be 1 to 8 values between 1 and 16")
        let levels = channelMultipliers.count
        try require(imageSize % (1 << (levels - 1)) == 0,
                    "image_size \(imageSize) must be divisible by \(1 << (levels - 1)) for \(levels) levels (halved \(levels - 1) times)")
        try require((0...8).contains(resBlocks), "res_blocks must be between 0 and 8")
        try require(attentionResolutions.allSatisfy { $0 >= 1 }, "attention_resolutions must be positive sides")
        try require(normGroups >= 1, "norm_groups must be positive")
        try require(attentionHeads >= 1, "attention_heads must be positive")
        for m in channelMultipliers {
            try require((baseChannels * m) % normGroups == 0,
                        "\(baseChannels * m) channels are not divisible into \(normGroups) GroupNorm groups")
            try require((baseChannels * m) % attentionHeads == 0, "attention_heads must divide every level's channels")
        }
        try require(baseChannels % normGroups == 0, "base_channels must be divisible by norm_groups")
        try require(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)")
        try require(numClasses >= 0 && numClasses <= 10_000, "num_classes must be between 0 and 10000")
    }

    package static let keys: Set<String> = ["image_size", "in_channels", "out_channels", "base_channels", "channel_multipliers",
                                    "res_blocks", "attention_resolutions", "attention_heads", "dropout", "num_classes",
                                    "norm_groups"]

    public init(json: JSON) throws {
        guard let size = try json.int("image_size") else { throw MedSynthError.invalidArgument("the U-Net config needs 'image_size'") }
        self.init(imageSize: size)
        if let v = try json.int("in_channels") { inChannels = v; outChannels = v }
        if let v = try json.int("out_channels") { outChannels = v }
        if let v = try json.int("base_channels") { baseChannels = v }
        if let v = try json.intArray("channel_multipliers") { channelMultipliers = v }
        if let v = try json.int("res_blocks") { resBlocks = v }
        if let v = try json.intArray("attention_resolutions") { attentionResolutions = v }
        if let v = try json.int("attention_heads") { attentionHeads = v }
        if let v = try json.double("dropout") { dropout = Float(v) }
        if let v = try json.int("num_classes") { numClasses = v }
        if let v = try json.int("norm_groups") { normGroups = v }
        try validate()
    }

    public var json: JSON {
        .object([
            ("image_size", .number(Double(imageSize))), ("in_channels", .number(Double(inChannels))),
            ("out_channels", .number(Double(outChannels))), ("base_channels", .number(Double(baseChannels))),
            ("channel_multipliers", .array(channelMultipliers.map { .number(Double($0)) })),
            ("res_blocks", .number(Double(resBlocks))),
            ("attention_resolutions", .array(attentionResolutions.map { .number(Double($0)) })),
            ("attention_heads", .number(Double(attentionHeads))), ("dropout", .number(Double(dropout))),
            ("num_classes", .number(Double(numClasses))), ("norm_groups", .number(Double(normGroups))),
        ])
    }
}
