// Configurations and option sets declared once: each option is one line of a table that names its
// JSON key, documents it, and reads and writes it through a key path; its default is the value the
// type's `init()` gives the property. Parsing, serialising, rejecting unknown keys and describing
// the defaults to other languages (ms_registry) all come from that table, so a default lives in
// exactly one place.

/// One option of a configuration `Root`.
public struct Option<Root> {
    public let key: String
    public let doc: String
    package let read: (inout Root, JSON) throws -> Void
    package let write: (Root) -> JSON
    /// How the default is documented when it depends on other options ("auto"); nil: its value.
    public let shownDefault: JSON?

    public init(_ key: String, _ doc: String, read: @escaping (inout Root, JSON) throws -> Void,
                write: @escaping (Root) -> JSON, shownDefault: JSON? = nil) {
        self.key = key
        self.doc = doc
        self.read = read
        self.write = write
        self.shownDefault = shownDefault
    }

    /// The same option documented with `text` as its default (for defaults that depend on other
    /// options or on the data).
    public func shown(_ text: String) -> Option {
        Option(key, doc, read: read, write: write, shownDefault: .string(text))
    }

    /// The same option on a configuration that holds `Root` at `path` (a nested configuration
    /// whose keys sit at the top level of the outer one's JSON).
    public func lifted<Outer>(_ path: WritableKeyPath<Outer, Root>) -> Option<Outer> {
        let (read, write) = (self.read, self.write)
        return Option<Outer>(key, doc, read: { outer, value in try read(&outer[keyPath: path], value) },
                             write: { outer in write(outer[keyPath: path]) }, shownDefault: shownDefault)
    }
}

// MARK: - option kinds

extension Option {
    private static func typed<T>(_ key: String, _ doc: String, _ path: WritableKeyPath<Root, T>, kind: String,
                                 _ decode: @escaping (JSON) -> T?, _ encode: @escaping (T) -> JSON) -> Option {
        Option(key, doc, read: { root, value in
            guard let v = decode(value) else { throw MedSynthError.invalidArgument("'\(key)' must be \(kind)") }
            root[keyPath: path] = v
        }, write: { encode($0[keyPath: path]) })
    }

    /// An optional value: JSON null (or leaving the key out) keeps nil, "not set".
    private static func optional<T>(_ key: String, _ doc: String, _ path: WritableKeyPath<Root, T?>, kind: String,
                                    _ decode: @escaping (JSON) -> T?, _ encode: @escaping (T) -> JSON) -> Option {
        Option(key, doc, read: { root, value in
            if value == .null { root[keyPath: path] = nil; return }
            guard let v = decode(value) else { throw MedSynthError.invalidArgument("'\(key)' must be \(kind) or null") }
            root[keyPath: path] = v
        }, write: { $0[keyPath: path].map(encode) ?? .null })
    }

    /// A Float as the Double of its shortest decimal form (0.001, not 0.0010000000474974513), so
    /// resolved configurations and docstrings show the value the user wrote; it reads back to the
    /// same Float.
    static func decimal(_ value: Float) -> Double {
        Double(value.description) ?? Double(value)
    }

