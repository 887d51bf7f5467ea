// swift-tools-version:6.0
// libFuzzer targets for the engine's parsers of untrusted bytes: PNG, safetensors, JSON.
// Built only with `swift build --sanitize=fuzzer --sanitize=address` (libFuzzer supplies main);
// run by `make fuzz` (long) and `make test` (short), see Tests/Fuzz/run.sh.
import PackageDescription

let fuzzSettings: [SwiftSetting] = [.swiftLanguageMode(.v5), .unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "MedSynthFuzz",
    dependencies: [.package(name: "MedSynth", path: "../..")],
    targets: [
        .executableTarget(name: "FuzzPNG", dependencies: [.product(name: "MedSynthCore", package: "MedSynth")], swiftSettings: fuzzSettings),
        .executableTarget(name: "FuzzSafetensors", dependencies: [.product(name: "MedSynthCore", package: "MedSynth")], swiftSettings: fuzzSettings),
        .executableTarget(name: "FuzzJSON", dependencies: [.product(name: "MedSynthCore", package: "MedSynth")], swiftSettings: fuzzSettings),
    ]
)
