// torchvision 0.29.2's figures for the eight CNNs (num_classes 4, eval mode, GoogLeNet without aux
// heads): logits on the two splitmix64 inputs under splitmix64 weights, state-dict entry and
// parameter counts, and each state_dict's layout (name, shape, dtype; GoogLeNet's with the aux
// heads). The figures live in one data file, Tests/Fixtures/torchvision_fixtures.json (made by
// Tests/Fixtures/make_torchvision_fixtures.py), read by these tests and the Python tests alike.

@testable import MedSynthCore

struct StateKey: Equatable, CustomStringConvertible {
    let name: String, shape: [Int], dtype: SafetensorsDType
    var description: String { "\(name) \(shape) \(dtype)" }
}

enum TorchvisionFixtures {
    struct Model {
        let name: String
        let stateDictEntries: Int
        let parameters: Int
        /// Parameters of the model the key list describes (GoogLeNet: with its aux heads).
        let keyListParameters: Int
        let logits: [[Float]]
        /// The state dict's entries in torchvision's order (GoogLeNet: with its aux heads).
        let keys: [StateKey]

        /// The key list, without GoogLeNet's auxiliary heads unless `aux`.
        func stateKeys(aux: Bool = false) -> [StateKey] {
            keys.filter { aux || !($0.name.hasPrefix("aux1.") || $0.name.hasPrefix("aux2.")) }
        }
    }

    /// The fixture file, found from this source file's place in the checkout.
    static let path: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)   // MedSynthTests/TorchvisionFixtures.swift
        return parts.joined(separator: "/") + "/Fixtures/torchvision_fixtures.json"
    }()

    /// The figures of `arch`, read from the fixture file.
    static func model(_ arch: String) throws -> Model {
        let json = try JSON.parse(bytes: try Files.read(path))
        guard let ref = json["archs"]?[arch] else { throw MedSynthError.invalidArgument("\(path) has no '\(arch)'") }
        func field<T>(_ key: String, _ value: (JSON) -> T?) throws -> T {
            guard let v = ref[key].flatMap(value) else { throw MedSynthError.invalidArgument("\(path): '\(arch).\(key)' is missing or malformed") }
            return v
        }
        let keys: [StateKey] = try field("keys") { list in
            list.array?.compactMap { entry -> StateKey? in
                guard let e = entry.array, e.count == 3, let name = e[0].string, let shape = e[1].array?.compactMap({ $0.int }),
                      let dtype = e[2].string else { return nil }
                return StateKey(name: name, shape: shape, dtype: dtype == "int64" ? .I64 : .F32)
            }
        }
        return Model(name: arch, stateDictEntries: try field("state_dict_entries") { $0.int },
                     parameters: try field("parameters") { $0.int }, keyListParameters: try field("key_list_parameters") { $0.int },
                     logits: try field("logits") { $0.array?.map { row in row.array?.compactMap { $0.double.map(Float.init) } ?? [] } },
                     keys: keys)
    }
}
