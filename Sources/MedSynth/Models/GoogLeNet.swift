// GoogLeNet (Inception v1) as torchvision builds it (Szegedy et al., "Going deeper with
// convolutions", CVPR 2015; torchvision/models/googlenet.py):
//   conv1 7×7/2 p3 (→64), maxpool1 3/2, conv2 1×1 (→64), conv3 3×3 p1 (→192), maxpool2 3/2,
//   inception3a, 3b, maxpool3 3/2, 4a…4e, maxpool4 2/2, 5a, 5b, adaptive avg (1,1), dropout 0.2,
//   fc Linear(1024, n). Every max pool in ceil mode.
// BasicConv2d = conv (no bias) + BN with eps 0.001 + ReLU. Inception branches: 1×1; 1×1 → 3×3;
// 1×1 → 3×3 (torchvision's 3×3 where the paper has 5×5, pytorch/vision#906); max 3/1 p1 → 1×1;
// concatenated on channels. Optional auxiliary heads (aux_logits) after 4a and 4d, run only in
// training: adaptive avg (4,4) → BasicConv2d 1×1 (→128) → fc1 Linear(2048, 1024) → ReLU →
// Dropout(0.7) → fc2; the training loss adds 0.3 × each auxiliary loss (the paper's weight).
// Init: conv and linear weights truncated normal (std 0.01, bounds ±2), BN 1/0, linear biases
// torch's default. No transform_input (the engine normalises inputs itself). Smallest input 15×15.

import MedSynthCore

/// A model that also produces auxiliary logits in training, each added to the loss with `weight`.
public protocol AuxiliaryLogits: AnyObject {
    /// The auxiliary logits of the last training-mode forward pass (empty in evaluation mode).
    var auxiliaryLogits: [Tensor] { get }
    var auxiliaryLossWeight: Float { get }
}

/// conv (no bias) → BN (eps 0.001) → ReLU.
final class BasicConv2d: Layer {
    let conv: Conv2d, bn: BatchNorm

    init(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, padding: Int = 0, rng: RandomGenerator) throws {
        conv = try Conv2d(input, output, kernelSize: kernel, stride: stride, padding: padding, bias: false, rng: rng)
        bn = try BatchNorm(output, eps: 1e-3)
        super.init()
        registerChild("conv", conv)
        registerChild("bn", bn)
    }

    override func forward(_ x: Tensor) throws -> Tensor { try bn.forward(try conv(x), activation: .relu) }
}

final class Inception: Layer {
    let branch1: BasicConv2d, branch2: Sequential, branch3: Sequential, branch4: Sequential

    init(_ input: Int, _ ch1x1: Int, _ ch3x3red: Int, _ ch3x3: Int, _ ch5x5red: Int, _ ch5x5: Int, _ poolProj: Int,
         rng: RandomGenerator) throws {
        branch1 = try BasicConv2d(input, ch1x1, kernel: 1, rng: rng)
        branch2 = Sequential([try BasicConv2d(input, ch3x3red, kernel: 1, rng: rng),
                              try BasicConv2d(ch3x3red, ch3x3, kernel: 3, padding: 1, rng: rng)])
        branch3 = Sequential([try BasicConv2d(input, ch5x5red, kernel: 1, rng: rng),
                              try BasicConv2d(ch5x5red, ch5x5, kernel: 3, padding: 1, rng: rng)])
        branch4 = Sequential([MaxPool2d(kernel: 3, stride: 1, padding: 1, ceilMode: true),
                              try BasicConv2d(input, poolProj, kernel: 1, rng: rng)])
        super.init()
        registerChild("branch1", branch1)
        registerChild("branch2", branch2)
        registerChild("branch3", branch3)
        registerChild("branch4", branch4)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        try concat([try branch1(x), try branch2(x), try branch3(x), try branch4(x)], dim: 1)
    }
}

final class InceptionAux: Layer {
    let conv: BasicConv2d, fc1: Linear, fc2: Linear, dropout: Dropout

    init(_ input: Int, numClasses: Int, rng: RandomGenerator) throws {
        conv = try BasicConv2d(input, 128, kernel: 1, rng: rng)
        fc1 = try Linear(2048, 1024, rng: rng)
        fc2 = try Linear(1024, numClasses, rng: rng)
        dropout = Dropout(p: 0.7)
        super.init()
        registerChild("conv", conv)
        registerChild("fc1", fc1)
        registerChild("fc2", fc2)
        registerChild("dropout", dropout)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        let h = try flatten(try conv(try adaptiveAvgPool2d(x, outputSize: (4, 4))), startDim: 1)
        return try fc2(try dropout(relu(try fc1(h))))
    }
}

