/// 2-D convolution layer (torch.nn.Conv2d): weight [out, in/groups, kH, kW], optional bias [out],
/// initialised as torch does (U(±1/√fan_in), fan_in = in/groups·kH·kW).
public final class Conv2d: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                rng: RandomGenerator) throws {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let perGroup = inChannels / max(groups, 1)
        weight = try Tensor(uninitialized: [outChannels, perGroup, kernelSize.0, kernelSize.1])
        let fanIn = perGroup * kernelSize.0 * kernelSize.1
        Initializer.torchDefault(weight, fanIn: fanIn, rng)
        if bias {
            let b = try Tensor(uninitialized: [outChannels])
            Initializer.torchDefault(b, fanIn: fanIn, rng)
            self.bias = b
        } else {
            self.bias = nil
        }
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }

    /// Square kernel, stride, padding and dilation.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1, bias: Bool = true, rng: RandomGenerator) throws {
        try self.init(inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride),
                  padding: (padding, padding), dilation: (dilation, dilation), groups: groups, bias: bias, rng: rng)
    }

    public var inChannels: Int { weight.shape[1] * groups }
    public var outChannels: Int { weight.shape[0] }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try conv2d(x, weight, bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}
