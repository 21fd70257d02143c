// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ballast",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ballast", targets: ["ballast"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // Only the OTLP/HTTP exporter: no gRPC stack is built.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Values every module shares and nothing else: bounded waits and the one Duration conversion. No I/O.
        .target(
            name: "BallastCore",
            dependencies: [.product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: swiftSettings
        ),
        // The wire contract: every request answer's JSON shape, `Codable`, with no domain or server type. The server
        // encodes it, the chaos runner decodes it, and a test checks each against the OpenAPI document.
        .target(
            name: "BallastWire",
            dependencies: ["BallastCore"],
            swiftSettings: swiftSettings
        ),
        // Typed configuration from the environment and flags, with one-line errors. No I/O beyond reading values.
        .target(
            name: "BallastConfig",
            swiftSettings: swiftSettings
        ),
        // JSON logging and the process's Prometheus registry.
        .target(
            name: "Telemetry",
            dependencies: [
                "BallastCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fault points, keyed decisions, scopes, failpoints and the steady-state guard. No database, no HTTP.
        .target(
            name: "ChaosKit",
            dependencies: [
                "BallastConfig",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Evidence records: canonical form, hash chain, verification. Pure.
        .target(
            name: "Evidence",
            dependencies: [
                "BallastCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Database URL → connection pools, migrations per dialect, the one transaction helper.
        .target(
            name: "Storage",
            dependencies: [
                "BallastCore",
                "BallastConfig",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The domain's values below every domain module: ids, money, errors with stable codes, input fields and
        // their rules, the bounded queue and the circuit breaker.
        .target(
            name: "DomainValues",
            dependencies: [
                "BallastCore",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The evidence store: the hash-chained log in the primary store, and the appender that writes high-volume
        // evidence off the request path. Depends on no domain module.
        .target(
            name: "EvidenceStore",
            dependencies: [
                "BallastCore",
                "Evidence",
                "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        // Commerce, the domain's use cases: users, wallets, the catalog, orders, listings, idempotency, shipping,
        // notifications and their outbox, events, admin evidence; the services with their SQL.
        .target(
            name: "Commerce",
            dependencies: [
                "BallastCore",
                "BallastConfig",
                "DomainValues",
                "Storage",
                "Evidence",
                "EvidenceStore",
                "ChaosKit",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Operations, what runs beside commerce: shadow writes and the verifier, jobs and the invariant auditor,
        // chaos control. May import Commerce; Commerce never imports it (listings reach the shadow writer
        // through `ListingMirror`, a protocol Commerce owns).
        .target(
            name: "Operations",
            dependencies: [
                "Commerce",
                "BallastCore",
                "BallastConfig",
                "DomainValues",
                "Storage",
                "Evidence",
                "EvidenceStore",
                "ChaosKit",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP application: middleware, routes, health, metrics, OpenAPI.
        .target(
            name: "BallastServer",
            dependencies: [
                "BallastWire",
                "BallastCore",
                "DomainValues",
                "BallastConfig",
                "Telemetry",
                "Storage",
                "Commerce",
                "Operations",
                "EvidenceStore",
                "ChaosKit",
                "Evidence",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // `ballast chaos run`: experiment scenarios and invariant checks over HTTP (a client of the API only).
        .target(
            name: "ChaosRunner",
            dependencies: [
                "BallastCore",
                "BallastWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ballast",
            dependencies: [
                "BallastServer",
                "BallastWire",
                "BallastConfig",
                "BallastCore",
                "DomainValues",
                "ChaosRunner",
                "Evidence",
                "EvidenceStore",
                "Commerce",
                "Operations",
                "Storage",
                "Telemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Shared by the test targets: runs a test on SQLite and, when configured, on PostgreSQL; serves fake HTTP peers.
        .target(
            name: "BallastTestSupport",
            dependencies: [
                "Storage",
                "BallastConfig",
                "Telemetry",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/BallastTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BallastCoreTests",
            dependencies: ["BallastCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BallastConfigTests",
            dependencies: ["BallastConfig"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EvidenceTests",
            dependencies: ["Evidence", "EvidenceStore", "Commerce",
                "Operations", "Storage", "BallastTestSupport", .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        // Property-based tests of the input rules and of every parser of a peer's answer.
        .testTarget(
            name: "DomainValuesTests",
            dependencies: ["DomainValues"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CommerceTests",
            dependencies: [
                "Commerce", "DomainValues", "Evidence", "BallastCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TelemetryTests",
            dependencies: ["Telemetry", .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChaosKitTests",
            dependencies: ["ChaosKit", "BallastConfig", "Telemetry", .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Prints figures (fault-check cost, evidence append and verify rates); never asserts timings.
        .executableTarget(
            name: "ballast-bench",
            dependencies: ["ChaosKit", "Evidence", "EvidenceStore", "Commerce",
                "Operations", "Storage", "BallastConfig", "Telemetry",
                           .product(name: "Logging", package: "swift-log"), .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Metrics", package: "swift-metrics"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "Crypto", package: "swift-crypto")],
            path: "Benchmarks/ballast-bench",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "BallastConfig", "BallastTestSupport", .product(name: "SQLKit", package: "sql-kit")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BallastServerTests",
            dependencies: [
                "BallastServer",
                "BallastWire",
                "BallastCore",
                "DomainValues",
                "EvidenceStore",
                "BallastConfig",
                "BallastTestSupport",
                "ChaosKit",
                "ChaosRunner",
                "Evidence",
                "Commerce",
                "Operations",
                "Storage",
                "Telemetry",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Runs the built `ballast` executable as a user would: start-up errors, commands, serve and SIGTERM.
        .testTarget(
            name: "BallastCLITests",
            dependencies: [
                "ballast",
                "BallastWire",
                "DomainValues",
                "EvidenceStore",
                "BallastTestSupport",
                "BallastConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                "Storage",
                "Commerce",
                "Operations",
                "Evidence",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
