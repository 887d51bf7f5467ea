// Pooling and resizing layers (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Upsample).

public final class MaxPool2d: Layer {
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), ceilMode: Bool
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false) {
        self.kernel = (kernel, kernel)
        self.stride = (stride ?? kernel, stride ?? kernel)
        self.padding = (padding, padding)
        self.ceilMode = ceilMode
    }
    public override func forward(_ x: Tensor) throws -> Tensor {
        try maxPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    }
}

public final class AvgPool2d: Layer {
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), ceilMode: Bool, countIncludePad: Bool
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.kernel = (kernel, kernel)
        self.stride = (stride ?? kernel, stride ?? kernel)
        self.padding = (padding, padding)
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }
    public override func forward(_ x: Tensor) throws -> Tensor {
        try avgPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad)
    }
}

public final class AdaptiveAvgPool2d: Layer {
    public let outputSize: (Int, Int)
    public init(_ outputSize: (Int, Int)) { self.outputSize = outputSize }
    public override func forward(_ x: Tensor) throws -> Tensor { try adaptiveAvgPool2d(x, outputSize: outputSize) }
}

/// Nearest-neighbour upsampling by an integer factor (torch.nn.Upsample(scale_factor, "nearest")).
public final class UpsampleNearest: Layer {
    public let scale: Int
    public init(scale: Int = 2) { self.scale = scale }
    public override func forward(_ x: Tensor) throws -> Tensor { try upsampleNearest2d(x, scale: (scale, scale)) }
}
