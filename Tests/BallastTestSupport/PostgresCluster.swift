import Foundation

/// A PostgreSQL server of a test's own, in a temporary folder on 127.0.0.1, that the test may crash
/// (`pg_ctl stop -m immediate`) and start again: the nemesis's database. Needs the server binaries (`initdb`,
/// `pg_ctl`; found under /usr/lib/postgresql/*/bin, or where `BALLAST_TEST_PG_BIN` says). As root they run as the
/// `postgres` user, which refuses to run them as root.
public final class PostgresCluster: Sendable {
    public let port: Int
    public let folder: URL
    let binaries: URL

    /// The highest installed version's binaries, or nil when none is installed.
    public static var binaries: URL? {
        if let configured = ProcessInfo.processInfo.environment["BALLAST_TEST_PG_BIN"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted()
        guard let newest = versions.last else { return nil }
        let bin = URL(fileURLWithPath: "\(root)/\(newest)/bin")
        return FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("pg_ctl").path) ? bin : nil
    }

    public struct Failed: Error, CustomStringConvertible {
        public let description: String
    }

    private init(port: Int, folder: URL, binaries: URL) {
        self.port = port
        self.folder = folder
        self.binaries = binaries
    }

    /// A new, started server on `port` (initdb in a temporary folder).
    public static func create(port: Int) async throws -> PostgresCluster {
        guard let binaries else { throw Failed(description: "no PostgreSQL server binaries (initdb, pg_ctl) are installed") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ballast-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let cluster = PostgresCluster(port: port, folder: folder, binaries: binaries)
        if getuid() == 0 { try await run("/bin/chown", ["postgres:postgres", folder.path]) }
        try await cluster.tool("initdb", ["-D", cluster.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        try await cluster.start()
        return cluster
    }

    var data: String { folder.appendingPathComponent("data").path }

    /// Starts the server and waits until it accepts connections.
    public func start() async throws {
        try await tool("pg_ctl", [
            "-D", data, "-l", folder.appendingPathComponent("server.log").path, "-w", "-t", "60",
            "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(folder.path) -c max_connections=200 -c fsync=on",
            "start",
        ])
    }

    /// Crashes the server: every backend dies at once, as in a power cut (committed work survives, WAL replays).
    public func stopImmediately() async throws {
        try await tool("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "60", "stop"])
    }

    /// Stops the server (if it runs) and removes its folder.
    public func destroy() async {
        try? await tool("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "60", "stop"])
        try? FileManager.default.removeItem(at: folder)
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME?tlsmode=disable`.
    public func url(_ database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)?tlsmode=disable"
    }

    /// Creates a database.
    public func createDatabase(_ name: String) async throws {
        try await tool("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name])
    }

    private func tool(_ name: String, _ arguments: [String]) async throws {
        let path = binaries.appendingPathComponent(name).path
        let command = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", path] : [path]
        // Through a shell that first closes every descriptor this process lent it: the server pg_ctl starts would
        // otherwise hold them (the test's sockets, and what the child-process machinery watches for the exit).
        try await Self.run("/bin/bash", [
            "-c", #"for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#, "bash",
        ] + command + arguments)
    }

    /// Runs a program to its end (at most two minutes); throws with its output when it fails. Output goes to a
    /// file, not a pipe: a server the program starts inherits it and would hold a pipe open for good.
    static func run(_ program: String, _ arguments: [String]) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ballast-pg-tool-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let process = try ChildProcess(program, arguments, output: .file(log.path))
        let status: Int32
        do {
            status = try await process.wait(timeout: .seconds(120))
        } catch {
            throw Failed(description: "\(program) \(arguments.joined(separator: " ")) did not finish")
        }
        guard status == 0 else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw Failed(description: "\(program) \(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
    }
}
