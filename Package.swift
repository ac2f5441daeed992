// swift-tools-version: 6.1
import PackageDescription

/// One set of settings for every Swift target (house style: docs/architecture.md).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// A fuzz target has no main of its own (libFuzzer's, or the replayer's, is named by the target).
let fuzzSettings = swiftSettings + [.unsafeFlags(["-parse-as-library"])]

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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
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
            dependencies: ["COpenSSL", "BrokerPOSIX"],
            swiftSettings: swiftSettings
        ),
        // The configuration file's YAML parser (events only; BrokerConfig composes the tree).
        .systemLibrary(
            name: "CYAML",
            path: "Sources/CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .systemLibrary(
            name: "CSystemShims",
            path: "Sources/CSystemShims"
        ),
        // The operating system layer, and the log handler every command uses beside its writer.
        .target(
            name: "BrokerPOSIX",
            dependencies: ["CSystemShims", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The configuration: schema, loading with the keys it names, host checks, check-config.
        .target(
            name: "BrokerConfig",
            dependencies: [
                "BrokerCrypto",
                "BrokerPOSIX",
                "CYAML",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Every HTTP call leaving the host, on a client of its own; the only importer of NIOSSL.
        .target(
            name: "BrokerTLS",
            dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BrokerUpstream",
            dependencies: [
                "BrokerConfig",
                "BrokerCrypto",
                "BrokerPOSIX",
                "BrokerTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Caches, variants, the key chooser, the refresh loop, rotation.
        .target(
            name: "BrokerTokens",
            dependencies: [
                "BrokerConfig",
                "BrokerCrypto",
                "BrokerPOSIX",
                "BrokerUpstream",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The socket: fast path, NIO pipeline, routes, access, audit, metrics rendering.
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerConfig",
                "BrokerCrypto",
                "BrokerPOSIX",
                "BrokerTLS",
                "BrokerTokens",
                "BrokerUpstream",
                "CSystemShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon's services wired together: Supervisor, reload, the key-file watch.
        .target(
            name: "BrokerDaemon",
            dependencies: [
                "BrokerConfig",
                "BrokerPOSIX",
                "BrokerServer",
                "BrokerTokens",
                "BrokerUpstream",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
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
                "BrokerConfig",
                "BrokerCrypto",
                "BrokerDaemon",
                "BrokerPOSIX",
                "BrokerServer",
                "BrokerUpstream",
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
            dependencies: ["BrokerConfig", "BrokerCrypto", "BrokerUpstream"],
            path: "Benchmarks/BrokerBenchmarks",
            swiftSettings: swiftSettings
        ),
        // The libFuzzer targets (Fuzz/run builds them with -DFUZZING and the sanitizers; a plain build
        // makes each a replayer of the inputs named on its command line).
        .target(name: "FuzzSupport", path: "Fuzz/Sources/FuzzSupport", swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzKeys", dependencies: ["FuzzSupport", "BrokerCrypto"], path: "Fuzz/Sources/FuzzKeys", swiftSettings: fuzzSettings),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport", "BrokerConfig"], path: "Fuzz/Sources/FuzzConfig", swiftSettings: fuzzSettings),
        .executableTarget(
            name: "FuzzUpstream",
            dependencies: ["FuzzSupport", "BrokerCrypto", "BrokerTokens", "BrokerUpstream", .product(name: "NIOHTTP1", package: "swift-nio")],
            path: "Fuzz/Sources/FuzzUpstream",
            swiftSettings: fuzzSettings),
        .executableTarget(
            name: "FuzzHTTP",
            dependencies: [
                "FuzzSupport", "BrokerConfig", "BrokerCrypto", "BrokerPOSIX", "BrokerServer", "BrokerTokens", "MaskinportenEmulator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/Sources/FuzzHTTP",
            swiftSettings: fuzzSettings
        ),
        .target(
            name: "BrokerTestSupport",
            dependencies: ["BrokerConfig", "BrokerCrypto", "CSystemShims", "MaskinportenEmulator", .product(name: "Logging", package: "swift-log")],
            path: "Tests/BrokerTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerCryptoTests",
            dependencies: ["BrokerCrypto", "BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerConfigTests",
            dependencies: ["BrokerConfig", "BrokerCrypto", "BrokerPOSIX", "BrokerTestSupport", .product(name: "Logging", package: "swift-log")],
            // Read from the source tree by path (the snapshots), not bundled.
            exclude: ["Snapshots"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerUpstreamTests",
            dependencies: [
                "BrokerConfig", "BrokerCrypto", "BrokerTLS", "BrokerTokens", "BrokerUpstream", "BrokerTestSupport", "MaskinportenEmulator",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerTokensTests",
            dependencies: [
                "BrokerConfig", "BrokerCrypto", "BrokerPOSIX", "BrokerTokens", "BrokerUpstream", "BrokerTestSupport", "MaskinportenEmulator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BrokerServerTests",
            dependencies: [
                "BrokerServer", "BrokerConfig", "BrokerDaemon", "BrokerPOSIX", "BrokerTokens", "BrokerUpstream", "BrokerTestSupport",
                "MaskinportenEmulator",
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
            dependencies: ["BrokerPOSIX", "BrokerTestSupport", "CSystemShims", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MaskinportenEmulatorTests",
            dependencies: ["MaskinportenEmulator", "BrokerCrypto", "BrokerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "BrokerConfig", "BrokerDaemon", "BrokerPOSIX", "BrokerServer", "BrokerTestSupport", "CSystemShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