    public static func int(_ key: String, _ path: WritableKeyPath<Root, Int>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "an integer", { $0.int }, { .number(Double($0)) })
    }

    public static func int(_ key: String, _ path: WritableKeyPath<Root, Int?>, _ doc: String) -> Option {
        optional(key, doc, path, kind: "an integer", { $0.int }, { .number(Double($0)) })
    }

    public static func double(_ key: String, _ path: WritableKeyPath<Root, Double>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a number", { $0.double }, { .number($0) })
    }

    public static func double(_ key: String, _ path: WritableKeyPath<Root, Double?>, _ doc: String) -> Option {
        optional(key, doc, path, kind: "a number", { $0.double }, { .number($0) })
    }

    public static func float(_ key: String, _ path: WritableKeyPath<Root, Float>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a number", { $0.double.map(Float.init) }, { .number(decimal($0)) })
    }

    public static func float(_ key: String, _ path: WritableKeyPath<Root, Float?>, _ doc: String) -> Option {
        optional(key, doc, path, kind: "a number", { $0.double.map(Float.init) }, { .number(decimal($0)) })
    }

    public static func bool(_ key: String, _ path: WritableKeyPath<Root, Bool>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "true or false", { $0.bool }, { .bool($0) })
    }

    public static func string(_ key: String, _ path: WritableKeyPath<Root, String>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a string", { $0.string }, { .string($0) })
    }

    public static func string(_ key: String, _ path: WritableKeyPath<Root, String?>, _ doc: String) -> Option {
        optional(key, doc, path, kind: "a string", { $0.string }, { .string($0) })
    }

    /// A random seed: an integer in [0, 2^53] (JSON numbers hold integers exactly up to 2^53).
    public static func seed(_ key: String, _ path: WritableKeyPath<Root, UInt64>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a non-negative integer", { v in v.int.flatMap { $0 >= 0 ? UInt64($0) : nil } },
              { .number(Double($0)) })
    }

    /// One of the cases of a string enumeration; the message lists them.
    public static func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ path: WritableKeyPath<Root, E>,
                                                                  _ doc: String) -> Option where E.RawValue == String {
        let names = E.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return typed(key, doc, path, kind: "one of \(names)", { $0.string.flatMap(E.init(rawValue:)) }, { .string($0.rawValue) })
    }

    /// One of the cases of a string enumeration, or null for "not set" (a default that depends on
    /// other options).
    public static func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ path: WritableKeyPath<Root, E?>,
                                                                  _ doc: String) -> Option where E.RawValue == String {
        let names = E.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return optional(key, doc, path, kind: "one of \(names)", { $0.string.flatMap(E.init(rawValue:)) }, { .string($0.rawValue) })
    }

    public static func ints(_ key: String, _ path: WritableKeyPath<Root, [Int]>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a list of integers", JSON.integers, { .array($0.map { .number(Double($0)) }) })
    }

    public static func ints(_ key: String, _ path: WritableKeyPath<Root, [Int]?>, _ doc: String) -> Option {
        optional(key, doc, path, kind: "a list of integers", JSON.integers, { .array($0.map { .number(Double($0)) }) })
    }

    public static func floats(_ key: String, _ path: WritableKeyPath<Root, [Float]?>, _ doc: String) -> Option {
        optional(key, doc, path, kind: "a list of numbers", { JSON.numbers($0)?.map(Float.init) },
                 { .array($0.map { .number(decimal($0)) }) })
    }

    public static func floats(_ key: String, _ path: WritableKeyPath<Root, [Float]>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a list of numbers", { JSON.numbers($0)?.map(Float.init) },
              { .array($0.map { .number(decimal($0)) }) })
    }

    public static func strings(_ key: String, _ path: WritableKeyPath<Root, [String]>, _ doc: String) -> Option {
        typed(key, doc, path, kind: "a list of strings", { v in
            guard let a = v.array else { return nil }
            let s = a.compactMap { $0.string }
            return s.count == a.count ? s : nil
        }, { .array($0.map { .string($0) }) })
    }
}

extension JSON {
    package static func integers(_ v: JSON) -> [Int]? {
        guard let a = v.array else { return nil }
        let ints = a.compactMap { $0.int }
        return ints.count == a.count ? ints : nil
    }

    package static func numbers(_ v: JSON) -> [Double]? {
        guard let a = v.array else { return nil }
        let xs = a.compactMap { $0.double }
        return xs.count == a.count ? xs : nil
    }
}

// MARK: - configurations built from a table

/// A configuration or option set declared by a table of options; `init()` holds the defaults.
public protocol Configurable {
    init()
    /// Every option, in the order they are documented and serialised.
    static var options: [Option<Self>] { get }
    /// What this configuration is called in messages ("diffusion training options").
    static var name: String { get }
    /// Fills defaults that depend on other options (class names from the class count); called
    /// after parsing, before validating.
    mutating func resolve()
    /// Checks ranges and consistency after parsing; the message names the option.
    func validate() throws
}

extension Configurable {
    public mutating func resolve() {}

    /// Parses `json` over the defaults: unknown keys are errors, a key given as null keeps an
    /// optional option unset, and the result is resolved and validated.
    public init(json: JSON) throws {
        self.init()
        try apply(json)
        resolve()
        try validate()
    }

    /// Reads the keys `json` holds into this configuration (without validating).
    public mutating func apply(_ json: JSON) throws {
        guard let pairs = json.object else { throw MedSynthError.invalidArgument("\(Self.name) must be a JSON object") }
        let table = Self.options
        for (key, value) in pairs {
            guard let option = table.first(where: { $0.key == key }) else {
                throw MedSynthError.invalidArgument(
                    "unknown \(Self.name) option '\(key)'; known: \(table.map { $0.key }.joined(separator: ", "))")
            }
            try option.read(&self, value)
        }
    }

    /// Every option with its resolved value.
    public var json: JSON { .object(Self.options.map { ($0.key, $0.write(self)) }) }

    /// The table as data: each option's key, default and documentation (for ms_registry).
    public static var documentation: JSON {
        let defaults = Self()
        return .array(options.map { o in
            .object([("key", .string(o.key)), ("default", o.shownDefault ?? o.write(defaults)), ("doc", .string(o.doc))])
        })
    }
}
