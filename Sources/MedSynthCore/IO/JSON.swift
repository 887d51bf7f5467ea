// A small JSON reader and writer (RFC 8259) for configurations, checkpoint metadata and
// safetensors headers: the engine is Foundation-free, so it cannot use JSONSerialization.
// Objects keep their key order, so written files read the way they were built.

public indirect enum JSON: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSON? {
        if case .object(let pairs) = self { return pairs.first(where: { $0.0 == key })?.1 }
        return nil
    }

    public var double: Double? { if case .number(let v) = self { return v }; return nil }
    public var int: Int? {
        if case .number(let v) = self, v == v.rounded(), abs(v) <= 9_007_199_254_740_992 { return Int(v) }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [(String, JSON)]? { if case .object(let o) = self { return o }; return nil }

    // MARK: - writing

    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    package func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let v):
            if !v.isFinite { out += "null" }
            else if v == v.rounded() && abs(v) < 1e15 { out += String(Int64(v)) }
            else { out += "\(v)" }
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() { if i > 0 { out += "," }; item.write(to: &out) }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += "," }
                JSON.writeString(k, to: &out); out += ":"; v.write(to: &out)
            }
            out += "}"
        }
    }

    package static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }

    // MARK: - reading

    /// Parses `text`; throws `.invalidArgument` with the byte offset of the first error and, when
    /// given, `source` (what the text is: "options", "the config metadata of 'model.safetensors'").
    public static func parse(_ text: String, source: String? = nil) throws -> JSON {
        var parser = Parser(bytes: Array(text.utf8), source: source)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.pos == parser.bytes.count else { throw parser.fail("unexpected trailing characters") }
        return value
    }

    public static func parse(bytes: [UInt8], source: String? = nil) throws -> JSON {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MedSynthError.invalidArgument("\(source.map { "\($0) is not valid JSON: " } ?? "JSON is ")not valid UTF-8")
        }
        return try parse(text, source: source)
    }

    package struct Parser {
        package let bytes: [UInt8]
        package var pos = 0
        package var source: String? = nil

        package init(bytes: [UInt8], source: String? = nil) {
            self.bytes = bytes
            self.source = source
        }

        package func fail(_ message: String) -> MedSynthError {
            MedSynthError.invalidArgument("\(source.map { "\($0): " } ?? "")invalid JSON at byte \(pos): \(message)")
        }

        package mutating func skipSpace() {
            while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
        }

        package mutating func value(depth: Int) throws -> JSON {
            guard depth < 128 else { throw fail("nesting deeper than 128") }
            skipSpace()
            guard pos < bytes.count else { throw fail("unexpected end") }
            switch bytes[pos] {
            case UInt8(ascii: "{"):
                pos += 1
                var pairs: [(String, JSON)] = []
                skipSpace()
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
                while true {
                    skipSpace()
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string()
                    skipSpace()
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    pos += 1
                    pairs.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard pos < bytes.count else { throw fail("unexpected end in object") }
                    if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                    if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                pos += 1
                var items: [JSON] = []
                skipSpace()
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard pos < bytes.count else { throw fail("unexpected end in array") }
                    if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                    if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        package mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else { throw fail("unknown literal") }
            pos += w.count
        }

        /// RFC 8259: [ "-" ] ( "0" / [1-9] *DIGIT ) [ "." 1*DIGIT ] [ ("e" / "E") [ "+" / "-" ] 1*DIGIT ],
        /// finite as a double. Leading "+", leading zeros, ".5" and "1." are not JSON.
        package mutating func number() throws -> Double {
            let start = pos
            func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
            func digits() throws {
                guard isDigit(pos) else { throw fail("invalid number") }
                while isDigit(pos) { pos += 1 }
            }
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "0") {
                pos += 1
                guard !isDigit(pos) else { throw fail("invalid number (leading zero)") }
            } else {
                try digits()
            }
            if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") { pos += 1; try digits() }
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
                pos += 1
                if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
                try digits()
            }
            guard let text = String(validating: bytes[start..<pos], as: UTF8.self), let v = Double(text) else {
                throw fail("invalid number")
            }
            guard v.isFinite else { pos = start; throw fail("number out of range") }
            return v
        }

        package mutating func hex4() throws -> UInt32 {
            guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[pos]; pos += 1
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("invalid \\u escape")
                }
                v = v * 16 + d
            }
            return v
        }

        package mutating func string() throws -> String {
            pos += 1   // opening quote
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []
            func flush() throws {
                if run.isEmpty { return }
                guard let s = String(validating: run, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                scalars.append(contentsOf: s.unicodeScalars)
                run.removeAll(keepingCapacity: true)
            }
            while true {
                guard pos < bytes.count else { throw fail("unterminated string") }
                let c = bytes[pos]
                if c == UInt8(ascii: "\"") { pos += 1; try flush(); return String(scalars) }
                if c < 0x20 { throw fail("control character in string") }
                if c != UInt8(ascii: "\\") { run.append(c); pos += 1; continue }
                try flush()
                pos += 1
                guard pos < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[pos]; pos += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if code >= 0xD800 && code < 0xDC00 {
                        guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate")
                        }
                        pos += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw fail("unpaired surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(code) else { throw fail("invalid code point") }
                    scalars.append(u)
                default: throw fail("invalid escape")
                }
            }
        }
    }
}

// MARK: - typed access for configurations

extension JSON {
    /// Reads an optional field of an object, throwing a message that names the key when the kind
    /// is wrong.
    package func field<T>(_ key: String, _ convert: (JSON) -> T?, kind: String) throws -> T? {
        guard let v = self[key], v != .null else { return nil }
        guard let t = convert(v) else { throw MedSynthError.invalidArgument("'\(key)' must be \(kind)") }
        return t
    }
    public func int(_ key: String) throws -> Int? { try field(key, { $0.int }, kind: "an integer") }
    public func double(_ key: String) throws -> Double? { try field(key, { $0.double }, kind: "a number") }
    /// A random seed: a non-negative integer.
    public func seed(_ key: String = "seed") throws -> UInt64? {
        guard let v = try int(key) else { return nil }
        try require(v >= 0, "'\(key)' must be a non-negative integer, got \(v)")
        return UInt64(v)
    }
    public func string(_ key: String) throws -> String? { try field(key, { $0.string }, kind: "a string") }
    public func bool(_ key: String) throws -> Bool? { try field(key, { $0.bool }, kind: "true or false") }
    public func intArray(_ key: String) throws -> [Int]? {
        try field(key, { v in
            guard let a = v.array else { return nil }
            let ints = a.compactMap { $0.int }
            return ints.count == a.count ? ints : nil
        }, kind: "a list of integers")
    }
    public func doubleArray(_ key: String) throws -> [Double]? {
        try field(key, { v in
            guard let a = v.array else { return nil }
            let xs = a.compactMap { $0.double }
            return xs.count == a.count ? xs : nil
        }, kind: "a list of numbers")
    }

    /// Throws when the object has keys outside `known`, so a misspelt option is an error, not a
    /// silent default.
    public func rejectUnknownKeys(_ known: Set<String>, in what: String) throws {
        guard let pairs = object else { throw MedSynthError.invalidArgument("\(what) must be a JSON object") }
        let unknown = pairs.map { $0.0 }.filter { !known.contains($0) }
        if !unknown.isEmpty {
            throw MedSynthError.invalidArgument(
                "unknown \(what) option(s): \(unknown.joined(separator: ", ")); known: \(known.sorted().joined(separator: ", "))")
        }
    }
}
