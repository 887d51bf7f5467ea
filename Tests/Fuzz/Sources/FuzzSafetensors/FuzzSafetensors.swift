// libFuzzer target: any bytes given to the safetensors parser must parse or throw, never crash.
// What parses must hold the format's invariants and survive a write/parse round trip.
import MedSynthCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? SafetensorsFile.parse(bytes) else { return 0 }
    var total = 0
    for e in file.entries {
        precondition(e.bytes.count == e.shape.reduce(1, *) * e.dtype.size)
        total += e.bytes.count
    }
    precondition(total <= size)
    // re-serialised, it parses to the same tensors
    guard let again = try? SafetensorsFile.parse(try! file.serialized(integrity: false)) else {
        preconditionFailure("a parsed file did not survive a round trip")
    }
    precondition(again.entries.count == file.entries.count)
    for e in again.entries { precondition(file[e.name]?.bytes == e.bytes && file[e.name]?.shape == e.shape) }
    return 0
}
