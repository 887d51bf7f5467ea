// swift-tools-version:6.0
// medsynth: the Swift engine behind the `medsynth` Python package.
//
// Targets
//   COpenBLAS, CPNG  system libraries found through pkg-config (Debian: libopenblas-dev, libpng-dev)
//   CMedSynth        the hand-written C ABI header (include/medsynth.h): the one contract between
//                    the engine and every other language
//   MedSynth         the engine (Foundation-free), built as a dynamic library for the CPython
//                    extension and linked statically into `swift test`
import PackageDescription

// The engine's loops are vectorised by LLVM for the CPU it is built on (AVX-512 on the project's
// machines). Set MEDSYNTH_TARGET_CPU=x86-64 (or another LLVM CPU name) for a portable build.
let targetCPU = Context.environment["MEDSYNTH_TARGET_CPU"] ?? "native"

let package = Package(
    name: "MedSynth",
    products: [
        .library(name: "MedSynth", type: .dynamic, targets: ["MedSynth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(name: "CMedSynth"),
        .target(
            name: "MedSynth",
            dependencies: [
                "CMedSynth", "COpenBLAS", "CPNG",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            swiftSettings: [
                // Kernels hand raw buffers to worker threads; Swift 6's strict Sendable checking
                // of pointers would only add wrappers around every kernel, so the engine stays in
                // Swift 5 mode. Thread safety is by construction: workers write disjoint ranges.
                .swiftLanguageMode(.v5),
                .unsafeFlags(["-target-cpu", targetCPU]),
            ]
        ),
        .testTarget(
            name: "MedSynthTests",
            dependencies: ["MedSynth"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
