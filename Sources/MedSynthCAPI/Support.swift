// What every C ABI function shares: turning thrown errors into status codes and messages,
// validating pointers and sizes, and owning handles.

import MedSynth
import MedSynthCore

import CMedSynth
import Glibc

enum CAPI {
    static func code(for error: Error) -> Int32 {
        switch error as? MedSynthError {
        case .invalidArgument?: return MS_ERR_INVALID_ARGUMENT
        case .io?: return MS_ERR_IO
        case .runtime?: return MS_ERR_RUNTIME
        case .outOfMemory?: return MS_ERR_MEMORY
        case .cancelled?: return MS_ERR_CANCELLED
        case nil: return MS_ERR_RUNTIME
        }
    }

    /// Copies `text` into a C buffer of `capacity` bytes, NUL-terminated, cut on a UTF-8 boundary.
    /// Returns the bytes the whole text needs (including the NUL).
    @discardableResult
    static func copy(_ text: String, to buffer: UnsafeMutablePointer<CChar>?, capacity: Int) -> Int {
        let bytes = Array(text.utf8)
        guard let buffer, capacity > 0 else { return bytes.count + 1 }
        var n = min(bytes.count, capacity - 1)
        while n > 0 && n < bytes.count && (bytes[n] & 0xC0) == 0x80 { n -= 1 }   // don't split a character
        for i in 0..<n { buffer[i] = CChar(bitPattern: bytes[i]) }
        buffer[n] = 0
        return bytes.count + 1
    }

    /// The size-query pattern: writes the bytes `text` needs (with the NUL) into `needed` and, when
    /// `buffer` holds that many, the text itself; otherwise MS_ERR_BUFFER_TOO_SMALL.
    static func text(_ body: () throws -> String, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                     _ needed: UnsafeMutablePointer<Int>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
        var text = ""
        let status = call(err, errLen) { text = try body() }
        guard status == MS_OK else { return status }
        let size = text.utf8.count + 1
        needed?.pointee = size
        guard let buffer, capacity >= size else {
            copy("the buffer needs \(size) bytes", to: err, capacity: errLen)
            return MS_ERR_BUFFER_TOO_SMALL
        }
        copy(text, to: buffer, capacity: capacity)
        return MS_OK
    }

    /// The size-query pattern for bytes: writes `size()` into `needed` and, when `buffer` holds that
    /// many, lets `fill` write them; otherwise MS_ERR_BUFFER_TOO_SMALL. `body` computes the
    /// size, asks `sized` for the buffer and fills it (so it can hold a model's lock throughout).
    static func bytes(_ buffer: UnsafeMutablePointer<UInt8>?, _ capacity: Int, _ needed: UnsafeMutablePointer<Int>?,
                      _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int,
                      _ body: (_ sized: (Int) throws -> UnsafeMutableRawBufferPointer) throws -> Void) -> Int32 {
        var tooSmall = false
        let status = call(err, errLen) {
            try body { size in
                needed?.pointee = size
                guard let buffer, capacity >= size else {
                    tooSmall = true
                    throw MedSynthError.invalidArgument("the buffer needs \(size) bytes")
                }
                return UnsafeMutableRawBufferPointer(start: buffer, count: size)
            }
        }
        return tooSmall ? MS_ERR_BUFFER_TOO_SMALL : status
    }

    /// Runs `body`, mapping a thrown error to its status code and message.
    static func call(_ err: UnsafeMutablePointer<CChar>?, _ errLen: Int, _ body: () throws -> Void) -> Int32 {
        do {
            try body()
            return MS_OK
        } catch {
            copy(String(describing: error), to: err, capacity: errLen)
            return code(for: error)
        }
    }

    static func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
        guard let p else { throw MedSynthError.invalidArgument("\(what) must not be NULL") }
        guard let s = String(validatingCString: p) else { throw MedSynthError.invalidArgument("\(what) is not valid UTF-8") }
        return s
    }

    static func json(_ p: UnsafePointer<CChar>?, _ what: String) throws -> JSON {
        guard let p else { return .object([]) }
        let text = try string(p, what)
        if text.isEmpty { return .object([]) }
        let value = try JSON.parse(text, source: what)
        guard value.object != nil else { throw MedSynthError.invalidArgument("\(what) must be a JSON object") }
        return value
    }

    static func pointer<T>(_ p: UnsafePointer<T>?, _ what: String) throws -> UnsafePointer<T> {
        guard let p else { throw MedSynthError.invalidArgument("\(what) must not be NULL") }
        return p
    }

    static func pointer<T>(_ p: UnsafeMutablePointer<T>?, _ what: String) throws -> UnsafeMutablePointer<T> {
        guard let p else { throw MedSynthError.invalidArgument("\(what) must not be NULL") }
        return p
    }

    /// Checks image batch dimensions and returns the element count.
    static func batchValueCount(_ n: Int64, _ c: Int64, _ h: Int64, _ w: Int64, allowEmpty: Bool = false) throws -> Int {
        try require(n >= (allowEmpty ? 0 : 1), "the batch must hold at least one image (got \(n))")
        try require(c >= 1 && h >= 1 && w >= 1, "image dimensions must be positive (got \(c)x\(h)x\(w))")
        try require(c <= 4096 && h <= 1 << 16 && w <= 1 << 16, "image dimensions \(c)x\(h)x\(w) are implausibly large")
        guard let count = checkedElementCount([Int(n), Int(c), Int(h), Int(w)]), count <= Int(Int32.max) * 64 else {
            throw MedSynthError.outOfMemory("an image batch of \(n)x\(c)x\(h)x\(w) floats is too large")
        }
        return count
    }
}

/// A Swift object behind an opaque C handle, with a lock so that concurrent calls on the same
/// handle fail cleanly instead of racing.
final class Handle<Object> {
    var object: Object
    /// The JSON result of the last long call (fit, sample), read with the *_result functions.
    var lastResult = "{}"
    private var mutex = pthread_mutex_t()

    init(_ object: Object) {
        self.object = object
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    var opaque: OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func from(_ p: OpaquePointer?) throws -> Handle<Object> {
        guard let p else { throw MedSynthError.invalidArgument("the model handle is NULL (was it freed?)") }
        return Unmanaged<Handle<Object>>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
    }

    static func release(_ p: OpaquePointer?) {
        guard let p else { return }
        Unmanaged<Handle<Object>>.fromOpaque(UnsafeRawPointer(p)).release()
    }

    /// Runs `body` holding the handle; a call already in progress on another thread is an error.
    func exclusive<R>(_ body: (inout Object) throws -> R) throws -> R {
        guard pthread_mutex_trylock(&mutex) == 0 else {
            throw MedSynthError.runtime("this model is busy with a call on another thread")
        }
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&object)
    }
}

/// Progress reporting and cancellation for one C call.
struct RunContext {
    let progressFn: ms_progress_fn?
    let user: UnsafeMutableRawPointer?
    let token: CancelToken

    init(_ run: UnsafePointer<ms_run>?) {
        progressFn = run?.pointee.progress
        user = run?.pointee.user
        token = CancelToken(flag: run?.pointee.cancel)
    }

    /// Reports progress; throws `.cancelled` when the callback asks to stop or the flag is up.
    func report(_ done: Int, _ total: Int, _ info: JSON) throws {
        if let progressFn {
            let stop = info.serialized.withCString { progressFn(user, Int64(done), Int64(total), $0) }
            if stop != 0 { token.cancel() }
        }
        try token.check()
    }

    var progress: Progress { Progress(report: { try report($0, $1, $2) }, cancel: token) }
}
