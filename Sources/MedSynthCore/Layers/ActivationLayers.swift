// Parameter-free layers, for Sequential models (torch.nn.ReLU, ...).

public final class ReLU: Layer { public override func forward(_ x: Tensor) throws -> Tensor { try relu(x) } }
public final class ReLU6: Layer { public override func forward(_ x: Tensor) throws -> Tensor { try relu6(x) } }
public final class SiLU: Layer { public override func forward(_ x: Tensor) throws -> Tensor { try silu(x) } }
public final class GELU: Layer { public override func forward(_ x: Tensor) throws -> Tensor { try gelu(x) } }
public final class Sigmoid: Layer { public override func forward(_ x: Tensor) throws -> Tensor { try sigmoid(x) } }
public final class Tanh: Layer { public override func forward(_ x: Tensor) throws -> Tensor { try tanh(x) } }

/// torch.nn.Flatten(start_dim=1).
public final class Flatten: Layer {
    public override func forward(_ x: Tensor) throws -> Tensor { try flatten(x, startDim: 1) }
}

/// Inverted dropout (torch.nn.Dropout): active only in training mode. Masks come from
/// `generator`, which a training run replaces with its own seeded one.
public final class Dropout: Layer {
    public let p: Float
    public var generator = RandomGenerator(seed: 0)

    public init(p: Float = 0.5) {
        self.p = p
        super.init()
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try dropout(x, p: Double(p), training: isTraining, generator: generator)
    }
}

extension Dropout: RandomLayer {}

extension Module {
    /// Makes every random part of the tree (dropout) draw from `generator`.
    public func setGenerator(_ generator: RandomGenerator) {
        for m in modules() { (m as? RandomLayer)?.generator = generator }
    }
}
