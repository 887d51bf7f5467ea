// What the engine offers, by name, for every language above it: the Python package reads its
// lists of architectures, samplers and data set classes from here (through ms_registry) instead of
// keeping copies. A new registry is one more entry in `topics`.

import MedSynthCore

public enum Registry {
    /// Each topic and how to describe it as JSON.
    static let topics: [(name: String, describe: () -> JSON)] = [
        ("architectures", {
            .array(ClassifierArchitecture.all.map { a in
                .object([
                    ("name", .string(a.name)), ("min_image_size", .number(Double(a.minImageSize))),
                    ("head", .array(a.head.map { .string($0) })), ("stem", .string(a.stem)),
                    ("aux_logits", .bool(a.supportsAuxLogits)),
                ])
            })
        }),
        ("samplers", { .array(SamplerKind.allCases.map { .string($0.rawValue) }) }),
        ("timestep_spacings", { .array(TimestepSpacing.allCases.map { .string($0.rawValue) }) }),
        ("shape_classes", { .array(ShapesDataset.classNames.map { .string($0) }) }),
        // each option set: its keys, defaults and documentation
        ("classifier_config", { ClassifierConfig.documentation }),
        ("classifier_training", { ClassifierTrainingOptions.documentation }),
        ("diffusion_config", { DiffusionConfig.documentation }),
        ("diffusion_training", { DiffusionTrainingOptions.documentation }),
        ("sampling", { SamplingOptions.documentation }),
        // explanations: the segmentations by name, each one's options, and LIME's
        ("superpixel_methods", { .array(SuperpixelMethod.allCases.map { .string($0.rawValue) }) }),
        ("quickshift", { QuickshiftOptions.documentation }),
        ("slic", { SLICOptions.documentation }),
        ("lime", { LimeOptions.documentation }),
        ("phantom_domains", {
            .array(PhantomDomain.allCases.map { d in
                .object([("name", .string(d.rawValue)), ("classes", .array(d.classNames.map { .string($0) })),
                         ("default_counts", .array(d.defaultCounts.map { .number(Double($0)) })),
                         ("channels", .number(Double(d.channels))), ("summary", .string(d.summary))])
            })
        }),
    ]

    /// The JSON description of `topic`; "topics" lists them all.
    public static func describe(_ topic: String) throws -> JSON {
        if topic == "topics" { return .array(topics.map { .string($0.name) }) }
        guard let entry = topics.first(where: { $0.name == topic }) else {
            throw MedSynthError.invalidArgument(
                "unknown registry topic '\(topic)'; choose one of: \(topics.map { $0.name }.joined(separator: ", "))")
        }
        return entry.describe()
    }
}
