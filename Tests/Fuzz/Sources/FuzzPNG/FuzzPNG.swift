// libFuzzer target: any bytes given to the PNG decoder must decode or throw, never crash, hang or
// allocate beyond the pixel limit (libFuzzer's -malloc_limit_mb catches that).
import MedSynthCore

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    try? PNG.setMaxPixels(1 << 20)   // keep decoded images small so runs stay fast
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if let image = try? PNG.decode(UnsafeRawBufferPointer(start: data, count: size), name: "fuzz.png") {
        // what was decoded is consistent with its header
        precondition(image.samples.count == image.width * image.height * image.channels)
        precondition(image.bitDepth == 16 || image.samples.allSatisfy { $0 <= 255 })
    }
    return 0
}
