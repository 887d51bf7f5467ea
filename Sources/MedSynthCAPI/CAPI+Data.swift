// C ABI of data generation, PNG files and functional operations.

import MedSynth
import MedSynthCore

import CMedSynth

@c @implementation
public func ms_make_shapes(_ nPerClass: Int64, _ numClasses: Int32, _ size: Int32, _ channels: Int32, _ seed: UInt64,
                           _ images: UnsafeMutablePointer<Float>?, _ imagesCount: Int64,
                           _ labels: UnsafeMutablePointer<Int64>?, _ labelsCount: Int64,
                           _ masks: UnsafeMutablePointer<UInt8>?, _ masksCount: Int64,
                           _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        try require(nPerClass >= 1 && nPerClass <= 1_000_000, "n_per_class must be between 1 and 1000000")
        try require(numClasses >= 2 && numClasses <= 8 && size >= 8 && size <= 1024 && (channels == 1 || channels == 3),
                    "need 2 to 8 classes, size 8 to 1024 and 1 or 3 channels")
        let total = nPerClass * Int64(numClasses)
        try require(imagesCount == total * Int64(channels) * Int64(size) * Int64(size) && labelsCount == total,
                    "output buffers have the wrong size")
        if masks != nil { try require(masksCount == total * Int64(size) * Int64(size), "masks must hold n x size x size values") }
        try ShapesDataset.generate(nPerClass: Int(nPerClass), numClasses: Int(numClasses), size: Int(size), channels: Int(channels),
                                   seed: seed, images: try CAPI.pointer(images, "images"), labels: try CAPI.pointer(labels, "labels"),
                                   masks: masks)
    }
}

@c @implementation
public func ms_png_probe(_ path: UnsafePointer<CChar>?, _ width: UnsafeMutablePointer<Int64>?, _ height: UnsafeMutablePointer<Int64>?,
                         _ channels: UnsafeMutablePointer<Int32>?, _ bitDepth: UnsafeMutablePointer<Int32>?,
                         _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let info = try PNG.probe(try CAPI.string(path, "path"))
        width?.pointee = Int64(info.width)
        height?.pointee = Int64(info.height)
        channels?.pointee = Int32(info.channels)
        bitDepth?.pointee = Int32(info.bitDepth)
    }
}

@c @implementation
public func ms_png_read(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutableRawPointer?, _ outBytes: Int,
                        _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let path = try CAPI.string(path, "path")
        guard let out else { throw MedSynthError.invalidArgument("out must not be NULL") }
        try require(outBytes >= 0, "out_bytes must not be negative")
        // decoded straight into the caller's buffer: no copy, no engine allocation of its size
        _ = try PNG.read(path, into: UnsafeMutableRawBufferPointer(start: out, count: outBytes))
    }
}

@c @implementation
public func ms_png_write(_ path: UnsafePointer<CChar>?, _ samples: UnsafeRawPointer?, _ width: Int64, _ height: Int64,
                         _ channels: Int32, _ bitDepth: Int32, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let path = try CAPI.string(path, "path")
        guard let samples else { throw MedSynthError.invalidArgument("samples must not be NULL") }
        try require(width >= 1 && height >= 1 && width <= 1 << 16 && height <= 1 << 16, "PNG size must be 1 to 65536 pixels per side")
        try require((1...4).contains(channels), "PNG images have 1 to 4 channels")
        try require(bitDepth == 8 || bitDepth == 16, "PNG bit depth must be 8 or 16")
        let bytes = Int(width * height) * Int(channels) * Int(bitDepth / 8)
        try PNG.write(samples: UnsafeRawBufferPointer(start: samples, count: bytes), width: Int(width), height: Int(height),
                      channels: Int(channels), bitDepth: Int(bitDepth), to: path)
    }
}

@c @implementation
public func ms_set_max_image_pixels(_ n: Int64, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) { try PNG.setMaxPixels(Int(n)) }
}

@c @implementation
public func ms_get_max_image_pixels(_ n: UnsafeMutablePointer<Int64>?, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let value = try PNG.maxPixels()
        n?.pointee = Int64(value)
    }
}

