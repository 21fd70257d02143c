import Foundation
import Logging
import SQLKit

/// Applies ``Schema/migrations`` that a store has not seen yet, all in one transaction.
///
/// Several processes may start at once against one PostgreSQL: the transaction first takes a transaction-scoped
/// advisory lock, so migrators queue, and each finds the versions the one before it recorded. On SQLite,
/// `BEGIN IMMEDIATE` gives the same queueing. Running it again when nothing is pending changes nothing.
public struct Migrator: Sendable {
    /// The advisory-lock key that serializes migrators on PostgreSQL ("ballast-migrate").
    static let advisoryLockKey: Int64 = 0x6261_6C6C_6173_7401

    public let database: Database
    public let migrations: [Migration]
    private let logger: Logger

    public init(database: Database, migrations: [Migration] = Schema.migrations, logger: Logger) {
        precondition(
            zip(migrations, migrations.dropFirst()).allSatisfy { $0.version < $1.version },
            "migration versions must be strictly ascending")
        self.database = database
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies what is pending and returns the versions applied by this call (empty when up to date).
    @discardableResult
    public func migrate() async throws -> [Int] {
        let dialect = database.dialect
        let migrations = self.migrations
        let applied: [Int] = try await database.transaction { sql in
            if dialect == .postgres {
                try await sql.raw("SELECT pg_advisory_xact_lock(\(bind: Self.advisoryLockKey))").run()
            }
            try await Self.createLedgerTable(sql)
            let done = Set(try await Self.recordedVersions(sql))
            var appliedNow: [Int] = []
            for migration in migrations where !done.contains(migration.version) {
                for statement in migration.statements(for: dialect) {
                    try await sql.raw(SQLQueryString(statement)).run()
                }
                try await sql.raw("""
                    INSERT INTO schema_migrations (version, name, applied_at_micros)
                    VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: StoredTime.nowMicros()))
                    """).run()
                appliedNow.append(migration.version)
            }
            return appliedNow
        }
        if applied.isEmpty {
            logger.debug("schema up to date", metadata: ["database": "\(database.url)"])
        } else {
            logger.info("migrations applied", metadata: [
                "database": "\(database.url)", "versions": "\(applied.map(String.init).joined(separator: ","))",
            ])
        }
        return applied
    }

    /// Versions this build knows but the store has not applied (empty when up to date).
    public func pendingVersions() async throws -> [Int] {
        let done = try await database.read { sql -> Set<Int> in
            guard try await Self.ledgerTableExists(sql, dialect: database.dialect) else { return [] }
            return Set(try await Self.recordedVersions(sql))
        }
        return migrations.map(\.version).filter { !done.contains($0) }
    }

    private static func createLedgerTable(_ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at_micros BIGINT NOT NULL
            )
            """).run()
    }

    private static func recordedVersions(_ sql: any SQLDatabase) async throws -> [Int] {
        try await sql.raw("SELECT version FROM schema_migrations ORDER BY version").all()
            .map { try $0.decode(column: "version", as: Int.self) }
    }

    private static func ledgerTableExists(_ sql: any SQLDatabase, dialect: Database.Dialect) async throws -> Bool {
        let query: SQLQueryString = dialect == .sqlite
            ? "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            : "SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
        let row = try await sql.raw(query).first()
        return try (row?.decode(column: "n", as: Int.self) ?? 0) > 0
    }
}
