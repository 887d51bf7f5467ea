// Differentiable arithmetic (torch semantics): broadcasting add/sub/mul/div and their operators,
// scalar arithmetic, unary maths, and sums and means over all or some dimensions.

import RealModule

// MARK: - Result sizes

/// Throws unless a result of `shape` can be counted and fits in memory: for operations whose
/// result can be far larger than their inputs (broadcasting, matrix products, lookups), so that an
/// impossible request is an error, not a failed allocation. Small results skip the memory query.
package func checkResultSize(_ shape: [Int], _ name: String) throws {
    guard let count = checkedElementCount(shape), count <= Int.max / MemoryLayout<Float>.stride else {
        throw MedSynthError.invalidArgument("\(name): the result shape \(shape) has too many elements")
    }
    if count >= 1 << 24 {
        try MemoryBudget.check(bytes: count * MemoryLayout<Float>.stride, what: "\(name) result of shape \(shape)")
    }
}

// MARK: - Broadcasting binary operations

/// Adds `alpha · g` (g of `shape`, the broadcast result shape) into the gradient of `t`, summing
/// over the dimensions `t` was broadcast along (torch's `sum_to`).
package func accumulateBroadcastGradient(_ g: UnsafePointer<Float>, shape: [Int], into t: Tensor, alpha: Float = 1) throws {
    ElementwiseKernel.sumToShape(g, shape, try t.gradPointer(), t.shape, alpha: alpha)
}

/// The gradient of `t` += reduce(f(dy, other)), where `other` is broadcast to `outShape`:
/// fused into one pass when `t` has the full output shape, else through a temporary.
private func accumulateProductGradient<F: BinaryFunction>(
    _ f: F, dy: Tensor, other: Tensor, outShape: [Int], into t: Tensor
) throws {
    // Broadcasting dy (outShape) with other always gives outShape back.
    guard let plan = BroadcastPlan(outShape, other.shape) else { return }
    if t.count == dy.count {
        ElementwiseKernel.broadcast(f, plan, dy.data, other.data, try t.gradPointer(), accumulate: true)
    } else {
        let g = try Tensor(uninitialized: outShape)
        ElementwiseKernel.broadcast(f, plan, dy.data, other.data, g.data)
        try accumulateBroadcastGradient(g.data, shape: outShape, into: t)
    }
}

private func binary(_ op: BinaryOp, _ name: String, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard let shape = broadcastShape(a.shape, b.shape) else {
        throw MedSynthError.invalidArgument(
            "\(name): shapes \(a.shape) and \(b.shape) do not broadcast (aligned from the right, each pair of sizes must be equal or contain a 1)")
    }
    try checkResultSize(shape, name)
    guard let plan = BroadcastPlan(a.shape, b.shape) else { throw MedSynthError.invalidArgument("\(name): shapes do not broadcast") }
    let outShape = plan.outShape
    let y = try Tensor(uninitialized: outShape)
    ElementwiseKernel.broadcast(op, plan, a.data, b.data, y.data)
    let saved = op == .div ? y.storage : nil   // div's gradient for b reuses a / b
    return y.recording([a, b]) { dy in
        switch op {
        case .add, .sub:
            if a.needsGrad { try accumulateBroadcastGradient(dy.data, shape: outShape, into: a) }
            if b.needsGrad { try accumulateBroadcastGradient(dy.data, shape: outShape, into: b, alpha: op == .add ? 1 : -1) }
        case .mul:
            if a.needsGrad { try accumulateProductGradient(MulFunction(), dy: dy, other: b, outShape: outShape, into: a) }
            if b.needsGrad { try accumulateProductGradient(MulFunction(), dy: dy, other: a, outShape: outShape, into: b) }
        case .div:
            // torch: da = dy / b;  db = −dy · ((a / b) / b)
            if a.needsGrad { try accumulateProductGradient(DivFunction(), dy: dy, other: b, outShape: outShape, into: a) }
            if b.needsGrad, let saved {
                guard let q = BroadcastPlan(outShape, b.shape) else { return }
                let g = try Tensor(uninitialized: outShape)
                ElementwiseKernel.broadcast(DivFunction(), q, saved.pointer, b.data, g.data)      // (a / b) / b
                if b.count == dy.count {
                    ElementwiseKernel.zip(NegMulFunction(), dy.data, g.data, try b.gradPointer(), dy.count, accumulate: true)
                } else {
                    ElementwiseKernel.zip(NegMulFunction(), dy.data, g.data, g.data, dy.count)
                    try accumulateBroadcastGradient(g.data, shape: outShape, into: b)
                }
            }
        }
    }
}

