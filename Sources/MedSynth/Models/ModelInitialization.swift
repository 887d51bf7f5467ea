// Weight initialisation shared by the torchvision architectures: each model re-initialises its
// layers as torchvision's constructor does (`for m in self.modules(): ...`), with the same
// distributions drawn from the engine's own seeded generator. BatchNorm needs nothing: it is
// built with γ = 1, β = 0, which is what every torchvision model sets.

import MedSynthCore

extension Module {
    /// Calls `conv` on every Conv2d and `linear` on every Linear of the tree, depth first in
    /// registration order (torch's `modules()` order, so the draws are in a fixed order).
    func initializeLayers(conv: (Conv2d) -> Void, linear: (Linear) -> Void) {
        for m in modules() {
            if let c = m as? Conv2d { conv(c) } else if let l = m as? Linear { linear(l) }
        }
    }
}

enum TorchInit {
    /// kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2/fan_out) (ResNet, VGG, MobileNetV2).
    static func kaimingNormalFanOut(_ t: Tensor, _ rng: RandomGenerator) {
        Initializer.kaimingNormal(t, fan: Initializer.fans(t).fanOut, rng)
    }

    /// kaiming_normal_() with its defaults (fan_in, gain √2): N(0, 2/fan_in) (DenseNet).
    static func kaimingNormalFanIn(_ t: Tensor, _ rng: RandomGenerator) {
        Initializer.kaimingNormal(t, fan: Initializer.fans(t).fanIn, rng)
    }
}
