// swift-tools-version: 6.1
// libFuzzer targets for maskinporten-broker's parsers and the daemon's HTTP handling. A separate package because a fuzz target
// has no main of its own: libFuzzer supplies it. Build each product alone, with the sanitizer
// flags on the command line so that the broker's own modules are instrumented too (Fuzz/run).
//
//   Fuzz/run [SECONDS]          # builds every target and fuzzes each for SECONDS (default 30)
import PackageDescription

let package = Package(
    name: "maskinporten-broker-fuzz",
    dependencies: [
        .package(path: ".deps/maskinporten-broker"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(name: "FuzzKeys", dependencies: ["FuzzSupport", .product(name: "BrokerCrypto", package: "maskinporten-broker")]),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport", .product(name: "BrokerCore", package: "maskinporten-broker")]),
        .executableTarget(name: "FuzzUpstream", dependencies: ["FuzzSupport", .product(name: "BrokerCore", package: "maskinporten-broker")]),
        .executableTarget(
            name: "FuzzHTTP",
            dependencies: [
                "FuzzSupport",
                .product(name: "BrokerServer", package: "maskinporten-broker"),
                .product(name: "BrokerCore", package: "maskinporten-broker"),
                .product(name: "BrokerCrypto", package: "maskinporten-broker"),
                .product(name: "MaskinportenEmulator", package: "maskinporten-broker"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
