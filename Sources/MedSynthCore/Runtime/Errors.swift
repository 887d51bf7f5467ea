// The engine's one error type. Every failure that input from outside can cause is one of these,
// never a trap: the C ABI turns each case into a status code and Python into the matching exception.

public enum MedSynthError: Error, CustomStringConvertible, Equatable {
    /// A value is out of range or inconsistent (Python: ValueError).
    case invalidArgument(String)
    /// A file could not be read, written or parsed (Python: OSError).
    case io(String)
    /// Training or sampling failed at run time, e.g. a non-finite loss (Python: RuntimeError).
    case runtime(String)
    /// The request would not fit in memory (Python: MemoryError).
    case outOfMemory(String)
    /// The caller asked to stop (Ctrl-C or a progress callback returned non-zero).
    case cancelled

    public var description: String {
        switch self {
        case .invalidArgument(let m), .io(let m), .runtime(let m), .outOfMemory(let m):
            return m
        case .cancelled:
            return "cancelled"
        }
    }
}

/// Throws `.invalidArgument(message())` unless `condition` holds.
@inline(__always)
package func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw MedSynthError.invalidArgument(message()) }
}
