// Vectorised reductions. IEEE addition is not associative, so LLVM will not vectorise a plain
// `s += x[i]` loop; swift-numerics' `Relaxed` arithmetic allows reassociation ("about an 8x
// speedup", RealModule/RelaxedArithmetic.swift). Results are still deterministic for a given
// build: the association order is fixed at compile time.

import RealModule

public enum Reduce {
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s = Relaxed.sum(s, x[i]) }
        return s
    }

    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s = Relaxed.multiplyAdd(x[i], y[i], s) }
        return s
    }

    @inline(__always)
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s = Relaxed.multiplyAdd(x[i], x[i], s) }
        return s
    }

    /// Σ (x − mean)², in one pass over x; double accumulation would be slower and float is
    /// enough once the mean is removed.
    @inline(__always)
    public static func centredSumOfSquares(_ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> Float {
        var s: Float = 0
        for i in 0..<n { let d = x[i] - mean; s = Relaxed.multiplyAdd(d, d, s) }
        return s
    }

    /// max of x[0..<n] (−inf for n = 0); NaNs are skipped. LLVM does not vectorise a scalar max
    /// reduction without fast-math (it chains vmaxss), so the body runs 16 lanes at a time.
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if n >= 16 {
            let raw = UnsafeRawPointer(x)
            var acc = SIMD16<Float>(repeating: -.infinity)
            while i + 16 <= n {
                let v = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD16<Float>.self)
                acc = acc.replacing(with: v, where: v .> acc)
                i += 16
            }
            m = acc.max()
        }
        while i < n { let v = x[i]; m = v > m ? v : m; i += 1 }
        return m
    }

    /// True when every element is finite.
    public static func allFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        // x·0 is 0 for finite x and NaN otherwise; the sum stays 0 exactly when all are finite.
        var s: Float = 0
        for i in 0..<n { s = Relaxed.sum(s, x[i] * 0) }
        return s == 0
    }
}

/// Throws unless every value is finite: NaN and infinity in an input are the caller's bug and
/// would silently poison training. Checked in parallel, in chunks of 64 Ki values.
public func requireFinite(_ p: UnsafePointer<Float>, _ count: Int, _ what: String) throws {
    var flags = [Bool](repeating: true, count: ThreadPool.shared.threadCount)
    flags.withUnsafeMutableBufferPointer { f in
        ThreadPool.shared.run(count: count, maxParticipants: max(1, count / (1 << 16))) { p0, lo, hi in
            f[p0] = f[p0] && Reduce.allFinite(p + lo, hi - lo)
        }
    }
    try require(!flags.contains(false), "\(what) contains NaN or infinite values")
}
