// Random changes to training images, all off by default: anatomy has a left and a right, and a
// lesion's intensity can be its diagnosis, so each change is the user's decision (lucidrains'
// diffusion Trainer flips by default; torchvision's classification recipes crop, flip and jitter).

import Glibc
import MedSynthCore

public struct Augmentation: Equatable {
    public var horizontalFlip = false
    public var verticalFlip = false
    /// Largest shift in pixels (uniform in [−t, t] on each axis).
    public var translate: Float = 0
    /// Largest rotation in degrees (uniform in [−r, r]).
    public var rotate: Float = 0
    /// Smallest area of a random resized crop, as a fraction of the image (1: no crop); the aspect
    /// ratio is drawn in [3/4, 4/3] on a log scale, as torchvision's RandomResizedCrop.
    public var cropScale: Float = 1
    /// Brightness factor drawn from [1 − b, 1 + b] (torchvision's ColorJitter); 0: off.
    public var brightness: Float = 0
    /// Contrast factor drawn from [1 − c, 1 + c] (torchvision's ColorJitter); 0: off.
    public var contrast: Float = 0

    public init() {}

    public var isIdentity: Bool {
        !horizontalFlip && !verticalFlip && translate == 0 && rotate == 0 && cropScale == 1 && brightness == 0 && contrast == 0
    }

    /// The table entries of these options, for an option set that holds an Augmentation at `path`.
    static func options<Root>(_ path: WritableKeyPath<Root, Augmentation>) -> [Option<Root>] {
        let own: [Option<Augmentation>] = [
            .bool("hflip", \.horizontalFlip, "Random horizontal flips (off: anatomy has a left and a right)."),
            .bool("vflip", \.verticalFlip, "Random vertical flips."),
            .float("translate", \.translate, "Largest random shift in pixels, 0 to 64."),
            .float("rotate", \.rotate, "Largest random rotation in degrees, 0 to 180."),
            .float("crop_scale", \.cropScale, "Smallest area of a random resized crop as a fraction of the image, (0, 1]; 1: no crop (torchvision's RandomResizedCrop uses 0.08)."),
            .float("brightness", \.brightness, "Brightness jitter b: factor in [1-b, 1+b] (torchvision's ColorJitter); 0: off."),
            .float("contrast", \.contrast, "Contrast jitter c: factor in [1-c, 1+c] around the image mean (torchvision's ColorJitter); 0: off."),
        ]
        return own.map { $0.lifted(path) }
    }

    func validate() throws {
        try require(translate.isFinite && translate >= 0 && translate <= 64, "translate must be between 0 and 64 pixels")
        try require(rotate.isFinite && rotate >= 0 && rotate <= 180, "rotate must be between 0 and 180 degrees")
        try require(cropScale.isFinite && cropScale > 0 && cropScale <= 1, "crop_scale must be in (0, 1]")
        try require(brightness.isFinite && brightness >= 0 && brightness < 1, "brightness must be in [0, 1)")
        try require(contrast.isFinite && contrast >= 0 && contrast < 1, "contrast must be in [0, 1)")
    }

    /// Applies one random draw to `image` [C, H, W] in place (`scratch` holds C·H·W floats).
    func apply(_ image: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, rng: RandomGenerator,
               scratch: UnsafeMutablePointer<Float>) {
        let count = channels * height * width
        let flipH = horizontalFlip && rng.uniform() < 0.5
        let flipV = verticalFlip && rng.uniform() < 0.5
        var dx = translate * (2 * rng.uniform() - 1), dy = translate * (2 * rng.uniform() - 1)
        let angle = rotate * (2 * rng.uniform() - 1)
        var sx: Float = 1, sy: Float = 1
        if cropScale < 1 {
            let area = cropScale + (1 - cropScale) * rng.uniform()
            let ratio = exp(log(Float(3) / 4) + (log(Float(4) / 3) - log(Float(3) / 4)) * rng.uniform())
            sx = min(1, (area * ratio).squareRoot())
            sy = min(1, (area / ratio).squareRoot())
            // the crop lies anywhere inside the image
            dx += (1 - sx) * Float(width) / 2 * (2 * rng.uniform() - 1)
            dy += (1 - sy) * Float(height) / 2 * (2 * rng.uniform() - 1)
        }
        if flipH || flipV || dx != 0 || dy != 0 || angle != 0 || sx != 1 || sy != 1 {
            scratch.update(from: image, count: count)
            AugmentKernel.apply(scratch, image, channels: channels, height: height, width: width,
                                flipH: flipH, flipV: flipV, shiftX: dx, shiftY: dy, degrees: angle, scaleX: sx, scaleY: sy)
        }
        if brightness > 0 || contrast > 0 {
            let b = brightness > 0 ? 1 + brightness * (2 * rng.uniform() - 1) : 1
            let c = contrast > 0 ? 1 + contrast * (2 * rng.uniform() - 1) : 1
            AugmentKernel.jitter(image, count: count, brightness: b, contrast: c)
        }
    }
}
