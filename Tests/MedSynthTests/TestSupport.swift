// Helpers shared by the file-based tests (PNG, safetensors, classifier checkpoints).

import Glibc
import Testing
@testable import MedSynth
@testable import MedSynthCore

/// Runs `body` with a fresh directory under $TMPDIR (or /tmp), removed with its files afterwards.
/// A closure rather than an object with a deinit: ARC may release an object after its last use,
/// which could delete the directory while the test still works in it.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    var template = Array("\(base)/medsynth-tests-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw MedSynthError.io("mkdtemp failed")
    }
    let path = String(cString: made)
    defer { removeTree(path) }
    return try body(path)
}

/// Removes a directory and the plain files in it (the tests create no subdirectories).
private func removeTree(_ path: String) {
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(dir)
    }
    rmdir(path)
}

/// The error `body` throws, or nil (for asserting on the case and the message).
func thrownError(_ body: () throws -> Void) -> MedSynthError? {
    do { try body() } catch let e as MedSynthError { return e } catch { return .runtime("unexpected error \(error)") }
    return nil
}

/// Expects `body` to throw `.invalidArgument` whose message contains every one of `fragments`.
func expectInvalidArgument(_ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    guard let error = thrownError(body) else {
        Issue.record("expected .invalidArgument containing \(fragments), nothing was thrown", sourceLocation: sourceLocation)
        return
    }
    guard case .invalidArgument(let message) = error else {
        Issue.record("expected .invalidArgument, got \(error)", sourceLocation: sourceLocation)
        return
    }
    for f in fragments where !message.contains(f) {
        Issue.record("message '\(message)' does not contain '\(f)'", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw `.io` whose message contains every one of `fragments`.
func expectIOError(_ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    guard let error = thrownError(body) else {
        Issue.record("expected .io containing \(fragments), nothing was thrown", sourceLocation: sourceLocation)
        return
    }
    guard case .io(let message) = error else {
        Issue.record("expected .io, got \(error)", sourceLocation: sourceLocation)
        return
    }
    for f in fragments where !message.contains(f) {
        Issue.record("message '\(message)' does not contain '\(f)'", sourceLocation: sourceLocation)
    }
}