private struct NegMulFunction: BinaryFunction {
    @inline(__always) package func callAsFunction(_ a: Float, _ b: Float) -> Float { -a * b }
}

/// a + b with broadcasting (torch.add): shapes aligned from the right, each pair of extents equal
/// or one of them 1. Gradients are summed over the broadcast dimensions.
public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.add, "add", a, b) }

/// a − b with broadcasting (torch.sub). ∂/∂a = 1, ∂/∂b = −1.
public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.sub, "sub", a, b) }

/// a · b elementwise with broadcasting (torch.mul). ∂/∂a = b, ∂/∂b = a.
public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.mul, "mul", a, b) }

/// a / b elementwise with broadcasting (torch.div, true division; x/0 gives ±inf or NaN as in
/// IEEE arithmetic). ∂/∂a = 1/b, ∂/∂b = −(a/b)/b.
public func div(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.div, "div", a, b) }

extension Tensor {
    /// `add(lhs, rhs)`; throws when the shapes do not broadcast.
    public static func + (lhs: Tensor, rhs: Tensor) throws -> Tensor { try add(lhs, rhs) }
    /// `sub(lhs, rhs)`; throws when the shapes do not broadcast.
    public static func - (lhs: Tensor, rhs: Tensor) throws -> Tensor { try sub(lhs, rhs) }
    /// `mul(lhs, rhs)`; throws when the shapes do not broadcast.
    public static func * (lhs: Tensor, rhs: Tensor) throws -> Tensor { try mul(lhs, rhs) }
    /// `div(lhs, rhs)`; throws when the shapes do not broadcast.
    public static func / (lhs: Tensor, rhs: Tensor) throws -> Tensor { try div(lhs, rhs) }

    public static func + (lhs: Tensor, rhs: Float) throws -> Tensor { try add(lhs, rhs) }
    public static func + (lhs: Float, rhs: Tensor) throws -> Tensor { try add(rhs, lhs) }
    public static func - (lhs: Tensor, rhs: Float) throws -> Tensor { try sub(lhs, rhs) }
    public static func - (lhs: Float, rhs: Tensor) throws -> Tensor { try sub(lhs, rhs) }
    public static func * (lhs: Tensor, rhs: Float) throws -> Tensor { try mul(lhs, rhs) }
    public static func * (lhs: Float, rhs: Tensor) throws -> Tensor { try mul(rhs, lhs) }
    public static func / (lhs: Tensor, rhs: Float) throws -> Tensor { try div(lhs, rhs) }
    public static func / (lhs: Float, rhs: Tensor) throws -> Tensor { try div(lhs, rhs) }
    public static prefix func - (x: Tensor) throws -> Tensor { try neg(x) }
}

// MARK: - Unary maps

/// y = f(x) elementwise; backward dx += g(dy, x or y) (`usesOutput` picks which is saved, so the
/// closure keeps the storage alive but never the result tensor).
func unaryOp<F: UnaryFunction, G: BinaryFunction>(
    _ x: Tensor, _ f: F, grain: Int = ElementwiseKernel.grain, usesOutput: Bool = false, _ g: G
) throws -> Tensor {
    let y = try Tensor(uninitialized: x.shape)
    ElementwiseKernel.map(f, x.data, y.data, x.count, grain: grain)
    let saved = usesOutput ? y.storage : x.storage
    return y.recording([x]) { dy in
        ElementwiseKernel.zip(g, dy.data, saved.pointer, try x.gradPointer(), x.count, accumulate: true, grain: grain)
    }
}

private struct AddScalar: UnaryFunction { let s: Float; @inline(__always) func callAsFunction(_ x: Float) -> Float { x + s } }
private struct SubScalar: UnaryFunction { let s: Float; @inline(__always) func callAsFunction(_ x: Float) -> Float { x - s } }
private struct ScalarSub: UnaryFunction { let s: Float; @inline(__always) func callAsFunction(_ x: Float) -> Float { s - x } }
private struct MulScalar: UnaryFunction { let s: Float; @inline(__always) func callAsFunction(_ x: Float) -> Float { x * s } }
private struct DivScalar: UnaryFunction { let s: Float; @inline(__always) func callAsFunction(_ x: Float) -> Float { x / s } }
private struct Negate: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { -x } }
private struct SquareRoot: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { x.squareRoot() } }
private struct Exponential: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { VectorMath.exp(x) } }
private struct Logarithm: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { Float.log(x) } }
private struct Square: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { x * x } }
private struct Reciprocal: UnaryFunction { @inline(__always) func callAsFunction(_ x: Float) -> Float { 1 / x } }

