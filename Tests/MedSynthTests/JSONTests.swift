// JSON reader and writer (IO/JSON.swift): RFC 8259 round trips, exact serialised text, every
// malformed input rejected with .invalidArgument, typed accessors and unknown-key rejection.

import Testing
@testable import MedSynth
@testable import MedSynthCore

@Suite struct JSONTests {
    // MARK: - round trips and exact text

    @Test func nestedValueSerialisesToExactTextAndBack() throws {
        let value = JSON.object([
            ("b", .array([.number(1), .number(-2.5), .null, .bool(true), .bool(false)])),
            ("a", .object([("x", .string("y")), ("empty", .object([])), ("list", .array([]))])),
        ])
        // compact, no spaces, keys in insertion order ("b" before "a")
        let text = #"{"b":[1,-2.5,null,true,false],"a":{"x":"y","empty":{},"list":[]}}"#
        #expect(value.serialized == text)
        #expect(try JSON.parse(text) == value)
        #expect(try JSON.parse(value.serialized).serialized == text)
    }

    @Test func keyOrderIsPreserved() throws {
        let text = #"{"zeta":1,"alpha":2,"mid":3,"beta":4}"#
        let parsed = try JSON.parse(text)
        #expect(parsed.object?.map { $0.0 } == ["zeta", "alpha", "mid", "beta"])
        #expect(parsed.serialized == text)
        // order matters for equality (it is what a written file will look like)
        #expect(parsed != (try JSON.parse(#"{"alpha":2,"zeta":1,"mid":3,"beta":4}"#)))
    }

