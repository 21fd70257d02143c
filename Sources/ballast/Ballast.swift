import ArgumentParser
import BallastServer
import Dispatch
import Foundation
import NIOCore
import NIOPosix

/// The process's entry point: makes the event loops that already carry every socket also run Swift concurrency's
/// tasks (so a request's work does not hop between an event-loop thread and a second pool of threads; on a
/// machine with few cores those hops were a seventh of the server's time), then runs the command.
@main
enum BallastEntry {
    static func main() {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        Task {
            await Ballast.main()
            exit(0)
        }
        dispatchMain()
    }
}

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
