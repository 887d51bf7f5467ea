/// Fully connected layer (torch.nn.Linear): y = x·Wᵀ + b, weight [out, in], initialised
/// U(±1/√in) as torch does.
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: RandomGenerator) throws {
        weight = try Tensor(uninitialized: [outFeatures, inFeatures])
        Initializer.torchDefault(weight, fanIn: inFeatures, rng)
        if bias {
            let b = try Tensor(uninitialized: [outFeatures])
            Initializer.torchDefault(b, fanIn: inFeatures, rng)
            self.bias = b
        } else {
            self.bias = nil
        }
        super.init()
        registerParameter("weight", weight)
        if let b = self.bias { registerParameter("bias", b) }
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try linear(x, weight, bias) }
}

/// Lookup table (torch.nn.Embedding): weight [count, dim] initialised N(0, 1).
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dim: Int, rng: RandomGenerator) throws {
        weight = try Tensor(uninitialized: [count, dim])
        Initializer.normal(weight, std: 1, rng)
        super.init()
        registerParameter("weight", weight)
    }

    public func callAsFunction(_ indices: [Int]) throws -> Tensor { try embedding(indices: indices, weight: weight) }
}
