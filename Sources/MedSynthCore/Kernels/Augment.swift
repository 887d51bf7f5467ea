// Augmentation of one image: geometric (flips, then a zoom into a crop, a rotation about the
// centre and a shift, resampled bilinearly with the edge pixels extended: no black corners, which
// a model would learn to draw) and photometric (brightness and contrast, torchvision's
// ColorJitter definitions).

import Glibc

package enum AugmentKernel {
    /// dst [C, H, W] = the transformed src [C, H, W].
    /// `scaleX`, `scaleY` < 1 zoom into a crop of that fraction of the width and height (with the
    /// shift moving the crop): random resized crop as torchvision's RandomResizedCrop draws it.
    package static func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
                      flipH: Bool, flipV: Bool, shiftX: Float, shiftY: Float, degrees: Float,
                      scaleX: Float = 1, scaleY: Float = 1) {
        let plane = height * width
        let angle = degrees * Float.pi / 180
        let (c, s) = (cos(angle), sin(angle))
        let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
        for y in 0..<height {
            for x in 0..<width {
                // inverse map: output pixel → source position
                let ox = (Float(x) - cx) * scaleX - shiftX, oy = (Float(y) - cy) * scaleY - shiftY
                var sx = c * ox + s * oy + cx
                var sy = -s * ox + c * oy + cy
                if flipH { sx = Float(width - 1) - sx }
                if flipV { sy = Float(height - 1) - sy }
                sx = min(max(sx, 0), Float(width - 1))
                sy = min(max(sy, 0), Float(height - 1))
                let x0 = min(Int(sx), width - 1), y0 = min(Int(sy), height - 1)
                let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
                let fx = sx - Float(x0), fy = sy - Float(y0)
                for ch in 0..<channels {
                    let p = src + ch * plane
                    let top = p[y0 * width + x0] * (1 - fx) + p[y0 * width + x1] * fx
                    let bottom = p[y1 * width + x0] * (1 - fx) + p[y1 * width + x1] * fx
                    dst[ch * plane + y * width + x] = top * (1 - fy) + bottom * fy
                }
            }
        }
    }

    /// Brightness and contrast in place on [C, H, W], as torchvision's ColorJitter: x·b, then
    /// (x − m)·c + m with m the mean of the image (over all channels: the mean of the gray image
    /// for one channel; for RGB torchvision uses the luminance, which the channel mean
    /// approximates).
    package static func jitter(_ image: UnsafeMutablePointer<Float>, count: Int, brightness: Float, contrast: Float) {
        if brightness != 1 { for i in 0..<count { image[i] *= brightness } }
        if contrast != 1 {
            var sum: Float = 0
            for i in 0..<count { sum += image[i] }
            let m = sum / Float(max(count, 1))
            for i in 0..<count { image[i] = (image[i] - m) * contrast + m }
        }
    }
}
