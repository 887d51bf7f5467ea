// Loading weights into a classifier from a torchvision-style state dict (safetensors):
//   strict      every name and shape must match (torch's load_state_dict(strict=True));
//   non-strict  missing and unexpected names are allowed and reported, shapes must still match;
//   pretrained  fine-tuning from ImageNet weights: the backbone must match exactly; the head is
//               kept from the fresh initialisation when its shape differs (another class count);
//               the first convolution is adapted to the model's input channels (timm's
//               adapt_input_conv: 1 channel = the sum of the RGB filters; C channels = the RGB
//               filters repeated and scaled by 3/C); the input normalisation becomes the one the
//               weights were trained with.
// Everything is checked before anything is copied: a file that does not fit raises one message
// listing all missing, unexpected and wrong-shape names, and leaves the model untouched (as does a
// non-finite value, found as the tensors load: the model gets its previous weights back).

import MedSynthCore

public enum WeightLoadMode: String {
    case strict, nonStrict = "non_strict", pretrained
}

/// What a load did, by state-dict name.
public struct WeightLoadReport {
    /// Model entries the file lacks, left as they were (non-strict; and BatchNorm counters).
    public var missing: [String] = []
    /// File entries the model has no place for, ignored (non-strict; pretrained heads the model lacks).
    public var unexpected: [String] = []
    /// Head entries kept from initialisation because the file's shape is for another class count.
    public var replaced: [String] = []
    /// First-convolution weights adapted to the model's input channels.
    public var adapted: [String] = []

    public var json: JSON {
        .object([
            ("missing_keys", .array(missing.map { .string($0) })),
            ("unexpected_keys", .array(unexpected.map { .string($0) })),
            ("replaced_keys", .array(replaced.map { .string($0) })),
            ("adapted_keys", .array(adapted.map { .string($0) })),
        ])
    }
}

extension ImageClassifier {
    /// Loads `file` (named `source` in messages) into the model; see the top of this file.
    @discardableResult
    public func loadWeights(_ file: SafetensorsFile, source: String, mode: WeightLoadMode) throws -> WeightLoadReport {
        var byName: [String: SafetensorsEntry] = [:]
        for e in file.entries { byName[e.name] = e }
        let layout = model.stateLayout()
        let modelNames = Set(layout.map { $0.name })
        let stemWeight = architecture.stem + ".weight"

        var report = WeightLoadReport()
        var missing: [String] = [], wrongShape: [String] = [], badType: [String] = []
        var replacements: [String: SafetensorsEntry] = [:]   // entries loaded in place of the file's
        for (name, dtype, shape) in layout {
            guard let e = byName[name] else {
                if name.hasSuffix("num_batches_tracked") || mode == .nonStrict {
                    report.missing.append(name)      // torch tolerates a missing counter
                } else if mode == .pretrained && architecture.isHead(name) {
                    report.replaced.append(name)
                } else {
                    missing.append(name)
                }
                continue
            }
            if dtype == .I64 {
                if e.shape != [] && e.shape != [1] || e.int64Scalar() == nil { badType.append("\(name) (\(e.dtype) \(e.shape), expected an integer scalar)") }
                continue
            }
            if [.F32, .F16, .BF16, .F64].contains(e.dtype) == false {
                badType.append("\(name) (\(e.dtype), expected floating point)")
                continue
            }
            if e.shape == shape {
                // F16, BF16 and F64 weights become the model's F32 (their finiteness is checked as they load)
                if e.dtype != .F32 { replacements[name] = try e.asF32() }
                continue
            }
            if mode == .pretrained && architecture.isHead(name) {
                report.replaced.append(name)
            } else if mode == .pretrained && name == stemWeight, let adapted = try Self.adaptInputConv(e, to: shape) {
                replacements[name] = adapted
                report.adapted.append(name)
            } else {
                wrongShape.append("\(name) (file \(e.shape), model \(shape))")
            }
        }
        var unexpected: [String] = []
        for e in file.entries.sorted(by: { Self.naturalOrder($0.name, $1.name) }) where !modelNames.contains(e.name) {
            if mode == .nonStrict || mode == .pretrained && architecture.isHead(e.name) {
                report.unexpected.append(e.name)
            } else {
                unexpected.append(e.name)
            }
        }
        if !(missing.isEmpty && unexpected.isEmpty && wrongShape.isEmpty && badType.isEmpty) {
            func list(_ what: String, _ names: [String]) -> String? {
                guard !names.isEmpty else { return nil }
                let shown = names.prefix(12).joined(separator: ", ")
                return "\(names.count) \(what): \(shown)\(names.count > 12 ? ", and \(names.count - 12) more" : "")"
            }
            let parts = [list("missing", missing), list("unexpected", unexpected), list("with the wrong shape", wrongShape),
                         list("with the wrong dtype", badType)].compactMap { $0 }
            throw MedSynthError.invalidArgument(
                "'\(source)' does not fit \(config.architecture) (\(config.numClasses) classes, \(config.inChannels) input channel\(config.inChannels == 1 ? "" : "s")"
                + (config.auxLogits ? ", aux_logits" : "") + "): " + parts.joined(separator: "; "))
        }

        // everything fits: entries the file does not provide keep the model's current values
        let current = Dictionary(uniqueKeysWithValues: (model.namedParameters() + model.namedBuffers()).map { ($0.0, $0.1) })
        let keep = Set(report.missing + report.replaced)
        try model.loadTreeOrRestore { name in
            if let r = replacements[name] { return r }
            if keep.contains(name) { return current[name].map { SafetensorsEntry(name: name, tensor: $0) } }
            return byName[name]
        }
        if mode == .pretrained { usePretrainedNormalization() }
        inferenceBytesPerImage = nil
        return report
    }

