// sRGB → CIE L*a*b* (D65 illuminant, 2° observer), computed as scikit-image's `rgb2lab` does
// (`rgb2xyz` then `xyz2lab`, skimage/color/colorconv.py), so that segmentations in Lab match
// scikit-image's on the same pixels:
//   linear = ((v + 0.055) / 1.055)^2.4 if v > 0.04045 else v / 12.92
//   (X, Y, Z) = M · linear, M = skimage's xyz_from_rgb
//   f(t) = cbrt(t) if t > 0.008856 else 7.787 t + 16/116, t = (X/0.95047, Y/1, Z/1.08883)
//   L = 116 f(Y) − 16,  a = 500 (f(X) − f(Y)),  b = 200 (f(Y) − f(Z))
// A gray value v is converted as the RGB pixel (v, v, v), as lime's gray2rgb would pass it.

import MedSynthCore

import Glibc

public enum CIELab {
    // skimage's xyz_from_rgb, row by row, and the D65 / 2° white point
    static let (m00, m01, m02) = (0.412453, 0.357580, 0.180423)
    static let (m10, m11, m12) = (0.212671, 0.715160, 0.072169)
    static let (m20, m21, m22) = (0.019334, 0.119193, 0.950227)
    static let (whiteX, whiteY, whiteZ) = (0.95047, 1.0, 1.08883)

    @inline(__always)
    static func linear(_ v: Double) -> Double { v > 0.04045 ? pow((v + 0.055) / 1.055, 2.4) : v / 12.92 }

    @inline(__always)
    static func f(_ t: Double) -> Double { t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0 }

    /// (L, a, b) of one sRGB pixel with components in [0, 1].
    @inline(__always)
    public static func lab(_ r: Double, _ g: Double, _ b: Double) -> (Double, Double, Double) {
        let (lr, lg, lb) = (linear(r), linear(g), linear(b))
        let x = lr * m00 + lg * m01 + lb * m02
        let y = lr * m10 + lg * m11 + lb * m12
        let z = lr * m20 + lg * m21 + lb * m22
        let (fx, fy, fz) = (f(x / whiteX), f(y / whiteY), f(z / whiteZ))
        return (116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz))
    }

    /// Lab image [h·w·3] of an image with 1 (gray) or 3 (RGB) channels, channels-last.
    public static func convert(_ image: SegmentationInput) -> [Double] {
        var out = [Double](repeating: 0, count: image.pixelCount * 3)
        let src = image.pixels, c = image.channels
        out.withUnsafeMutableBufferPointer { dst in
            guard let d = dst.baseAddress else { return }
            parallelRanges(image.pixelCount, grain: 4096) { lo, hi in
                for p in lo..<hi {
                    let (r, g, b) = c == 3 ? (src[3 * p], src[3 * p + 1], src[3 * p + 2]) : (src[p], src[p], src[p])
                    let (l, a, bb) = lab(r, g, b)
                    d[3 * p] = l
                    d[3 * p + 1] = a
                    d[3 * p + 2] = bb
                }
            }
        }
        return out
    }
}
