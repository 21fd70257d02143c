import BallastConfig
import Foundation
import Logging
import SQLKit
import Storage
import Telemetry

/// The stores a storage-touching test runs on: always SQLite (a temp file), and PostgreSQL too when
/// `BALLAST_TEST_POSTGRES_URL` is set. Use it as the arguments of a parameterized test:
/// `@Test(arguments: TestStores.kinds) func x(kind: StoreKind)`.
public enum StoreKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite, postgres
    public var description: String { rawValue }
}

public enum TestStores {
    public static let postgresVariable = "BALLAST_TEST_POSTGRES_URL"

    /// The server tests create their databases on, or `nil` when PostgreSQL tests are off.
    public static var postgresServer: DatabaseURL.PostgresLocation? {
        guard let text = ProcessInfo.processInfo.environment[postgresVariable], !text.isEmpty else { return nil }
        guard case .postgres(let location)? = DatabaseURL.parse(text) else {
            fatalError("\(postgresVariable) is not a postgres:// URL: \(text)")
        }
        return location
    }

    /// SQLite always; PostgreSQL as well when configured. A configured but unreachable server fails the tests
    /// that use it: it is never skipped.
    public static var kinds: [StoreKind] {
        postgresServer == nil ? [.sqlite] : [.sqlite, .postgres]
    }

    /// Quiet by default; `BALLAST_TEST_LOG_LEVEL=debug` shows what the stores do.
    public static let logger: Logger = {
        let level = ProcessInfo.processInfo.environment["BALLAST_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .error
        return LogOutput.makeLogger(label: "ballast-test", level: level, sink: .standardError)
    }()

    /// A brand-new, empty store of `kind` that exists only while `body` runs: a temp SQLite file, or a new
    /// PostgreSQL database (dropped afterwards).
    public static func withFreshURL<R: Sendable>(
        _ kind: StoreKind, _ body: @Sendable (DatabaseURL) async throws -> R
    ) async throws -> R {
        switch kind {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory
                .appendingPathComponent("ballast-test-\(UUID().uuidString.lowercased())")
            defer { try? FileManager.default.removeItem(at: folder) }
            return try await body(.sqliteFile(path: folder.appendingPathComponent("test.sqlite").path))
        case .postgres:
            guard let server = postgresServer else {
                throw StorageError.unavailable("\(postgresVariable) is not set")
            }
            let name = "ballast_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
            try await administer(server) { sql in try await sql.raw("CREATE DATABASE \(ident: String(name))").run() }
            recordPostgresDatabase(String(name))
            do {
                let result = try await body(.postgres(server.withDatabase(String(name))))
                try await dropDatabase(String(name), on: server)
                return result
            } catch {
                try? await dropDatabase(String(name), on: server)
                throw error
            }
        }
    }

    /// How long a test's request waits for a pooled connection. Longer than the 30 s a server waits: tests
    /// queue hundreds of concurrent writers on a shared two-core machine while other suites run, and they prove
    /// exact outcomes, not latency (the bounded wait itself has a test of its own with a short one).
    public static let poolWait: Duration = .seconds(300)

    /// How long getting a PostgreSQL connection may take before a test's store counts the server as unreachable.
    /// Longer than the 5 s a server allows, for the same reason: when every suite starts at once on two cores, a new
    /// session can take seconds to come up, and that is load, not an outage. (Tests of outages use servers that are
    /// really down, with the server's own limit.)
    public static let connectWait: Duration = .seconds(60)

    /// A fresh store of `kind`, open and running, migrated unless `migrate` is false.
    public static func withDatabase<R: Sendable>(
        _ kind: StoreKind, migrate: Bool = true, poolSize: Int = 10,
        _ body: @Sendable (Database) async throws -> R
    ) async throws -> R {
        try await withFreshURL(kind) { url in
            try await Database.withRunning(url, poolSize: poolSize, poolWait: poolWait, connectWait: TestStores.connectWait, logger: logger) { database in
                if migrate { try await Migrator(database: database, logger: logger).migrate() }
                return try await body(database)
            }
        }
    }

    /// CI counts the PostgreSQL databases tests created (one line each in `BALLAST_TEST_POSTGRES_MARKER`), to
    /// prove the PostgreSQL half of the suite ran.
    private static func recordPostgresDatabase(_ name: String) {
        guard let path = ProcessInfo.processInfo.environment["BALLAST_TEST_POSTGRES_MARKER"], !path.isEmpty,
              let handle = FileHandle(forWritingAtPath: path)
        else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data((name + "\n").utf8))
    }

    private static func dropDatabase(_ name: String, on server: DatabaseURL.PostgresLocation) async throws {
        try await administer(server) { sql in
            try await sql.raw("DROP DATABASE IF EXISTS \(ident: name) WITH (FORCE)").run()
        }
    }

    /// Runs statements that cannot run in a transaction (CREATE/DROP DATABASE) on the server's own database.
    private static func administer(
        _ server: DatabaseURL.PostgresLocation, _ body: @Sendable (any SQLDatabase) async throws -> Void
    ) async throws {
        try await Database.withRunning(.postgres(server), poolSize: 1, connectWait: TestStores.connectWait, logger: logger) { database in
            try await database.read { sql in try await body(sql) }
        }
    }
}
