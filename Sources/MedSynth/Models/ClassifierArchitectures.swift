// The registry of classifier architectures, by the names users pass from Python.

import MedSynthCore

public struct ClassifierArchitecture {
    public let name: String
    /// Smallest input side the architecture accepts.
    public let minImageSize: Int
    package let build: (_ inChannels: Int, _ numClasses: Int, _ rng: RandomGenerator) throws -> Layer

    public static let all: [ClassifierArchitecture] = [
        ClassifierArchitecture(name: "simple_cnn", minImageSize: 8, build: { try SimpleCNN.make(inChannels: $0, numClasses: $1, rng: $2) }),
    ]

    public static func named(_ name: String) throws -> ClassifierArchitecture {
        guard let a = all.first(where: { $0.name == name }) else {
            throw MedSynthError.invalidArgument("unknown architecture '\(name)'; choose one of: \(all.map { $0.name }.joined(separator: ", "))")
        }
        return a
    }
}
