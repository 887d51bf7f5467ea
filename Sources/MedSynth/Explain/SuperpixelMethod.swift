// The segmentations LIME can use, by the names users pass: "quickshift" (lime's default) and
// "slic"; each one's options are its own option table (registry topics "quickshift", "slic").

import MedSynthCore

public enum SuperpixelMethod: String, CaseIterable {
    case quickshift
    case slic

    /// Segments `image` with the method named by `json`'s "method" (default quickshift) and the
    /// method's options given in the rest of `json`.
    public static func segment(_ image: SegmentationInput, options json: JSON) throws -> Superpixels {
        guard let pairs = json.object else { throw MedSynthError.invalidArgument("segmentation options must be a JSON object") }
        let name = try json.string("method") ?? SuperpixelMethod.quickshift.rawValue
        guard let method = SuperpixelMethod(rawValue: name) else {
            throw MedSynthError.invalidArgument("unknown segmentation '\(name)'; choose one of: \(allCases.map { $0.rawValue }.joined(separator: ", "))")
        }
        let rest = JSON.object(pairs.filter { $0.0 != "method" })
        switch method {
        case .quickshift: return try Quickshift.segment(image, options: try QuickshiftOptions(json: rest))
        case .slic: return try SLIC.segment(image, options: try SLICOptions(json: rest))
        }
    }
}
