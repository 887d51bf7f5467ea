// Whole-file reads and atomic writes (temporary file in the same folder, fsync, rename), so a
// crash or Ctrl-C mid-write never leaves a truncated checkpoint or image behind.

import Glibc

package enum Files {
    package static func errnoText() -> String { String(cString: strerror(errno)) }

    package static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw MedSynthError.io("cannot open '\(path)': \(errnoText())") }
        defer { fclose(f) }
        var st = stat()
        guard fstat(fileno(f), &st) == 0 else { throw MedSynthError.io("cannot stat '\(path)': \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw MedSynthError.io("'\(path)' is not a regular file") }
        let size = Int(st.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard got == size else { throw MedSynthError.io("cannot read '\(path)': short read (\(got) of \(size) bytes)") }
        return bytes
    }

    /// Writes `chunks` one after another to `path` atomically.
    package static func writeAtomically(_ path: String, _ chunks: [UnsafeRawBufferPointer]) throws {
        let tmp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard let f = fopen(tmp, "wb") else { throw MedSynthError.io("cannot write '\(path)': \(errnoText())") }
        var ok = true
        for chunk in chunks where chunk.count > 0 {
            if fwrite(chunk.baseAddress, 1, chunk.count, f) != chunk.count { ok = false; break }
        }
        let message = ok ? "" : errnoText()
        if ok && (fflush(f) != 0 || fsync(fileno(f)) != 0) { ok = false }
        if fclose(f) != 0 { ok = false }
        guard ok else {
            unlink(tmp)
            throw MedSynthError.io("cannot write '\(path)': \(message.isEmpty ? errnoText() : message)")
        }
        guard rename(tmp, path) == 0 else {
            let text = errnoText()
            unlink(tmp)
            throw MedSynthError.io("cannot write '\(path)': \(text)")
        }
    }

    package static func writeAtomically(_ path: String, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAtomically(path, [$0]) }
    }

    package static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
