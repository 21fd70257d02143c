import ArgumentParser
import BallastConfig
import Logging
import Storage

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending schema migrations to the primary store and the shadow store, then exit.",
        discussion: """
            Safe to run while servers are running and from several machines at once: migrators take turns under \
            a database lock, and a second run finds nothing to do.
            """)

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let config = try CommandSupport.loadConfig(overrides: store.overrides)
        let logger = CommandSupport.bootstrapLogging(config, sink: .standardError)
        do {
            let applied = try await Database.withRunning(
                config.databaseURL, poolSize: 2, logger: logger
            ) { database in
                try await database.waitUntilReachable(timeout: .seconds(30))
                return try await Migrator(database: database, logger: logger).migrate()
            }
            let latest = Schema.migrations.last?.version ?? 0
            if applied.isEmpty {
                print("schema is up to date at version \(latest)")
            } else {
                print("applied migrations \(applied.map(String.init).joined(separator: ", ")); schema is at version \(latest)")
            }
            if let shadowURL = config.shadowDatabaseURL {
                let appliedShadow = try await Database.withRunning(shadowURL, poolSize: 2, logger: logger) { database in
                    try await database.waitUntilReachable(timeout: .seconds(30))
                    return try await Migrator(database: database, migrations: Schema.shadowMigrations, logger: logger).migrate()
                }
                let latestShadow = Schema.shadowMigrations.last?.version ?? 0
                print(appliedShadow.isEmpty
                      ? "shadow schema is up to date at version \(latestShadow)"
                      : "shadow store: applied migrations \(appliedShadow.map(String.init).joined(separator: ", ")); at version \(latestShadow)")
            }
        } catch {
            CommandSupport.printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
