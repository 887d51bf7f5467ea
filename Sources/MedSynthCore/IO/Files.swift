// Whole-file reads and atomic writes (temporary file in the same folder, fsync, rename), so a
// crash or Ctrl-C mid-write never leaves a truncated checkpoint or image behind.
// Every read opens with O_NONBLOCK and refuses anything but a regular file before reading, so a
// FIFO, socket or device given as a path is an error naming it instead of a read that never ends.

import Glibc

package enum Files {
    package static func errnoText() -> String { String(cString: strerror(errno)) }

    /// An open regular file (read-only), its size taken once at open.
    package final class OpenFile {
        package let path: String
        package let fd: Int32
        package let size: Int

        package init(_ path: String) throws {
            try checkPath(path)
            self.path = path
            // O_NONBLOCK: opening a FIFO without a writer would otherwise block before fstat
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw MedSynthError.io("cannot open '\(path)': \(Files.errnoText())") }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let text = Files.errnoText()
                Glibc.close(fd)
                throw MedSynthError.io("cannot stat '\(path)': \(text)")
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                Glibc.close(fd)
                throw MedSynthError.io("'\(path)' is not a regular file (\(Files.kind(st.st_mode)))")
            }
            // regular files never block; clear the flag so reads behave normally
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            self.fd = fd
            self.size = Int(st.st_size)
        }

        package func close() { Glibc.close(fd) }

        /// Reads exactly `count` bytes at `offset` into `buffer`.
        package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
            var done = 0
            while done < buffer.count {
                let got = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    throw MedSynthError.io(got < 0 ? "cannot read '\(path)': \(Files.errnoText())"
                                                   : "cannot read '\(path)': it ended after \(offset + done) bytes (changed while being read?)")
                }
                done += got
            }
        }

        /// `count` bytes at `offset`, checked against the memory available first.
        package func read(count: Int, at offset: Int) throws -> [UInt8] {
            if count >= 64 << 20 { try MemoryBudget.check(bytes: count, what: "reading '\(path)'") }
            var bytes = [UInt8](repeating: 0, count: count)
            if count > 0 { try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) } }
            return bytes
        }
    }

    package static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "not a plain file"
        }
    }

    package static func read(_ path: String) throws -> [UInt8] {
        let file = try OpenFile(path)
        defer { file.close() }
        return try file.read(count: file.size, at: 0)
    }

    /// Writes `chunks` one after another to `path` atomically.
    package static func writeAtomically(_ path: String, _ chunks: [UnsafeRawBufferPointer]) throws {
        try checkWritablePath(path)
        let tmp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // O_EXCL: never follow a link or reuse a file planted under the temporary name
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0, let f = fdopen(fd, "wb") else {
            let text = errnoText()
            throw MedSynthError.io("cannot write '\(path)': \(text)")
        }
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

    /// Refuses to replace anything but a regular file (or nothing): rename would silently replace
    /// a FIFO or socket, and fails late and unclearly on a directory.
    package static func checkWritablePath(_ path: String) throws {
        try checkPath(path)
        var st = stat()
        if lstat(path, &st) == 0 {
            let type = st.st_mode & S_IFMT
            guard type == S_IFREG || type == S_IFLNK else {
                throw MedSynthError.io("cannot write '\(path)': it is \(kind(st.st_mode)), not a regular file")
            }
        }
    }

    package static func exists(_ path: String) -> Bool { !path.utf8.contains(0) && access(path, F_OK) == 0 }

    /// A path the C library sees as it is: not empty, and without a NUL byte (which would end it
    /// early, so "model\0.safetensors" would silently become "model"). Paths reach the engine
    /// inside JSON options too, past the C boundary's own check.
    package static func checkPath(_ path: String) throws {
        try require(!path.isEmpty, "the path is empty")
        try require(!path.utf8.contains(0), "path contains a NUL byte: '\(path.split(separator: "\0", omittingEmptySubsequences: false).joined(separator: "\\0"))'")
    }
}
