// ResNet-18 and ResNet-50 as torchvision builds them (He et al., "Deep residual learning for
// image recognition", CVPR 2016; torchvision/models/resnet.py):
//   conv1 7×7/2 → bn1 → ReLU → maxpool 3/2 p1 → layer1…layer4 → adaptive avg (1,1) → fc.
// ResNet-18: BasicBlock ×[2,2,2,2]; ResNet-50: Bottleneck ×[3,4,6,3] with expansion 4 and the
// stride on the 3×3 conv2 (torchvision's "v1.5"). A 1×1 conv + BN `downsample` shortcut where the
// stride or the channel count changes. Init: convs kaiming normal (fan_out, relu), BN 1/0, fc
// torch's default. Keys: conv1.weight, bn1.*, layer1.0.conv1.weight, layer2.0.downsample.0.weight,
// fc.weight. Any input of 1×1 or more.

import MedSynthCore

/// conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, → ReLU.
final class BasicBlock: Layer {
    static let expansion = 1
    let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm, downsample: Sequential?

    init(inPlanes: Int, planes: Int, stride: Int, downsample: Sequential?, rng: RandomGenerator) throws {
        conv1 = try Conv2d(inPlanes, planes, kernelSize: 3, stride: stride, padding: 1, bias: false, rng: rng)
        bn1 = try BatchNorm(planes)
        conv2 = try Conv2d(planes, planes, kernelSize: 3, padding: 1, bias: false, rng: rng)
        bn2 = try BatchNorm(planes)
        self.downsample = downsample
        super.init()
        registerChild("conv1", conv1)
        registerChild("bn1", bn1)
        registerChild("conv2", conv2)
        registerChild("bn2", bn2)
        if let downsample { registerChild("downsample", downsample) }
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        let out = try conv2(try bn1.forward(try conv1(x), activation: .relu))
        return try bn2.forward(out, activation: .relu, residual: try downsample.map { try $0(x) } ?? x)
    }
}

/// 1×1 → BN → ReLU → 3×3 (stride) → BN → ReLU → 1×1 (×4 channels) → BN, plus the shortcut, → ReLU.
final class Bottleneck: Layer {
    static let expansion = 4
    let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm, conv3: Conv2d, bn3: BatchNorm
    let downsample: Sequential?

    init(inPlanes: Int, planes: Int, stride: Int, downsample: Sequential?, rng: RandomGenerator) throws {
        conv1 = try Conv2d(inPlanes, planes, kernelSize: 1, bias: false, rng: rng)
        bn1 = try BatchNorm(planes)
        conv2 = try Conv2d(planes, planes, kernelSize: 3, stride: stride, padding: 1, bias: false, rng: rng)
        bn2 = try BatchNorm(planes)
        conv3 = try Conv2d(planes, planes * Self.expansion, kernelSize: 1, bias: false, rng: rng)
        bn3 = try BatchNorm(planes * Self.expansion)
        self.downsample = downsample
        super.init()
        registerChild("conv1", conv1)
        registerChild("bn1", bn1)
        registerChild("conv2", conv2)
        registerChild("bn2", bn2)
        registerChild("conv3", conv3)
        registerChild("bn3", bn3)
        if let downsample { registerChild("downsample", downsample) }
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        var out = try bn1.forward(try conv1(x), activation: .relu)
        out = try bn2.forward(try conv2(out), activation: .relu)
        return try bn3.forward(try conv3(out), activation: .relu, residual: try downsample.map { try $0(x) } ?? x)
    }
}

public final class ResNet: Layer {
    public enum Depth { case resnet18, resnet50 }

    let conv1: Conv2d, bn1: BatchNorm, maxpool: MaxPool2d, stages: [Sequential], fc: Linear

    public init(_ depth: Depth, inChannels: Int, numClasses: Int, rng: RandomGenerator) throws {
        let blocks = depth == .resnet18 ? [2, 2, 2, 2] : [3, 4, 6, 3]
        let expansion = depth == .resnet18 ? BasicBlock.expansion : Bottleneck.expansion
        conv1 = try Conv2d(inChannels, 64, kernelSize: 7, stride: 2, padding: 3, bias: false, rng: rng)
        bn1 = try BatchNorm(64)
        maxpool = MaxPool2d(kernel: 3, stride: 2, padding: 1)
        var inPlanes = 64
        var stages: [Sequential] = []
        for (i, (planes, count)) in zip([64, 128, 256, 512], blocks).enumerated() {
            let stride = i == 0 ? 1 : 2
            let stage = Sequential([])
            for b in 0..<count {
                let s = b == 0 ? stride : 1
                var downsample: Sequential? = nil
                if b == 0 && (stride != 1 || inPlanes != planes * expansion) {
                    downsample = Sequential([
                        try Conv2d(inPlanes, planes * expansion, kernelSize: 1, stride: stride, bias: false, rng: rng),
                        try BatchNorm(planes * expansion),
                    ])
                }
                stage.append(depth == .resnet18
                    ? try BasicBlock(inPlanes: inPlanes, planes: planes, stride: s, downsample: downsample, rng: rng)
                    : try Bottleneck(inPlanes: inPlanes, planes: planes, stride: s, downsample: downsample, rng: rng))
                inPlanes = planes * expansion
            }
            stages.append(stage)
        }
        self.stages = stages
        fc = try Linear(512 * expansion, numClasses, rng: rng)
        super.init()
        registerChild("conv1", conv1)
        registerChild("bn1", bn1)
        for (i, stage) in stages.enumerated() { registerChild("layer\(i + 1)", stage) }
        registerChild("fc", fc)
        // torchvision: convs kaiming normal (fan_out, relu); BN 1/0; fc keeps torch's default
        initializeLayers(conv: { TorchInit.kaimingNormalFanOut($0.weight, rng) }, linear: { _ in })
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        var h = try maxpool(try bn1.forward(try conv1(x), activation: .relu))
        for stage in stages { h = try stage(h) }
        return try fc(try flatten(try adaptiveAvgPool2d(h, outputSize: (1, 1)), startDim: 1))
    }
}