    @Test func whitespaceIsSkippedEverywhereAllowed() throws {
        let parsed = try JSON.parse(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] , \"b\" : { } }\n ")
        #expect(parsed == .object([("a", .array([.number(1), .number(2)])), ("b", .object([]))]))
    }

    @Test func unicodeRoundTripsAsRawUTF8() throws {
        let s = "héllo ✓ 😀 日本"
        let value = JSON.string(s)
        // non-ASCII is written as UTF-8, not escaped
        #expect(value.serialized == "\"héllo ✓ 😀 日本\"")
        #expect(try JSON.parse(value.serialized) == value)
        #expect(try JSON.parse(bytes: Array(value.serialized.utf8)) == value)
    }

    @Test func escapesAreDecoded() throws {
        // \" \\ \/ \b \f \n \r \t
        let parsed = try JSON.parse(#""\"\\\/\b\f\n\r\t""#)
        #expect(parsed == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        // \u escapes: é = U+00E9, A = U+0041 (upper- and lower-case hex digits)
        #expect(try JSON.parse(#""\u00e9\u00E9\u0041""#) == .string("ééA"))
        // surrogate pair: U+1F600 − 0x10000 = 0xF600; high = 0xD800 + (0xF600 >> 10) = 0xD83D,
        // low = 0xDC00 + (0xF600 & 0x3FF) = 0xDE00
        #expect(try JSON.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSON.parse(#""a\uD83D\uDE00b""#) == .string("a😀b"))
        // U+10FFFF, the last code point: high 0xDBFF, low 0xDFFF
        #expect(try JSON.parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
    }

    @Test func controlCharactersAreEscapedWhenWritten() throws {
        let s = "q\"b\\n\nr\rt\tx\u{01}\u{08}\u{1F}/"
        let text = JSON.string(s).serialized
        // \n \r \t get short escapes, other controls \u00XX (lower-case hex, 4 digits); / is not escaped
        #expect(text == #""q\"b\\n\nr\rt\tx\u0001\u0008\u001f/""#)
        #expect(try JSON.parse(text) == .string(s))
    }

    @Test func numbersParse() throws {
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", 0), ("7", 7), ("-12", -12), ("3.25", 3.25), ("-0.5", -0.5),
            ("1e3", 1000), ("1E3", 1000), ("1e+2", 100), ("2.5e-3", 0.0025), ("-2.5E-2", -0.025),
            ("0e0", 0), ("1.5e300", 1.5e300), ("5e-324", .leastNonzeroMagnitude),
            // a large integer: exact up to 2^53
            ("9007199254740992", 9_007_199_254_740_992),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ]
        for (text, expected) in cases {
            #expect(try JSON.parse(text).double == expected, "\(text)")
            #expect(try JSON.parse("[\(text)]") == .array([.number(expected)]), "\(text)")
        }
    }

    @Test func numbersSerialiseAndRoundTripExactly() throws {
        // integers below 1e15 are written without a fraction or exponent
        #expect(JSON.number(0).serialized == "0")
        #expect(JSON.number(-42).serialized == "-42")
        #expect(JSON.number(999_999_999_999_999).serialized == "999999999999999")
        #expect(JSON.number(2.5).serialized == "2.5")
        #expect(JSON.number(0.1).serialized == "0.1")
        // non-finite numbers have no JSON form: written as null
        #expect(JSON.number(.nan).serialized == "null")
        #expect(JSON.number(.infinity).serialized == "null")
        // every finite double reads back bit for bit (shortest round-trip text)
        let values: [Double] = [0.1 + 0.2, 1e15, -1e15, 0x1p53 + 2, 1e-7, .leastNonzeroMagnitude, .leastNormalMagnitude,
                                .greatestFiniteMagnitude, -123.456, 1.0 / 3.0, 1e22, 0x1p63 * 1.5]
        for v in values {
            let back = try JSON.parse(JSON.number(v).serialized).double
            #expect(back?.bitPattern == v.bitPattern, "\(v) → \(JSON.number(v).serialized) → \(String(describing: back))")
        }
    }

    // MARK: - malformed input

    @Test func malformedInputIsRejected() {
        let bad: [(String, String)] = [
            ("", "unexpected end"),
            ("   ", "unexpected end"),
            ("{} x", "trailing"),
            ("1 2", "trailing"),
            ("[1] ]", "trailing"),
            ("\"abc", "unterminated string"),
            ("[\"abc", "unterminated string"),
            ("\"abc\\", "unterminated escape"),
            (#""\x""#, "invalid escape"),
            (#""\a""#, "invalid escape"),
            (#""\u12G4""#, "invalid \\u escape"),
            (#""\u12""#, "\\u escape"),
            (#""\ud83d""#, "unpaired surrogate"),
            (#""\ud83dx""#, "unpaired surrogate"),
            (#""\ud83d\u0041""#, "unpaired surrogate"),
            (#""\udc00""#, "invalid code point"),
            ("\"a\nb\"", "control character"),
            ("\"a\u{01}b\"", "control character"),
            ("[1,]", ""), ("[,1]", ""), ("[1 2]", "expected ',' or ']'"), ("[", "unexpected end"),
            ("{\"a\"}", "expected ':'"), ("{\"a\":1,}", "expected a key"), ("{1:2}", "expected a key"),
            ("{\"a\":1 \"b\":2}", "expected ',' or '}'"), ("{\"a\":1", "unexpected end in object"),
            ("{'a':1}", "expected a key"),
            ("tru", "unknown literal"), ("nul", "unknown literal"), ("True", "invalid number"), ("falsey", "trailing"),
            ("NaN", "invalid number"), ("-Infinity", "invalid number"), ("0x10", "trailing"),
            ("1.2.3", "trailing"), ("1e3e3", "trailing"), ("1-2", "trailing"),
        ]
        for (text, fragment) in bad {
            expectInvalidArgument("invalid JSON at byte", fragment) { _ = try JSON.parse(text) }
        }
    }

    @Test func numbersOutsideTheGrammarAreRejected() {
        // RFC 8259: number = [ "-" ] ( "0" / digit1-9 *DIGIT ) [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "-" / "+" ] 1*DIGIT ]
        for text in ["+1", "01", "-01", "00", ".5", "-.5", "1.", "1.e3", "1e", "1e+", "-", "--1", "- 1",
                     "1e400", "-1e400"] {
            #expect((try? JSON.parse(text)) == nil, "'\(text)' was accepted")
            expectInvalidArgument("invalid JSON at byte", "number") { _ = try JSON.parse(text) }
        }
        // a double overflow is not silently infinity (which would serialise as null)
        expectInvalidArgument("at byte 1", "number out of range") { _ = try JSON.parse("[1e400]") }
        expectInvalidArgument("leading zero") { _ = try JSON.parse("[007]") }
    }

    @Test func errorsReportTheByteOffset() {
        // "[1,2,x]": the bad value starts at byte 5
        expectInvalidArgument("at byte 5") { _ = try JSON.parse("[1,2,x]") }
        // trailing garbage after "{}" (two bytes and a space) is found at byte 3
        expectInvalidArgument("at byte 3") { _ = try JSON.parse("{} x") }
    }

    @Test func nestingIsLimitedTo128Levels() throws {
        // 128 nested arrays: depths 0 ... 127, accepted
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        var value = try JSON.parse(ok)
        var depth = 0
        while case .array(let items) = value, let first = items.first { value = first; depth += 1 }
        #expect(depth == 127)
        // 129 levels are rejected, for arrays and objects alike, without exhausting the stack
        let deepArray = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        expectInvalidArgument("nesting deeper than 128") { _ = try JSON.parse(deepArray) }
        let deepObject = String(repeating: "{\"a\":", count: 129) + "1" + String(repeating: "}", count: 129)
        expectInvalidArgument("nesting deeper than 128") { _ = try JSON.parse(deepObject) }
        let hostile = String(repeating: "[", count: 100_000)
        expectInvalidArgument("nesting deeper than 128") { _ = try JSON.parse(hostile) }
    }

    @Test func invalidUTF8IsRejected() throws {
        // 0xFF never occurs in UTF-8; 0xC3 starts a 2-byte sequence that is cut short; an overlong
        // encoding of "/" (0xC0 0xAF); a UTF-16 surrogate encoded in UTF-8 (0xED 0xA0 0x80)
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
                               [0x7B, 0x7D, 0x80]] {
            expectInvalidArgument("UTF-8") { _ = try JSON.parse(bytes: bytes) }
        }
        #expect(try JSON.parse(bytes: [0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    // MARK: - typed access

    @Test func typedAccessors() throws {
        let json = try JSON.parse(#"{"i":3,"f":3.5,"big":9007199254740992,"huge":9007199254740994,"s":"x","b":true,"n":null,"#
                                  + #""ints":[1,2,3],"mixed":[1,"x"],"floats":[0.5,-1,2e2],"obj":{"k":1}}"#)
        #expect(try json.int("i") == 3)
        #expect(try json.double("i") == 3)
        #expect(try json.double("f") == 3.5)
        #expect(try json.int("big") == 9_007_199_254_740_992)
        #expect(try json.string("s") == "x")
        #expect(try json.bool("b") == true)
        #expect(try json.intArray("ints") == [1, 2, 3])
        #expect(try json.doubleArray("floats") == [0.5, -1, 200])
        #expect(try json.doubleArray("ints") == [1, 2, 3])
        // missing and null fields are absent, not errors
        #expect(try json.int("missing") == nil)
        #expect(try json.int("n") == nil)
        #expect(try json.string("n") == nil)
        // wrong kinds throw naming the key
        expectInvalidArgument("'f' must be an integer") { _ = try json.int("f") }
        expectInvalidArgument("'huge' must be an integer") { _ = try json.int("huge") }   // beyond 2^53: not exact
        expectInvalidArgument("'s' must be a number") { _ = try json.double("s") }
        expectInvalidArgument("'i' must be a string") { _ = try json.string("i") }
        expectInvalidArgument("'i' must be true or false") { _ = try json.bool("i") }
        expectInvalidArgument("'mixed' must be a list of integers") { _ = try json.intArray("mixed") }
        expectInvalidArgument("'floats' must be a list of integers") { _ = try json.intArray("floats") }
        expectInvalidArgument("'mixed' must be a list of numbers") { _ = try json.doubleArray("mixed") }
        expectInvalidArgument("'obj' must be a list of numbers") { _ = try json.doubleArray("obj") }
        // value accessors
        #expect(json["obj"]?["k"]?.int == 1)
        #expect(JSON.number(-3).int == -3)
        #expect(JSON.number(1e300).int == nil)
        #expect(JSON.number(.nan).int == nil)
        #expect(JSON.string("3").int == nil)
        #expect(JSON.array([.null])["k"] == nil)
        #expect(JSON.null.object == nil && JSON.null.array == nil && JSON.null.bool == nil)
        // the first of duplicate keys wins for lookups (both are kept, in order)
        let dup = try JSON.parse(#"{"a":1,"a":2}"#)
        #expect(dup["a"] == .number(1))
        #expect(dup.object?.count == 2)
    }

    @Test func rejectUnknownKeys() throws {
        let json = try JSON.parse(#"{"epochs":3,"lr":0.1}"#)
        try json.rejectUnknownKeys(["epochs", "lr", "seed"], in: "training")
        try JSON.object([]).rejectUnknownKeys([], in: "training")
        // a misspelt option names itself and lists the known ones, sorted
        let typo = try JSON.parse(#"{"epochs":3,"lrate":0.1,"sed":1}"#)
        expectInvalidArgument("unknown training option(s): lrate, sed", "known: epochs, lr, seed") {
            try typo.rejectUnknownKeys(["seed", "lr", "epochs"], in: "training")
        }
        expectInvalidArgument("training must be a JSON object") { try JSON.array([]).rejectUnknownKeys([], in: "training") }
    }
}
