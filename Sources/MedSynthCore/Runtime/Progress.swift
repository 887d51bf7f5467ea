// How long engine loops (training, sampling, explanations) report progress and learn that they
// should stop. The C ABI builds one from its caller's callback and cancel flag; Swift callers and
// tests use `.silent` or their own closure.

/// The engine's version, written into every checkpoint.
public let medsynthVersion = "0.1.0"

/// How engine loops report progress and learn they should stop, independent of the C ABI.
public struct Progress {
    public let report: (Int, Int, JSON) throws -> Void
    public let cancel: CancelToken

    public init(report: @escaping (Int, Int, JSON) throws -> Void = { _, _, _ in }, cancel: CancelToken = .never) {
        self.report = report
        self.cancel = cancel
    }

    public static let silent = Progress()
}