/// dx += dy (the saved tensor is unused).
private struct PassGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ s: Float) -> Float { dy } }
private struct NegateGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ s: Float) -> Float { -dy } }
private struct ScaleGradient: BinaryFunction { let k: Float; @inline(__always) func callAsFunction(_ dy: Float, _ s: Float) -> Float { dy * k } }
private struct DivideGradient: BinaryFunction { let k: Float; @inline(__always) func callAsFunction(_ dy: Float, _ s: Float) -> Float { dy / k } }
/// sqrt: dy / (2·y)
private struct SqrtGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ y: Float) -> Float { dy / (2 * y) } }
/// exp: dy · y
private struct ExpGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ y: Float) -> Float { dy * y } }
/// log: dy / x
private struct LogGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ x: Float) -> Float { dy / x } }
/// square: dy · 2x
private struct SquareGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ x: Float) -> Float { dy * (2 * x) } }
/// reciprocal: −dy · y²
private struct ReciprocalGradient: BinaryFunction { @inline(__always) func callAsFunction(_ dy: Float, _ y: Float) -> Float { -dy * (y * y) } }

/// x + s elementwise (torch.add with a Python number).
public func add(_ x: Tensor, _ s: Float) throws -> Tensor { try unaryOp(x, AddScalar(s: s), PassGradient()) }

/// x − s elementwise.
public func sub(_ x: Tensor, _ s: Float) throws -> Tensor { try unaryOp(x, SubScalar(s: s), PassGradient()) }

/// s − x elementwise (torch.rsub).
public func sub(_ s: Float, _ x: Tensor) throws -> Tensor { try unaryOp(x, ScalarSub(s: s), NegateGradient()) }

/// x · s elementwise. ∂/∂x = s.
public func mul(_ x: Tensor, _ s: Float) throws -> Tensor { try unaryOp(x, MulScalar(s: s), ScaleGradient(k: s)) }

/// x / s elementwise (true division). ∂/∂x = 1/s (computed as dy / s, as torch does).
public func div(_ x: Tensor, _ s: Float) throws -> Tensor { try unaryOp(x, DivScalar(s: s), DivideGradient(k: s)) }

/// s / x elementwise, computed as torch's `__rtruediv__`: reciprocal(x) · s.
public func div(_ s: Float, _ x: Tensor) throws -> Tensor { try mul(try reciprocal(x), s) }

/// −x (torch.neg).
public func neg(_ x: Tensor) throws -> Tensor { try unaryOp(x, Negate(), NegateGradient()) }

/// √x elementwise (torch.sqrt; NaN for x < 0). ∂/∂x = 1 / (2·√x), inf at 0.
public func sqrt(_ x: Tensor) throws -> Tensor { try unaryOp(x, SquareRoot(), usesOutput: true, SqrtGradient()) }

/// eˣ elementwise (torch.exp). ∂/∂x = eˣ (the saved output).
public func exp(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, Exponential(), grain: ElementwiseKernel.transcendentalGrain, usesOutput: true, ExpGradient())
}

/// ln x elementwise (torch.log; −inf at 0, NaN below). ∂/∂x = 1/x.
public func log(_ x: Tensor) throws -> Tensor {
    try unaryOp(x, Logarithm(), grain: ElementwiseKernel.transcendentalGrain, LogGradient())
}

/// x² elementwise (torch.square). ∂/∂x = 2x.
public func square(_ x: Tensor) throws -> Tensor { try unaryOp(x, Square(), SquareGradient()) }

/// 1/x elementwise (torch.reciprocal). ∂/∂x = −1/x² (as −dy·y²).
public func reciprocal(_ x: Tensor) throws -> Tensor { try unaryOp(x, Reciprocal(), usesOutput: true, ReciprocalGradient()) }

// MARK: - Reductions

