// libFuzzer target: any bytes given to the JSON parser must parse or throw, never crash (deep
// nesting included); what parses must serialise to text that parses to the same value.
import MedSynthCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSON.parse(bytes: bytes) else { return 0 }
    guard let again = try? JSON.parse(value.serialized) else { preconditionFailure("serialised JSON did not parse: \(value.serialized)") }
    precondition(again == value, "round trip changed \(value.serialized)")
    return 0
}
