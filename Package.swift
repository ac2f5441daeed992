// swift-tools-version: 6.1
import PackageDescription

/// One set of settings for every Swift target (house style, see DESIGN.md).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "maskinporten-broker",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "maskinporten-broker", targets: ["maskinporten-broker"]),
        .library(name: "BrokerCore", targets: ["BrokerCore"]),
        .library(name: "BrokerCrypto", targets: ["BrokerCrypto"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "BrokerCrypto",
            dependencies: ["COpenSSL"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BrokerCore",
            dependencies: [
                "BrokerCrypto",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "maskinporten-broker",
            dependencies: [
                "BrokerCore",
                "BrokerCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "BrokerBenchmarks",
            dependencies: ["BrokerCore", "BrokerCrypto"],
            path: "Benchmarks/BrokerBenchmarks",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BrokerTestSupport",
            path: "Tests/BrokerTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerCryptoTests",
            dependencies: ["BrokerCrypto", "BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerCoreTests",
            dependencies: ["BrokerCore", "BrokerCrypto", "BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
