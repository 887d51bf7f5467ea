// Reverse-mode automatic differentiation over a dynamically recorded graph (define-by-run, as in
// PyTorch). Each differentiable operation records a `GradNode` on its result: the inputs and a
// closure that, given the gradient of the result, accumulates (+=) the gradients of the inputs.
//
// Memory: closures capture the `Storage` of results they need, never the result tensor itself,
// so no reference cycle keeps a graph alive; `backward()` drops each node once it has run, which
// frees the saved activations layer by layer.

import Glibc

package final class GradNode {
    package let inputs: [Tensor]
    package let backward: (Tensor) throws -> Void
    package init(inputs: [Tensor], backward: @escaping (Tensor) throws -> Void) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether operations record the graph on the current thread (`withoutGrad` turns it off for
/// inference, as `torch.no_grad()` does).
public enum GradMode {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    public static var isEnabled: Bool { pthread_getspecific(key) == nil }

    package static func setEnabled(_ enabled: Bool) {
        pthread_setspecific(key, enabled ? nil : UnsafeRawPointer(bitPattern: 1))
    }
}

/// Runs `body` without recording gradients.
public func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
    let was = GradMode.isEnabled
    GradMode.setEnabled(false)
    defer { GradMode.setEnabled(was) }
    return try body()
}

/// A flag the caller of a long computation may raise to stop it (Ctrl-C in Python). Checked
/// between graph nodes in backward, between steps in training and sampling loops.
public final class CancelToken: @unchecked Sendable {
    private let flag: UnsafePointer<Int32>?
    private var raised = false
    /// Observes an external flag (set by a signal handler); nil observes nothing.
    public init(flag: UnsafePointer<Int32>? = nil) { self.flag = flag }
    public func cancel() { raised = true }
    public var isCancelled: Bool {
        if raised { return true }
        if let flag, UnsafeMutableRawPointer(mutating: flag).load(as: Int32.self) != 0 { return true }
        return false
    }
    public func check() throws { if isCancelled { throw MedSynthError.cancelled } }
    public static let never = CancelToken()
}

extension Tensor {
    /// Records `backward` as the way gradients flow from this (fresh) result into `inputs`, when
    /// grad mode is on and some input needs a gradient. Returns self for chaining.
    @discardableResult
    package func recording(_ inputs: [Tensor], _ backward: @escaping (Tensor) throws -> Void) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.needsGrad }) {
            node = GradNode(inputs: inputs, backward: backward)
        }
        return self
    }

    /// Back-propagates from this tensor, seeded with ones (or `seed`): accumulates gradients
    /// into every leaf with `requiresGrad`. The graph is consumed.
    public func backward(seed: Tensor? = nil, cancel: CancelToken = .never) throws {
        let order = topologicalOrder()
        if let seed {
            try require(seed.count == count, "backward: the seed has \(seed.count) values, the tensor \(count)")
            grad = try seed.copy()
        } else {
            let g = try Tensor(repeating: 1, shape: shape)
            grad = g
        }
        var cancelled = false
        for t in order.reversed() {
            guard let node = t.node else { continue }
            if !cancelled && cancel.isCancelled { cancelled = true }
            if !cancelled, let g = t.grad { try node.backward(g) }
            t.node = nil                         // frees saved activations
            if !t.requiresGrad { t.grad = nil }  // intermediate gradients are not kept
        }
        if cancelled { throw MedSynthError.cancelled }
    }

    /// Tensors reachable through graph nodes, inputs before the results that use them.
    package func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if !visited.insert(ObjectIdentifier(t)).inserted { continue }
            stack.append((t, true))
            if let node = t.node {
                for input in node.inputs where input.node != nil && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        return order
    }
}
