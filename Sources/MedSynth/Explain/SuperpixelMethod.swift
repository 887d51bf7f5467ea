// The segmentations LIME can use, by the names users pass ("quickshift", lime's default, and
// "slic"), with their options' defaults for the registry.

import MedSynthCore

public enum SuperpixelMethod: String, CaseIterable {
    case quickshift
    case slic

    /// Segments `image` with the method and options named in `json` ({"method": ..., options}).
    public static func segment(_ image: SegmentationInput, options json: JSON) throws -> Superpixels {
        let name = try json.string("method") ?? SuperpixelMethod.quickshift.rawValue
        guard let method = SuperpixelMethod(rawValue: name) else {
            throw MedSynthError.invalidArgument("unknown segmentation '\(name)'; choose one of: \(allCases.map { $0.rawValue }.joined(separator: ", "))")
        }
        switch method {
        case .quickshift: return try Quickshift.segment(image, options: try QuickshiftOptions(json: json))
        case .slic: return try SLIC.segment(image, options: try SLICOptions(json: json))
        }
    }

    /// Each method's options with their defaults.
    public static var registry: JSON {
        .object([("quickshift", QuickshiftOptions().json), ("slic", SLICOptions().json)])
    }
}
