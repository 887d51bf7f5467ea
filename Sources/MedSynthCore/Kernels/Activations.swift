// Activation functions and their derivatives as elementwise functions, run by the generic
// `ElementwiseKernel` loops (vectorised, split over the thread pool for large tensors).
//
// Formulas follow PyTorch's CPU kernels (aten/src/ATen/native/cpu/Activation.cpp,
// UnaryOpsKernel.cpp), including the order of operations, so values match to rounding:
//   relu        y = max(x, 0)                        dx = y ≤ 0 ? 0 : dy        (relu'(0) = 0)
//   relu6       y = min(max(x, 0), 6)                dx = x ≤ 0 or x ≥ 6 ? 0 : dy  (hardtanh_backward)
//   leaky relu  y = x > 0 ? x : x·slope              dx = x > 0 ? dy : dy·slope
//   sigmoid     y = 1 / (1 + e^−x)                   dx = dy·(1 − y)·y
//   tanh        y = tanh x                           dx = dy·(1 − y²)
//   silu        y = x / (1 + e^−x)                   dx = dy·σ·(1 + x·(1 − σ))
//   gelu        y = x·½·(1 + erf(x/√2))              dx = dy·(Φ(x) + x·φ(x))
//   gelu tanh   y = ½x·(1 + tanh(√(2/π)·(x + 0.044715x³)))   (derivative below)
// exp, erf and tanh are the vectorisable versions of Kernels/VectorMath.swift (the algorithms of
// torch's vectorised CPU kernels). NaN inputs give NaN outputs (relu and relu6 propagate NaN, as
// torch's clamp does).

package enum ActivationKernel {
    package struct ReLU: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { x < 0 ? 0 : x }
    }
    /// 0 where the saved output y ≤ 0, else dy (torch's threshold_backward, so NaN passes dy).
    package struct ReLUGradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ y: Float) -> Float { y <= 0 ? 0 : dy }
    }

    package struct ReLU6: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { x < 0 ? 0 : (x > 6 ? 6 : x) }
    }
    /// 0 where the saved input x ≤ 0 or x ≥ 6, else dy (torch's hardtanh_backward).
    package struct ReLU6Gradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ x: Float) -> Float { (x <= 0 || x >= 6) ? 0 : dy }
    }

    /// The gradient of a clamp to [0, high] from its output y: 0 where y ≤ 0 or y ≥ high, else dy.
    /// ReLUGradient with high = NaN (no comparison with it holds, so y = +∞ keeps dy), and
    /// ReLU6Gradient with high = 6 (y ≤ 0 ⟺ x ≤ 0, y ≥ 6 ⟺ x ≥ 6).
    package struct ClampGradient: BinaryFunction {
        package let high: Float
        @inline(__always) package func callAsFunction(_ dy: Float, _ y: Float) -> Float { (y <= 0 || y >= high) ? 0 : dy }
    }

    package struct LeakyReLU: UnaryFunction {
        package let slope: Float
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { x > 0 ? x : x * slope }
    }
    package struct LeakyReLUGradient: BinaryFunction {
        package let slope: Float
        @inline(__always) package func callAsFunction(_ dy: Float, _ x: Float) -> Float { x > 0 ? dy : dy * slope }
    }

    package struct Sigmoid: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { 1 / (1 + VectorMath.exp(-x)) }
    }
    /// From the saved output y.
    package struct SigmoidGradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ y: Float) -> Float { dy * (1 - y) * y }
    }

    package struct Tanh: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { VectorMath.tanh(x) }
    }
    /// From the saved output y.
    package struct TanhGradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ y: Float) -> Float { dy * (1 - y * y) }
    }

    package struct SiLU: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { x / (1 + VectorMath.exp(-x)) }
    }
    /// From the saved input x.
    package struct SiLUGradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ x: Float) -> Float {
            let s = 1 / (1 + VectorMath.exp(-x))
            return dy * s * (1 + x * (1 - s))
        }
    }

    // Literal constants (torch computes them in double and rounds once to float, as here).
    package static let sqrtHalf: Float = 0.707_106_781_186_547_524_40       // 1/√2 (M_SQRT1_2)
    package static let invSqrt2Pi: Float = 0.398_942_280_401_432_677_94     // 1/√(2π) = M_2_SQRTPI·M_SQRT1_2·½
    package static let beta: Float = 0.797_884_560_802_865_355_88           // √(2/π) = M_SQRT2·M_2_SQRTPI·½
    package static let kappa: Float = 0.044715

    package struct GELU: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float { x * 0.5 * (1 + VectorMath.erf(x * sqrtHalf)) }
    }
    /// From the saved input x: Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
    package struct GELUGradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ x: Float) -> Float {
            let cdf = 0.5 * (1 + VectorMath.erf(x * sqrtHalf))
            let pdf = invSqrt2Pi * VectorMath.exp(x * x * -0.5)
            return dy * (cdf + x * pdf)
        }
    }

    package struct GELUTanh: UnaryFunction {
        @inline(__always) package func callAsFunction(_ x: Float) -> Float {
            let inner = beta * (x + kappa * (x * x * x))
            return 0.5 * x * (1 + VectorMath.tanh(inner))
        }
    }
    /// From the saved input x: ½(1 + t) + ½x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(inner).
    package struct GELUTanhGradient: BinaryFunction {
        @inline(__always) package func callAsFunction(_ dy: Float, _ x: Float) -> Float {
            let xSquared = x * x
            let inner = beta * (x + kappa * (xSquared * x))
            let t = VectorMath.tanh(inner)
            let left = 0.5 * x, right = 1 + t
            let leftDerivative = 0.5 * right
            let tanhDerivative = 1 - t * t
            let innerDerivative = beta * (1 + 3 * kappa * xSquared)
            let rightDerivative = left * tanhDerivative * innerDerivative
            return dy * (leftDerivative + rightDerivative)
        }
    }
}
