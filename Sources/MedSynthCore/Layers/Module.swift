// Modules: containers of parameters, buffers and child modules, named as in PyTorch so that
// state dicts (and safetensors checkpoints) use torch's keys: `layer1.0.conv1.weight`.

public enum ModuleError {
    package static func missing(_ key: String) -> MedSynthError { .invalidArgument("checkpoint has no tensor '\(key)'") }
}

open class Module {
    /// This module's own parameters (not its children's), in registration order.
    public private(set) var localParameters: [(String, Tensor)] = []
    /// Non-trainable state saved with the weights (BatchNorm running statistics).
    public private(set) var localBuffers: [(String, Tensor)] = []
    public private(set) var children: [(String, Module)] = []
    /// Training mode (dropout active, batch norm uses batch statistics). Set with `train(_:)`.
    public private(set) var isTraining = true

    public init() {}

    // MARK: registration

    @discardableResult
    public func registerParameter(_ name: String, _ t: Tensor) -> Tensor {
        t.requiresGrad = true
        localParameters.append((name, t))
        return t
    }

    @discardableResult
    public func registerBuffer(_ name: String, _ t: Tensor) -> Tensor {
        localBuffers.append((name, t))
        return t
    }

    @discardableResult
    public func registerChild<M: Module>(_ name: String, _ m: M) -> M {
        children.append((name, m))
        return m
    }

    // MARK: traversal

    /// All parameters with dotted names, depth first in registration order (torch's order).
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out = localParameters.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedParameters(prefix: prefix + name + ".") }
        return out
    }

    public var parameters: [Tensor] { namedParameters().map { $0.1 } }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out = localBuffers.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedBuffers(prefix: prefix + name + ".") }
        return out
    }

    public func modules() -> [Module] { [self] + children.flatMap { $0.1.modules() } }

    /// Sets training or evaluation mode on this module and all its children.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, child) in children { child.train(on) }
    }

    public func eval() { train(false) }

    public func zeroGrad() { for p in parameters { p.grad = nil } }

    // MARK: state dict

    /// Entries this module itself contributes (parameters and buffers as F32); subclasses with
    /// non-float state (BatchNorm's `num_batches_tracked`) add theirs.
    open func localStateEntries(prefix: String) -> [SafetensorsEntry] {
        (localParameters + localBuffers).map { SafetensorsEntry(name: prefix + $0.0, tensor: $0.1) }
    }

    /// Names, dtypes and shapes of `localStateEntries` without copying any data.
    open func localStateLayout(prefix: String) -> [(name: String, dtype: SafetensorsDType, shape: [Int])] {
        (localParameters + localBuffers).map { (prefix + $0.0, .F32, $0.1.shape) }
    }

    /// Loads what `localStateEntries` saves.
    open func loadLocalState(prefix: String, from lookup: (String) -> SafetensorsEntry?) throws {
        for (name, t) in localParameters + localBuffers {
            let key = prefix + name
            guard let e = lookup(key) else { throw ModuleError.missing(key) }
            // F32 of the model's shape, every value finite: anything else is not this model's
            t.data.update(fromArray: try e.finiteFloats(shape: t.shape))
        }
    }

    /// Every tensor of the model, torch-named (the state dict).
    public func stateEntries(prefix: String = "") -> [SafetensorsEntry] {
        var out = localStateEntries(prefix: prefix)
        for (name, child) in children { out += child.stateEntries(prefix: prefix + name + ".") }
        return out
    }

    /// Names, dtypes and shapes of the state dict, in its order, without copying any data.
    public func stateLayout(prefix: String = "") -> [(name: String, dtype: SafetensorsDType, shape: [Int])] {
        var out = localStateLayout(prefix: prefix)
        for (name, child) in children { out += child.stateLayout(prefix: prefix + name + ".") }
        return out
    }

    /// Loads a state dict. With `strict`, names the model does not have are an error too.
    /// Every tensor is checked (dtype, shape, finite values); when one fails, the model gets its
    /// previous state back, so a bad checkpoint leaves it as it was.
    public func loadState(_ entries: [SafetensorsEntry], strict: Bool = true) throws {
        var byName: [String: SafetensorsEntry] = [:]
        for e in entries {
            try require(byName.updateValue(e, forKey: e.name) == nil, "checkpoint has tensor '\(e.name)' twice")
        }
        if strict {
            let expected = Set(stateLayout().map { $0.name })
            let unexpected = byName.keys.filter { !expected.contains($0) }.sorted()
            try require(unexpected.isEmpty, "checkpoint has tensors the model does not: \(unexpected.prefix(5).joined(separator: ", "))")
        }
        try loadTreeOrRestore { byName[$0] }
    }

    /// Loads every tensor `lookup` gives; when one fails its checks, the model gets its previous
    /// state back, so a bad checkpoint leaves it as it was.
    package func loadTreeOrRestore(_ lookup: (String) -> SafetensorsEntry?) throws {
        var backup: [String: SafetensorsEntry] = [:]
        for e in stateEntries() { backup[e.name] = e }
        do {
            try loadTree(prefix: "", lookup)
        } catch {
            try? loadTree(prefix: "") { backup[$0] }
            throw error
        }
    }

    /// Checks that `entries` form a complete state of this model (every name, no other, each of
    /// the right dtype and shape, floats finite) without assigning anything.
    public func checkState(_ entries: [SafetensorsEntry], what: String) throws {
        let expected = stateEntries()
        var byName: [String: SafetensorsEntry] = [:]
        for e in entries { try require(byName.updateValue(e, forKey: e.name) == nil, "\(what) has tensor '\(e.name)' twice") }
        let names = Set(expected.map { $0.name })
        let unexpected = byName.keys.filter { !names.contains($0) }.sorted()
        try require(unexpected.isEmpty, "\(what) has tensors the model does not: \(unexpected.prefix(5).joined(separator: ", "))")
        for e in expected {
            guard let got = byName[e.name] else { throw MedSynthError.invalidArgument("\(what) has no tensor '\(e.name)'") }
            if e.dtype == .I64 {
                guard got.int64Scalar().map({ $0 >= 0 }) == true else {
                    throw MedSynthError.invalidArgument("\(what) tensor '\(e.name)' must hold one non-negative I64 integer")
                }
            } else {
                do { _ = try got.finiteFloats(shape: e.shape) } catch MedSynthError.invalidArgument(let m) {
                    throw MedSynthError.invalidArgument("\(what): \(m)")
                }
            }
        }
    }

    package func loadTree(prefix: String, _ lookup: (String) -> SafetensorsEntry?) throws {
        try loadLocalState(prefix: prefix, from: lookup)
        for (name, child) in children { try child.loadTree(prefix: prefix + name + ".", lookup) }
    }
}

