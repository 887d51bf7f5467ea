// swift-tools-version:6.0
// medsynth: the Swift engine behind the `medsynth` Python package.
//
// Targets (each only imports the ones above it)
//   COpenBLAS, CPNG  system libraries found through pkg-config (Debian: libopenblas-dev, libpng-dev)
//   CMedSynth        the hand-written C ABI header (include/medsynth.h): the one contract between
//                    the engine and every other language
//   MedSynthCore     runtime, tensors, kernels, autograd, layers, optimisers, file formats
//   MedSynth         models, training, diffusion, data sets, explanations
//   MedSynthCAPI     the C ABI over MedSynth; the product libMedSynth.so (Foundation-free) that
//                    the CPython extension links
import PackageDescription

// The engine's loops are vectorised by LLVM for the CPU it is built on (AVX-512 on the project's
// machines). Set MEDSYNTH_TARGET_CPU=x86-64 (or another LLVM CPU name) for a portable build.
let targetCPU = Context.environment["MEDSYNTH_TARGET_CPU"] ?? "native"

// Swift settings every engine target shares.
let engineSettings: [SwiftSetting] = [
    // Kernels hand raw buffers to worker threads; Swift 6's strict Sendable checking of pointers
    // would only add wrappers around every kernel, so the engine stays in Swift 5 mode. Thread
    // safety is by construction: workers write disjoint ranges.
    .swiftLanguageMode(.v5),
    .unsafeFlags(["-target-cpu", targetCPU]),
]

let package = Package(
    name: "MedSynth",
    products: [
        // The one shared library the CPython extension links: the C ABI and everything below it.
        .library(name: "MedSynth", type: .dynamic, targets: ["MedSynthCAPI"]),
        // The core as a library for the fuzz targets (Tests/Fuzz, their own package).
        .library(name: "MedSynthCore", targets: ["MedSynthCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(name: "CMedSynth"),
        // libpng's classic API behind setjmp (16-bit PNGs with alpha, exactly): C, because
        // libpng reports errors by longjmp, which Swift cannot catch.
        .target(name: "CPNGShim", dependencies: ["CPNG"], linkerSettings: [.linkedLibrary("png16")]),
        // Runtime, tensors, kernels, autograd, layers, optimisers, file formats.
        .target(
            name: "MedSynthCore",
            dependencies: ["COpenBLAS", "CPNG", "CPNGShim", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: engineSettings
        ),
        // Models, their training and sampling, data sets, explanations: built from the core.
        .target(name: "MedSynth", dependencies: ["MedSynthCore"], swiftSettings: engineSettings),
        // The C ABI (include/medsynth.h implemented): a thin translation layer nothing else knows.
        .target(name: "MedSynthCAPI", dependencies: ["CMedSynth", "MedSynth", "MedSynthCore"], swiftSettings: engineSettings),
        .testTarget(
            name: "MedSynthTests",
            dependencies: ["MedSynth", "MedSynthCore"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
