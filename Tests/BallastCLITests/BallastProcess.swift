import BallastTestSupport
import Foundation
import Synchronization

/// Runs the built `ballast` executable as a separate process, the way a user or a supervisor would.
final class BallastProcess: Sendable {
    let process: ChildProcess

    /// The `ballast` binary next to the test bundle in the build folder.
    static var executable: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for folder in candidates {
            let binary = folder.appendingPathComponent("ballast")
            if FileManager.default.isExecutableFile(atPath: binary.path) { return binary }
        }
        fatalError("the ballast executable was not found next to the tests (looked in \(candidates))")
    }

    init(_ arguments: [String], environment: [String: String], workingDirectory: URL? = nil) throws {
        // Only what the test passes, plus PATH and HOME: the developer's own settings must not leak in.
        var variables = environment
        let inherited = ProcessInfo.processInfo.environment
        variables["PATH"] = inherited["PATH"] ?? "/usr/bin:/bin"
        variables["HOME"] = inherited["HOME"] ?? "/tmp"
        process = try ChildProcess(Self.executable.path, arguments, environment: variables, workingDirectory: workingDirectory?.path)
    }

    /// Runs to completion (at most `timeout`) and returns exit status and output.
    static func run(
        _ arguments: [String], environment: [String: String], workingDirectory: URL? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try BallastProcess(arguments, environment: environment, workingDirectory: workingDirectory)
        let status = try await child.wait(timeout: timeout)
        return (status, child.readStdout(), child.readStderr())
    }

    /// Waits for the process to exit and its output to drain; kills it and throws after `timeout`.
    func wait(timeout: Duration) async throws -> Int32 {
        do {
            return try await process.wait(timeout: timeout)
        } catch {
            throw TimedOut(what: process.description)
        }
    }

    func signal(_ signal: Int32) { process.signal(signal) }

    /// Kills the process (SIGKILL) if it still runs and waits, at most `timeout`, until it is gone. Never blocks
    /// longer than that, so a test's clean-up cannot hang the run.
    func stop(timeout: Duration = .seconds(30)) { process.stop(timeout: timeout) }

    /// Everything the process wrote to stdout so far (after exit: all of it, once the pipe has drained).
    func readStdout() -> String { process.standardOutput }
    func readStderr() -> String { process.standardError }

    struct TimedOut: Error, CustomStringConvertible {
        let what: String
        var description: String { "\(what) did not finish in time" }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a child process to listen on.
///
/// Chosen below the kernel's ephemeral range, where no port-0 listener of this test process (the in-process apps,
/// fake providers) and no outgoing connection is ever given a number: a child's port picked from that range could
/// be taken by one of them between the pick and the child's bind, or right after the child dies, and the test
/// would then talk to a stranger.
func freeLoopbackPort() throws -> Int {
    let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { Int($0.split(whereSeparator: \.isWhitespace).first ?? "") } ?? 32768
    if ephemeralStart > 12_000 {
        for _ in 0..<200 {
            let port = Int.random(in: 10_000..<ephemeralStart)
            if (try? bindLoopback(port: port)) == port { return port }
        }
    }
    return try bindLoopback(port: 0)
}

/// Binds a TCP socket to 127.0.0.1:`port` (0: any) and closes it; answers the port bound.
private func bindLoopback(port: Int) throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else { throw POSIXError(.EINVAL) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func isListening(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return result == 0
}

/// A plain TCP connection to 127.0.0.1, for sending a request in pieces (to hold it in flight).
final class RawConnection {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(descriptor)
            throw POSIXError(.ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw POSIXError(.EPIPE) }
            offset += written
        }
    }

    /// Reads until the peer closes the connection or the read times out.
    func receiveAll() -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
