import ArgumentParser
import BallastConfig
import DomainValues
import Foundation
import Logging
import Commerce
import Storage

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage users.",
        subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user and print its token (shown only this once).",
            discussion: """
                Prints one JSON object on stdout: {"id", "name", "role", "token"}. Only the token's SHA-256 is \
                stored, so a lost token cannot be recovered: create a new user instead.
                """)

        @Option(help: "The user's display name (1-200 characters).")
        var name: String

        @Option(help: "admin or member.")
        var role: String

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let config = try CommandSupport.loadConfig(overrides: store.overrides)
            let logger = CommandSupport.bootstrapLogging(config, sink: .standardError)
            let userName: UserName
            do {
                userName = try UserName(name)
            } catch let error as AppError {
                CommandSupport.printError("error: --name: \(error.message)")
                throw ExitCode(2)
            }
            guard let userRole = Role(rawValue: role) else {
                CommandSupport.printError("error: --role must be admin or member, got \"\(role)\"")
                throw ExitCode(2)
            }
            do {
                let created = try await Database.withRunning(config.databaseURL, poolSize: 2, logger: logger) { database in
                    try await database.waitUntilReachable(timeout: .seconds(30))
                    let migrator = Migrator(database: database, logger: logger)
                    if config.migrateOnStart {
                        try await migrator.migrate()
                    } else if try await !migrator.pendingVersions().isEmpty {
                        throw ValidationError("the schema is behind this build: run `ballast migrate` first")
                    }
                    return try await UserService(database: database).create(
                        name: userName, role: userRole, by: AuditActor(system: "cli:users-create"))
                }
                let output: [String: String] = [
                    "id": created.user.id.description, "name": created.user.name,
                    "role": created.user.role.rawValue, "token": created.token,
                ]
                let data = try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                CommandSupport.printError("The token is shown only this once; keep it somewhere safe.")
            } catch {
                CommandSupport.printError("error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