extension CAPI {
    static func convGeometry(_ n: Int64, _ cin: Int64, _ h: Int64, _ w: Int64, _ cout: Int64, _ kh: Int64, _ kw: Int64,
                             _ stride: Int64, _ padding: Int64, _ dilation: Int64, _ groups: Int64) throws -> ConvGeometry {
        _ = try batchValueCount(n, cin, h, w)
        for (v, name) in [(cout, "cout"), (kh, "kh"), (kw, "kw"), (stride, "stride"), (dilation, "dilation"), (groups, "groups")] {
            try require(v >= 1 && v <= 1 << 16, "\(name) must be between 1 and 65536, got \(v)")
        }
        try require(padding >= 0 && padding <= 1 << 16, "padding must be between 0 and 65536")
        let g = ConvGeometry(batch: Int(n), inChannels: Int(cin), height: Int(h), width: Int(w), outChannels: Int(cout),
                             kernelH: Int(kh), kernelW: Int(kw), strideH: Int(stride), strideW: Int(stride),
                             padH: Int(padding), padW: Int(padding), dilationH: Int(dilation), dilationW: Int(dilation), groups: Int(groups))
        try g.validate()
        return g
    }
}

@c @implementation
public func ms_conv2d_forward(_ x: UnsafePointer<Float>?, _ n: Int64, _ cin: Int64, _ h: Int64, _ w: Int64,
                              _ weight: UnsafePointer<Float>?, _ cout: Int64, _ kh: Int64, _ kw: Int64,
                              _ bias: UnsafePointer<Float>?, _ stride: Int64, _ padding: Int64, _ dilation: Int64,
                              _ groups: Int64, _ y: UnsafeMutablePointer<Float>?, _ yCount: Int64,
                              _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let g = try CAPI.convGeometry(n, cin, h, w, cout, kh, kw, stride, padding, dilation, groups)
        try require(yCount == Int64(g.batch * g.outChannels * g.outPlane), "y must hold \(g.batch)x\(g.outChannels)x\(g.outHeight)x\(g.outWidth) values")
        try ConvKernel.forward(g, x: try CAPI.pointer(x, "x"), weight: try CAPI.pointer(weight, "weight"), bias: bias,
                           y: try CAPI.pointer(y, "y"))
    }
}

@c @implementation
public func ms_conv2d_backward(_ x: UnsafePointer<Float>?, _ n: Int64, _ cin: Int64, _ h: Int64, _ w: Int64,
                               _ weight: UnsafePointer<Float>?, _ cout: Int64, _ kh: Int64, _ kw: Int64,
                               _ stride: Int64, _ padding: Int64, _ dilation: Int64, _ groups: Int64,
                               _ dy: UnsafePointer<Float>?, _ dyCount: Int64, _ dx: UnsafeMutablePointer<Float>?,
                               _ dweight: UnsafeMutablePointer<Float>?, _ dbias: UnsafeMutablePointer<Float>?,
                               _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        let g = try CAPI.convGeometry(n, cin, h, w, cout, kh, kw, stride, padding, dilation, groups)
        try require(dyCount == Int64(g.batch * g.outChannels * g.outPlane), "dy must hold \(g.batch)x\(g.outChannels)x\(g.outHeight)x\(g.outWidth) values")
        let (x, weight, dy) = (try CAPI.pointer(x, "x"), try CAPI.pointer(weight, "weight"), try CAPI.pointer(dy, "dy"))
        dx?.initialize(repeating: 0, count: g.batch * g.inChannels * g.height * g.width)
        dweight?.initialize(repeating: 0, count: g.outChannels * g.colRows)
        dbias?.initialize(repeating: 0, count: g.outChannels)
        try ConvKernel.backward(g, x: x, weight: weight, dy: dy, dx: dx, dWeight: dweight, dBias: dbias)
    }
}

@c @implementation
public func ms_matmul(_ a: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?, _ c: UnsafeMutablePointer<Float>?,
                      _ m: Int64, _ n: Int64, _ k: Int64, _ err: UnsafeMutablePointer<CChar>?, _ errLen: Int) -> Int32 {
    CAPI.call(err, errLen) {
        try require(m >= 1 && n >= 1 && k >= 1 && m <= 1 << 20 && n <= 1 << 20 && k <= 1 << 20, "matrix sizes must be between 1 and 2^20")
        BLAS.parallelGemm(m: Int(m), n: Int(n), k: Int(k), a: try CAPI.pointer(a, "a"), lda: Int(k),
                          b: try CAPI.pointer(b, "b"), ldb: Int(n), c: try CAPI.pointer(c, "c"), ldc: Int(n))
    }
}