    public func loadWeights(from path: String, mode: WeightLoadMode) throws -> WeightLoadReport {
        try loadWeights(try SafetensorsFile.read(path), source: path, mode: mode)
    }

    /// The normalisation the architecture's pretrained weights expect, for this model's channels:
    /// RGB as is; one channel (summed filters, a gray image seen as R = G = B) the mean of the
    /// three means and of the three standard deviations; C channels the RGB values repeated, as
    /// the filters are.
    package func usePretrainedNormalization() {
        let (m, s) = (architecture.pretrainedMean, architecture.pretrainedStd)
        if config.inChannels == 1 {
            config.mean = [m.reduce(0, +) / Float(m.count)]
            config.std = [s.reduce(0, +) / Float(s.count)]
        } else {
            config.mean = (0..<config.inChannels).map { m[$0 % m.count] }
            config.std = (0..<config.inChannels).map { s[$0 % s.count] }
        }
        normalizationFitted = true
    }

    /// Names in reading order: dotted parts compared as numbers where both are numbers
    /// ("features.2" before "features.12").
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        let (pa, pb) = (a.split(separator: "."), b.split(separator: "."))
        for (x, y) in zip(pa, pb) where x != y {
            if let i = Int(x), let j = Int(y) { return i < j }
            return x < y
        }
        return pa.count < pb.count
    }

    /// timm's `adapt_input_conv` for a weight [O, 3, kH, kW] and a model taking C channels:
    /// C = 1 sums the three filters; otherwise the filters are repeated ⌈C/3⌉ times, cut to C and
    /// scaled by 3/C so that the response keeps its size. Nil when the shapes do not allow it.
    static func adaptInputConv(_ e: SafetensorsEntry, to shape: [Int]) throws -> SafetensorsEntry? {
        guard e.shape.count == 4, shape.count == 4, e.shape[1] == 3, e.shape[0] == shape[0],
              e.shape[2] == shape[2], e.shape[3] == shape[3] else { return nil }
        let (o, c, taps) = (shape[0], shape[1], shape[2] * shape[3])
        let w = try e.floats()
        let out = try Tensor(zeros: shape)
        let p = out.data
        for oc in 0..<o {
            for ic in 0..<c {
                for t in 0..<taps {
                    if c == 1 {
                        p[oc * taps + t] = w[(oc * 3) * taps + t] + w[(oc * 3 + 1) * taps + t] + w[(oc * 3 + 2) * taps + t]
                    } else {
                        p[(oc * c + ic) * taps + t] = w[(oc * 3 + ic % 3) * taps + t] * (3 / Float(c))
                    }
                }
            }
        }
        return SafetensorsEntry(name: e.name, tensor: out)
    }
}