public final class GoogLeNet: Layer, AuxiliaryLogits {
    let conv1: BasicConv2d, maxpool1: MaxPool2d, conv2: BasicConv2d, conv3: BasicConv2d, maxpool2: MaxPool2d
    let inception3: [Inception], maxpool3: MaxPool2d, inception4: [Inception], maxpool4: MaxPool2d
    let inception5: [Inception], aux1: InceptionAux?, aux2: InceptionAux?, dropout: Dropout, fc: Linear

    public private(set) var auxiliaryLogits: [Tensor] = []
    /// Szegedy et al. 2015, section 5: "their loss gets added to the total loss with a discount weight
    /// (the losses of the auxiliary classifiers were weighted by 0.3)".
    public let auxiliaryLossWeight: Float = 0.3

    public init(inChannels: Int, numClasses: Int, auxLogits: Bool = false, rng: RandomGenerator) throws {
        conv1 = try BasicConv2d(inChannels, 64, kernel: 7, stride: 2, padding: 3, rng: rng)
        maxpool1 = MaxPool2d(kernel: 3, stride: 2, ceilMode: true)
        conv2 = try BasicConv2d(64, 64, kernel: 1, rng: rng)
        conv3 = try BasicConv2d(64, 192, kernel: 3, padding: 1, rng: rng)
        maxpool2 = MaxPool2d(kernel: 3, stride: 2, ceilMode: true)
        inception3 = [try Inception(192, 64, 96, 128, 16, 32, 32, rng: rng),
                      try Inception(256, 128, 128, 192, 32, 96, 64, rng: rng)]
        maxpool3 = MaxPool2d(kernel: 3, stride: 2, ceilMode: true)
        inception4 = [try Inception(480, 192, 96, 208, 16, 48, 64, rng: rng),
                      try Inception(512, 160, 112, 224, 24, 64, 64, rng: rng),
                      try Inception(512, 128, 128, 256, 24, 64, 64, rng: rng),
                      try Inception(512, 112, 144, 288, 32, 64, 64, rng: rng),
                      try Inception(528, 256, 160, 320, 32, 128, 128, rng: rng)]
        maxpool4 = MaxPool2d(kernel: 2, stride: 2, ceilMode: true)
        inception5 = [try Inception(832, 256, 160, 320, 32, 128, 128, rng: rng),
                      try Inception(832, 384, 192, 384, 48, 128, 128, rng: rng)]
        aux1 = auxLogits ? try InceptionAux(512, numClasses: numClasses, rng: rng) : nil
        aux2 = auxLogits ? try InceptionAux(528, numClasses: numClasses, rng: rng) : nil
        dropout = Dropout(p: 0.2)
        fc = try Linear(1024, numClasses, rng: rng)
        super.init()
        registerChild("conv1", conv1)
        registerChild("conv2", conv2)
        registerChild("conv3", conv3)
        for (name, block) in zip(["3a", "3b"], inception3) { registerChild("inception" + name, block) }
        for (name, block) in zip(["4a", "4b", "4c", "4d", "4e"], inception4) { registerChild("inception" + name, block) }
        for (name, block) in zip(["5a", "5b"], inception5) { registerChild("inception" + name, block) }
        if let aux1, let aux2 {
            registerChild("aux1", aux1)
            registerChild("aux2", aux2)
        }
        registerChild("dropout", dropout)
        registerChild("fc", fc)
        initializeLayers(conv: { Initializer.truncatedNormal($0.weight, std: 0.01, a: -2, b: 2, rng) },
                         linear: { Initializer.truncatedNormal($0.weight, std: 0.01, a: -2, b: 2, rng) })
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        var h = try maxpool2(try conv3(try conv2(try maxpool1(try conv1(x)))))
        for block in inception3 { h = try block(h) }
        h = try maxpool3(h)
        var aux: [Tensor] = []
        for (i, block) in inception4.enumerated() {
            h = try block(h)
            if isTraining, i == 0, let aux1 { aux.append(try aux1(h)) }
            if isTraining, i == 3, let aux2 { aux.append(try aux2(h)) }
        }
        auxiliaryLogits = aux
        h = try maxpool4(h)
        for block in inception5 { h = try block(h) }
        h = try flatten(try adaptiveAvgPool2d(h, outputSize: (1, 1)), startDim: 1)
        return try fc(try dropout(h))
    }
}
