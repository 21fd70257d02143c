import BallastTestSupport
import SQLKit
import Storage
import Testing

@Suite("Migrations", .timeLimit(.minutes(10)))
struct MigrationTests {
    @Test(arguments: TestStores.kinds)
    func migratingTwiceIsANoOp(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind, migrate: false) { database in
            let migrator = Migrator(database: database, logger: TestStores.logger)
            #expect(try await migrator.pendingVersions() == Schema.migrations.map(\.version))
            let first = try await migrator.migrate()
            #expect(first == Schema.migrations.map(\.version))
            let second = try await migrator.migrate()
            #expect(second.isEmpty)
            #expect(try await migrator.pendingVersions().isEmpty)
            let recorded = try await database.read { sql in
                try await sql.raw("SELECT count(*) AS n FROM schema_migrations").first()!.decode(column: "n", as: Int.self)
            }
            #expect(recorded == Schema.migrations.count)
        }
    }

    /// Several processes starting at once: each migrator has its own pool (as separate processes would), and
    /// exactly one of them applies each version.
    @Test(arguments: TestStores.kinds)
    func concurrentMigratorsApplyEachVersionOnce(kind: StoreKind) async throws {
        try await TestStores.withFreshURL(kind) { url in
            let results = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                            try await Migrator(database: database, logger: TestStores.logger).migrate()
                        }
                    }
                }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            #expect(results.count == 8)
            #expect(results.filter { !$0.isEmpty } == [Schema.migrations.map(\.version)])
            try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                let versions = try await database.read { sql in
                    try await sql.raw("SELECT version FROM schema_migrations ORDER BY version").all()
                        .map { try $0.decode(column: "version", as: Int.self) }
                }
                #expect(versions == Schema.migrations.map(\.version))
            }
        }
    }

    /// A store upgraded from the version before each migration, with the rows a running system had by then, takes
    /// the rest of the migrations and keeps its rows (a chaos change stored before migration 9, for one).
    @Test(arguments: TestStores.kinds)
    func aStoreInUseUpgradesFromEveryEarlierVersion(kind: StoreKind) async throws {
        for last in Schema.migrations.map(\.version).dropLast() {
            try await TestStores.withDatabase(kind, migrate: false) { database in
                let older = Schema.migrations.filter { $0.version <= last }
                try await Migrator(database: database, migrations: older, logger: TestStores.logger).migrate()
                if last >= 3 {
                    // A chaos change stored at run time (the table exists from migration 3 on).
                    try await database.transaction { sql in
                        try await sql.raw("""
                            INSERT INTO chaos_state (id, version, enabled, fail_rate, scope, seed, expires_at_micros, latency_ms,
                                                     reason, updated_by, updated_at_micros)
                            VALUES (1, 4, 1, 0.25, 'all_writes', 'kept', NULL, 0, 'operator', 'someone', 1)
                            ON CONFLICT (id) DO UPDATE SET version = 4, enabled = 1, fail_rate = 0.25, scope = 'all_writes',
                                seed = 'kept', reason = 'operator', updated_by = 'someone', updated_at_micros = 1
                            """).run()
                    }
                }
                if last >= 9 {
                    // A shadow write still queued (the outbox exists from migration 9 on).
                    try await database.transaction { sql in
                        try await sql.raw("""
                            INSERT INTO shadow_outbox (entity_type, entity_id, version, operation, request_id, enqueued_at_micros)
                            VALUES ('listing', 'kept-listing', 1, 'create', NULL, 1)
                            """).run()
                    }
                }
                let applied = try await Migrator(database: database, logger: TestStores.logger).migrate()
                #expect(applied == Schema.migrations.map(\.version).filter { $0 > last }, "from version \(last)")
                if last >= 3 {
                    let seed = try await database.read { sql in
                        try await sql.raw("SELECT seed FROM chaos_state WHERE id = 1").first()?.decode(column: "seed", as: String.self)
                    }
                    #expect(seed == "kept", "from version \(last)")
                }
                if last >= 9 {
                    let queued = try await database.read { sql in
                        try await sql.raw("SELECT count(*) AS n FROM shadow_outbox WHERE entity_id = 'kept-listing' AND trace_parent IS NULL")
                            .first()!.decode(column: "n", as: Int.self)
                    }
                    #expect(queued == 1, "from version \(last)")
                }
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func aFailingMigrationLeavesNothingBehind(kind: StoreKind) async throws {
        let broken = Schema.migrations + [
            Migration(version: 9_999, name: "broken", both: [
                "CREATE TABLE half_done (id INTEGER PRIMARY KEY)",
                "THIS IS NOT SQL",
            ]),
        ]
        try await TestStores.withDatabase(kind, migrate: false) { database in
            let migrator = Migrator(database: database, migrations: broken, logger: TestStores.logger)
            await #expect(throws: (any Error).self) { try await migrator.migrate() }
            // All or nothing: not even the first migrations or their ledger rows were kept.
            let pending = try await Migrator(database: database, logger: TestStores.logger).pendingVersions()
            #expect(pending == Schema.migrations.map(\.version))
            let tableQuery: SQLQueryString = database.dialect == .sqlite
                ? "SELECT count(*) AS n FROM sqlite_master WHERE name = 'half_done'"
                : "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'half_done'"
            let leftovers = try await database.read { sql in
                try await sql.raw(tableQuery).first()!.decode(column: "n", as: Int.self)
            }
            #expect(leftovers == 0)
        }
    }
}