/// Σ of all elements, as a tensor of shape [] (torch.sum(x)). The sum runs in fixed chunks whose
/// partial sums are added in order, so it is the same on any number of threads. Empty → 0.
public func sum(_ x: Tensor) throws -> Tensor {
    let y = try Tensor(uninitialized: [])
    y.data[0] = ElementwiseKernel.sum(x.data, x.count)
    return y.recording([x]) { dy in
        let g = dy.data[0]
        let dx = try x.gradPointer()
        parallelRanges(x.count, grain: ElementwiseKernel.grain) { lo, hi in for i in lo..<hi { dx[i] += g } }
    }
}

/// Mean of all elements, shape [] (torch.mean(x)): sum / count (NaN for an empty tensor).
/// ∂/∂x = dy / count.
public func mean(_ x: Tensor) throws -> Tensor {
    let y = try Tensor(uninitialized: [])
    let n = Float(x.count)
    y.data[0] = ElementwiseKernel.sum(x.data, x.count) / n
    return y.recording([x]) { dy in
        let g = dy.data[0] / n
        let dx = try x.gradPointer()
        parallelRanges(x.count, grain: ElementwiseKernel.grain) { lo, hi in for i in lo..<hi { dx[i] += g } }
    }
}

/// The shape `x` keeps when `dims` are reduced with keepDims (extent 1 there), the output shape,
/// and the number of elements reduced into each output.
private func reductionShapes(_ name: String, _ shape: [Int], _ dims: [Int], keepDims: Bool) throws
    -> (kept: [Int], out: [Int], reduced: Int) {
    let rank = shape.count
    var reduce = [Bool](repeating: dims.isEmpty, count: rank)   // torch: dim=[] reduces every dimension
    for d in dims {
        let r = max(rank, 1)   // a 0-d tensor accepts dim 0 and -1
        try require(d >= -r && d < r, "\(name): dimension \(d) is out of range for a tensor of rank \(rank) (expected -\(r)...\(r - 1))")
        let nd = d < 0 ? d + r : d
        if rank == 0 { continue }
        try require(!reduce[nd], "\(name): dimension \(nd) appears more than once in dims \(dims)")
        reduce[nd] = true
    }
    var kept = shape, out: [Int] = [], reduced = 1
    for i in 0..<rank {
        if reduce[i] { kept[i] = 1; reduced *= shape[i]; if keepDims { out.append(1) } } else { out.append(shape[i]) }
    }
    return (kept, out, reduced)
}

/// Σ over `dims` (torch.sum(x, dim, keepdim)): negative dims count from the end; the reduced
/// dimensions are removed, or kept with extent 1 when `keepDims`. An empty `dims` reduces every
/// dimension, as in torch. Each output element is summed by one thread in a fixed order.
public func sum(_ x: Tensor, dims: [Int], keepDims: Bool = false) throws -> Tensor {
    let (kept, outShape, _) = try reductionShapes("sum", x.shape, dims, keepDims: keepDims)
    let y = try Tensor(zeros: outShape)
    ElementwiseKernel.sumToShape(x.data, x.shape, y.data, kept)
    return y.recording([x]) { dy in
        // dx += dy broadcast back over the reduced dimensions
        guard let plan = BroadcastPlan(x.shape, kept) else { return }
        let dx = try x.gradPointer()
        ElementwiseKernel.broadcast(AddFunction(), plan, dx, dy.data, dx)
    }
}

/// Mean over `dims` (torch.mean(x, dim, keepdim)): the sum divided by the number of elements
/// reduced (NaN where that is 0). Dims as in `sum(_:dims:keepDims:)`. ∂/∂x = dy / count.
public func mean(_ x: Tensor, dims: [Int], keepDims: Bool = false) throws -> Tensor {
    let (kept, outShape, reduced) = try reductionShapes("mean", x.shape, dims, keepDims: keepDims)
    let y = try Tensor(zeros: outShape)
    ElementwiseKernel.sumToShape(x.data, x.shape, y.data, kept)
    let n = Float(reduced)
    ElementwiseKernel.map(DivScalar(s: n), y.data, y.data, y.count)
    return y.recording([x]) { dy in
        guard let plan = BroadcastPlan(x.shape, kept) else { return }
        let scaled = try Tensor(uninitialized: kept)
        ElementwiseKernel.map(DivScalar(s: n), dy.data, scaled.data, dy.count)
        let dx = try x.gradPointer()
        ElementwiseKernel.broadcast(AddFunction(), plan, dx, scaled.data, dx)
    }
}
