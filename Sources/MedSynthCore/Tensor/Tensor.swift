// Dense float32 tensors, row-major (images are NCHW), with reverse-mode autograd bookkeeping.
//
// A tensor owns (or shares, for reshapes) one `Storage`. Operations that should be differentiated
// attach a `GradNode` to their result (see Autograd/Graph.swift); `backward()` walks those nodes.

public final class Tensor {
    public let shape: [Int]
    public let storage: Storage
    /// A leaf whose gradient is wanted (a parameter). Results of operations carry `node` instead.
    public var requiresGrad: Bool
    /// The accumulated gradient after `backward()`; nil until something flows into it.
    public var grad: Tensor?
    /// How this tensor was computed, when gradients flow through it.
    package var node: GradNode?

    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// Uninitialised contents. Every initialiser that allocates throws `.outOfMemory` when the
    /// memory cannot be had, and `.invalidArgument` for a shape whose element count overflows.
    public convenience init(uninitialized shape: [Int]) throws {
        self.init(shape: shape, storage: try Storage(count: try Tensor.elementCount(shape)))
    }

    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) throws {
        self.init(shape: shape, storage: try Storage(zeros: try Tensor.elementCount(shape)), requiresGrad: requiresGrad)
    }

    public convenience init(repeating value: Float, shape: [Int]) throws {
        let s = try Storage(count: try Tensor.elementCount(shape))
        s.pointer.initialize(repeating: value, count: s.count)
        self.init(shape: shape, storage: s)
    }

    /// A tensor holding `values` (row-major); `values.count` must equal the product of `shape`.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) throws {
        try require(checkedElementCount(shape) == values.count, "tensor of shape \(shape) needs \(checkedElementCount(shape) ?? -1) values, got \(values.count)")
        let s = try Storage(count: values.count)
        s.pointer.update(fromArray: values)
        self.init(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// A copy of `count` floats at `pointer`.
    public convenience init(copying pointer: UnsafePointer<Float>, shape: [Int]) throws {
        let s = try Storage(count: try Tensor.elementCount(shape))
        s.pointer.initialize(from: pointer, count: s.count)
        self.init(shape: shape, storage: s)
    }

    /// The element count of `shape`, or `.invalidArgument` when it is negative or overflows.
    package static func elementCount(_ shape: [Int]) throws -> Int {
        guard let n = checkedElementCount(shape) else { throw MedSynthError.invalidArgument("tensor shape \(shape) has a negative extent or too many elements") }
        return n
    }

    @inline(__always) public var count: Int { storage.count }
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.pointer }
    public var rank: Int { shape.count }
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
    /// The value of a one-element tensor.
    public var item: Float { data[0] }

    /// True when gradients flow through this tensor.
    @inline(__always) public var needsGrad: Bool { requiresGrad || node != nil }

    /// A detached copy of the data (no graph).
    public func copy() throws -> Tensor { try Tensor(copying: data, shape: shape) }

    /// The same data without the graph.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Zero-filled gradient of this tensor's shape, created on first use; backward kernels
    /// accumulate (+=) into it.
    @inline(__always)
    package func gradPointer() throws -> UnsafeMutablePointer<Float> {
        if let g = grad { return g.data }
        let g = try Tensor(zeros: shape)
        grad = g
        return g.data
    }

    public func zeroGrad() { grad = nil }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Copies `other`'s data into this tensor (same element count).
    public func assign(_ other: Tensor) throws {
        try require(other.count == count, "assign: \(other.count) values into a tensor of \(count)")
        data.update(from: other.data, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape): [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}

/// Number of elements of a shape, or nil when it overflows or has a negative extent.
public func checkedElementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (r, o) = n.multipliedReportingOverflow(by: d)
        if o { return nil }
        n = r
    }
    return n
}

extension UnsafeMutablePointer where Pointee == Float {
    /// Overwrites the first `values.count` floats with `values` (nothing for an empty array).
    @inline(__always)
    package func update(fromArray values: [Float]) {
        values.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { self.update(from: base, count: buffer.count) }
        }
    }
}
