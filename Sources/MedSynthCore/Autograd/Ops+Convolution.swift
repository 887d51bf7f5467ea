// Differentiable convolution (torch.nn.functional.conv2d semantics).

/// y = conv2d(x, weight) + bias for x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout].
public func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil,
                   stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
    try require(x.rank == 4, "conv2d: input must be [N, C, H, W], got \(x.shape)")
    try require(weight.rank == 4, "conv2d: weight must be [Cout, Cin/groups, kH, kW], got \(weight.shape)")
    let g = ConvGeometry(batch: x.shape[0], inChannels: x.shape[1], height: x.shape[2], width: x.shape[3],
                         outChannels: weight.shape[0], kernelH: weight.shape[2], kernelW: weight.shape[3],
                         strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
                         dilationH: dilation.0, dilationW: dilation.1, groups: groups)
    try g.validate()
    try require(weight.shape[1] * groups == x.shape[1],
                "conv2d: weight \(weight.shape) expects \(weight.shape[1] * groups) input channels, input has \(x.shape[1])")
    if let bias { try require(bias.shape == [g.outChannels], "conv2d: bias must be [\(g.outChannels)], got \(bias.shape)") }

    let y = try Tensor(uninitialized: [g.batch, g.outChannels, g.outHeight, g.outWidth])
    // without a graph (inference), Winograd keeps its transformed weights between calls
    try ConvKernel.forward(g, x: x.data, weight: weight.data, bias: bias?.data, y: y.data, cacheWeights: !GradMode.isEnabled)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return y.recording(inputs) { dy in
        try ConvKernel.backward(g, x: x.data, weight: weight.data, dy: dy.data,
                            dx: try x.needsGrad ? x.gradPointer() : nil,
                            dWeight: try weight.needsGrad ? weight.gradPointer() : nil,
                            dBias: try (bias?.needsGrad ?? false) ? bias?.gradPointer() : nil)
    }
}
