// swift-tools-version: 6.1
import PackageDescription

/// One set of settings for every Swift target (house style: docs/architecture.md).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// Linux only: the daemon is built on epoll, eventfd, SO_PEERCRED and systemd's protocols, and
// is built and tested on Debian 12 with Swift 6.3. (SwiftPM's `platforms` lists Apple's systems
// only, so it is left out.)
#if !os(Linux)
    #error("maskinporten-broker builds on Linux only")
#endif

let package = Package(
    name: "maskinporten-broker",
    products: [
        .executable(name: "maskinporten-broker", targets: ["maskinporten-broker"]),
        .executable(name: "maskinporten-brokerd", targets: ["maskinporten-brokerd"]),
        .library(name: "BrokerClient", targets: ["BrokerClient"]),
        .library(name: "BrokerCore", targets: ["BrokerCore"]),
        .library(name: "BrokerCrypto", targets: ["BrokerCrypto"]),
        .library(name: "BrokerServer", targets: ["BrokerServer"]),
        .library(name: "MaskinportenEmulator", targets: ["MaskinportenEmulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "libcrypto",
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
                "BrokerPOSIX",
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CSystemShims",
            path: "Sources/CSystemShims"
        ),
        .target(
            name: "BrokerPOSIX",
            dependencies: ["CSystemShims"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerCore",
                "BrokerCrypto",
                "BrokerPOSIX",
                "CSystemShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MaskinportenEmulator",
            dependencies: [
                "BrokerCrypto",
                "BrokerPOSIX",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client, without Foundation or OpenSSL: `token` and `health`, both
        // executables.
        .target(
            name: "BrokerClient",
            dependencies: ["BrokerPOSIX"],
            swiftSettings: swiftSettings
        ),
        // `maskinporten-broker`: runs `token` and `health` itself and hands every other command to
        // `maskinporten-brokerd` next to it. Not a dependency on it: SwiftPM would link all of
        // the daemon in. In release builds it is linked fully statically: no dynamic loading at
        // start-up.
        .executableTarget(
            name: "maskinporten-broker",
            dependencies: ["BrokerClient"],
            swiftSettings: swiftSettings,
            linkerSettings: [.unsafeFlags(["-static-executable"], .when(platforms: [.linux], configuration: .release))]
        ),
        // `maskinporten-brokerd`: every command, the daemon among them.
        .executableTarget(
            name: "maskinporten-brokerd",
            dependencies: [
                "BrokerClient",
                "BrokerCore",
                "BrokerCrypto",
                "BrokerServer",
                "BrokerPOSIX",
                "MaskinportenEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
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
            dependencies: ["BrokerCrypto", "MaskinportenEmulator", .product(name: "Logging", package: "swift-log")],
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
            dependencies: [
                "BrokerCore", "BrokerCrypto", "BrokerPOSIX", "BrokerTestSupport", "MaskinportenEmulator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerServerTests",
            dependencies: [
                "BrokerServer", "BrokerCore", "BrokerPOSIX", "BrokerTestSupport", "MaskinportenEmulator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerClientTests",
            dependencies: ["BrokerClient"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerPOSIXTests",
            dependencies: ["BrokerPOSIX", "BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MaskinportenEmulatorTests",
            dependencies: ["MaskinportenEmulator", "BrokerCrypto", "BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
