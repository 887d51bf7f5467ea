// C ABI of the phantom data sets and of image resizing.

import MedSynth
import MedSynthCore

import CMedSynth

@c @implementation
public func ms_make_phantom(_ domain: UnsafePointer<CChar>?, _ counts: UnsafePointer<Int64>?, _ numClasses: Int32, _ size: Int32,
                            _ seed: UInt64, _ channelsLast: Int32, _ images: UnsafeMutablePointer<Float>?, _ imagesCount: Int64,
                            _ labels: UnsafeMutablePointer<Int64>?, _ labelsCount: Int64,
                            _ masks: UnsafeMutablePointer<UInt8>?, _ masksCount: Int64, _ run: UnsafePointer<ms_run>?,
                            _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let name = try CAPI.string(domain, "domain")
        guard let kind = PhantomDomain(rawValue: name) else {
            throw MedSynthError.invalidArgument(
                "unknown phantom domain '\(name)'; choose one of: \(PhantomDomain.allCases.map { $0.rawValue }.joined(separator: ", "))")
        }
        try require(Int(numClasses) == kind.classNames.count,
                    "\(name) has \(kind.classNames.count) classes, num_classes is \(numClasses)")
        let counts = try CAPI.pointer(counts, "counts")
        let perClass = (0..<Int(numClasses)).map { counts[$0] }
        try require(perClass.allSatisfy { $0 >= 0 && $0 <= Int64(Phantoms.maxPerClass) },
                    "images per class must be between 0 and \(Phantoms.maxPerClass)")
        try require(Phantoms.sizeRange.contains(Int(size)),
                    "size must be between \(Phantoms.sizeRange.lowerBound) and \(Phantoms.sizeRange.upperBound), got \(size)")
        let n = perClass.reduce(0, +)
        try require(n >= 1, "ask for at least one image")
        let plane = Int64(size) * Int64(size)
        try require(imagesCount == n * Int64(kind.channels) * plane,
                    "images must hold \(n)x\(kind.channels)x\(size)x\(size) values, got \(imagesCount)")
        try require(labelsCount == n, "labels must hold \(n) values, got \(labelsCount)")
        if masks != nil { try require(masksCount == n * plane, "masks must hold \(n)x\(size)x\(size) values, got \(masksCount)") }
        let context = RunContext(run)
        try Phantoms.generate(kind, counts: perClass.map { Int($0) }, size: Int(size), seed: seed, channelsLast: channelsLast != 0,
                              images: try CAPI.pointer(images, "images"), labels: try CAPI.pointer(labels, "labels"),
                              masks: masks, progress: context.progress)
    }
}

@c @implementation
public func ms_resize(_ x: UnsafePointer<Float>?, _ n: Int64, _ h: Int64, _ w: Int64, _ c: Int64, _ outH: Int64, _ outW: Int64,
                      _ y: UnsafeMutablePointer<Float>?, _ yCount: Int64,
                      _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        _ = try CAPI.batchValueCount(n, c, h, w)
        _ = try CAPI.batchValueCount(n, c, outH, outW)
        try require(yCount == n * outH * outW * c, "y must hold \(n)x\(outH)x\(outW)x\(c) values, got \(yCount)")
        ResizeKernel.bilinear(try CAPI.pointer(x, "x"), n: Int(n), h: Int(h), w: Int(w), c: Int(c), outH: Int(outH), outW: Int(outW),
                              y: try CAPI.pointer(y, "y"))
    }
}
