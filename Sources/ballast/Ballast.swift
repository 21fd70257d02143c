import ArgumentParser
import BallastServer

@main
struct Ballast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballast",
        abstract: "Ballast: a marketplace backend that stays correct when things fail.",
        discussion: """
            Settings come from the environment (see README.md for every variable); the flags of each command \
            override them. Defaults run on embedded SQLite under ./data with no set-up.
            """,
        version: BallastVersion.current,
        subcommands: [Serve.self, Migrate.self, Users.self, EvidenceCommand.self, ChaosCommand.self])
}
