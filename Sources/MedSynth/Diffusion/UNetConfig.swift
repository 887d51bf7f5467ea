// Configuration of the diffusion U-Net, as stored in checkpoints and sent from Python.

import MedSynthCore

public struct UNetConfig: Equatable, Configurable {
    /// Height and width of the images (0 until set; the Python layer takes it from the data).
    public var imageSize = 0
    public var inChannels = 1
    /// Output channels; nil: as many as the input (the network predicts noise of the image's shape).
    public var outChannelsSetting: Int? = nil
    public var baseChannels = 32
    /// Channel multiplier per level; nil: chosen by image size (`defaultMultipliers`).
    public var multipliersSetting: [Int]? = nil
    /// Residual blocks per level on the way down; the way up has one more (Ho et al. 2020).
    public var resBlocks = 1
    /// Feature-map sides with self-attention (the middle block always has it); nil: chosen by
    /// image size (`defaultAttention`).
    public var attentionSetting: [Int]? = nil
    public var attentionHeads = 1
    public var dropout: Float = 0
    /// 0: unconditional. Otherwise the class embedding has one extra row, the null class used for
    /// classifier-free guidance.
    public var numClasses = 0
    public var normGroups = 8

    public init() {}

    /// The DDPM layout at a size, with multipliers and attention chosen by image size unless given
    /// (the torch_ref benchmark model at 64: base 32, (1, 2, 4), attention at 16, 2,735,585
    /// parameters with 4 classes).
    public init(imageSize: Int, inChannels: Int = 1, outChannels: Int? = nil, baseChannels: Int = 32,
                channelMultipliers: [Int]? = nil, resBlocks: Int = 1, attentionResolutions: [Int]? = nil,
                attentionHeads: Int = 1, dropout: Float = 0, numClasses: Int = 0, normGroups: Int = 8) {
        self.imageSize = imageSize
        self.inChannels = inChannels
        outChannelsSetting = outChannels
        self.baseChannels = baseChannels
        multipliersSetting = channelMultipliers
        self.resBlocks = resBlocks
        attentionSetting = attentionResolutions
        self.attentionHeads = attentionHeads
        self.dropout = dropout
        self.numClasses = numClasses
        self.normGroups = normGroups
    }

    public var outChannels: Int { outChannelsSetting ?? inChannels }
    public var channelMultipliers: [Int] { multipliersSetting ?? Self.defaultMultipliers(imageSize) }
    public var attentionResolutions: [Int] { attentionSetting ?? Self.defaultAttention(imageSize, levels: channelMultipliers.count) }

    /// Multipliers by image size: enough levels that the lowest feature map is 8-12 px wide.
    public static func defaultMultipliers(_ size: Int) -> [Int] {
        switch size {
        case ..<48: return [1, 2, 2]
        case ..<96: return [1, 2, 4]
        case ..<192: return [1, 1, 2, 4]
        default: return [1, 1, 2, 2, 4]
        }
    }

    /// Attention at the feature maps of side 16 and smaller but not at the input, as the DDPM
    /// U-Net has it at 16x16 for 32-256 px inputs; at least at the lowest level.
    public static func defaultAttention(_ size: Int, levels: Int) -> [Int] {
        let sides = (0..<max(levels, 1)).map { size >> $0 }
        let chosen = sides.filter { $0 <= 16 && $0 != size }
        return chosen.isEmpty ? [sides[sides.count - 1]] : chosen
    }

    public var timeEmbeddingChannels: Int { 4 * baseChannels }

    public static let name = "U-Net config"

    public static let options: [Option<UNetConfig>] = [
        .int("image_size", \.imageSize, "Height and width of the images, 8 to 512.").shown("from the data"),
        .int("in_channels", \.inChannels, "Image channels, 1 (gray) to 4.").shown("from the data"),
        Option("out_channels", "Output channels; default: in_channels.",
               read: { c, v in guard let n = v.int else { throw MedSynthError.invalidArgument("'out_channels' must be an integer") }
                       c.outChannelsSetting = n },
               write: { .number(Double($0.outChannels)) }, shownDefault: .string("in_channels")),
        .int("base_channels", \.baseChannels, "Channels of the first level (torch_ref.py: 32; DDPM used 128 on GPUs)."),
        Option("channel_multipliers", "Channel multiplier per level; default by image size: (1, 2, 2) below 48 px, (1, 2, 4) to 95, (1, 1, 2, 4) to 191, (1, 1, 2, 2, 4) above.",
               read: { c, v in guard let m = JSON.integers(v) else { throw MedSynthError.invalidArgument("'channel_multipliers' must be a list of integers") }
                       c.multipliersSetting = m },
               write: { .array($0.channelMultipliers.map { .number(Double($0)) }) }, shownDefault: .string("by image size")),
        .int("res_blocks", \.resBlocks, "Residual blocks per level going down; one more going up (Ho et al. 2020)."),
        Option("attention_resolutions", "Feature-map sides with self-attention (and always the middle); default: the sides of 16 and below except the input's.",
               read: { c, v in guard let a = JSON.integers(v) else { throw MedSynthError.invalidArgument("'attention_resolutions' must be a list of integers") }
                       c.attentionSetting = a },
               write: { .array($0.attentionResolutions.map { .number(Double($0)) }) }, shownDefault: .string("by image size")),
        .int("attention_heads", \.attentionHeads, "Heads of each self-attention layer."),
        .float("dropout", \.dropout, "Dropout in the residual blocks (Ho et al.: 0.1 at 32 px on CIFAR-10)."),
        .int("num_classes", \.numClasses, "Classes of a class-conditional model; 0 for an unconditional one.").shown("from the labels"),
        .int("norm_groups", \.normGroups, "GroupNorm groups (Ho et al.: 32; torch_ref.py: 8)."),
    ]

    public func validate() throws {
        try require(imageSize != 0, "the U-Net config needs 'image_size'")
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
        try require(dropout.isFinite && dropout >= 0 && dropout < 1, "dropout must be in [0, 1)")
        try require(numClasses >= 0 && numClasses <= 10_000, "num_classes must be between 0 and 10000")
    }
}
