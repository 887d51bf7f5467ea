// The common shape of torchvision classifiers (VGG, AlexNet, MobileNetV2, simple_cnn): children
// `features`, `avgpool` and `classifier`, so their parameters get torchvision's keys.

import MedSynthCore

/// features → pool → flatten → classifier, the shape of most torchvision classifiers.
public final class ConvClassifier: Layer {
    public let features: Layer, pool: Layer, classifier: Layer

    public init(features: Layer, pool: Layer, classifier: Layer) {
        self.features = features
        self.pool = pool
        self.classifier = classifier
        super.init()
        registerChild("features", features)
        registerChild("avgpool", pool)
        registerChild("classifier", classifier)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try classifier(try flatten(try pool(try features(x)), startDim: 1))
    }
}