/// A module with one input and one output: the pieces of `Sequential` and of most models.
open class Layer: Module {
    /// The layer's output; every subclass computes its own (the base class has none).
    open func forward(_ x: Tensor) throws -> Tensor {
        throw MedSynthError.runtime("\(type(of: self)) does not implement forward(_:)")
    }

    /// Sees the layer's input on every call while set: how a model's pooled features (the input
    /// of its head) are read without the architecture having to expose them. Never saved.
    package var inputTap: ((Tensor) -> Void)? = nil

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        inputTap?(x)
        return try forward(x)
    }
}

/// Children run one after another; named "0", "1", ... as torch.nn.Sequential.
public final class Sequential: Layer {
    public private(set) var layers: [Layer] = []

    public init(_ layers: [Layer]) {
        super.init()
        for l in layers { append(l) }
    }

    /// Children with their own names, run in order (torch.nn.Sequential(OrderedDict(...)),
    /// e.g. DenseNet's `features.conv0`, `features.denseblock1`).
    public init(named layers: [(String, Layer)]) {
        super.init()
        for (name, l) in layers { append(l, name: name) }
    }

    /// Adds `layer` at the end, named by its index unless `name` is given.
    public func append(_ layer: Layer, name: String? = nil) {
        registerChild(name ?? String(layers.count), layer)
        layers.append(layer)
    }

    /// Runs the layers in order; a BatchNorm followed by a ReLU or ReLU6 runs as one fused pass
    /// (same values and gradients).
    public override func forward(_ x: Tensor) throws -> Tensor {
        var h = x, i = 0
        while i < layers.count {
            // fused unless something watches the activation's input, which is not materialised
            if let norm = layers[i] as? BatchNorm, i + 1 < layers.count, layers[i + 1].inputTap == nil {
                let next = layers[i + 1]
                let activation: NormActivation? = next is ReLU ? .relu : next is ReLU6 ? .relu6 : nil
                if let activation {
                    norm.inputTap?(h)
                    h = try norm.forward(h, activation: activation)
                    i += 2
                    continue
                }
            }
            h = try layers[i](h)
            i += 1
        }
        return h
    }
}
