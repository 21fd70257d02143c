import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, for tests that run `ballast` or a tool the way a user would.
///
/// Not Foundation's `Process`: on Linux it closes, one action per descriptor, every descriptor the parent has open,
/// and it crashed inside `Process.run()` in a test process holding about 1,400 of them (a hundred stores open at
/// once). Here the child closes everything above stderr in one step (`closefrom`), whatever the parent holds.
public final class ChildProcess: Sendable {
    /// Where the child's stdout and stderr go.
    public enum Output: Sendable {
        /// Into buffers read with ``standardOutput`` and ``standardError``.
        case capture
        /// Both appended to this file (a server the child starts may hold it open for good; a file does not mind).
        case file(String)
        /// Nowhere.
        case discard
    }

    public let pid: pid_t
    public let description: String
    private let status = Mutex<Int32?>(nil)
    private let buffers = Mutex((stdout: Data(), stderr: Data(), openReaders: 0))

    /// Starts `executable` (an absolute path) with `arguments`; `environment` replaces the parent's (nil: inherit
    /// it). Stdin is /dev/null.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
        output: Output = .capture
    ) throws {
        description = ([executable] + arguments).joined(separator: " ")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var toClose: [Int32] = []
        var readers: [(fd: Int32, stdout: Bool)] = []
        defer { for fd in toClose { close(fd) } }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        switch output {
        case .capture:
            for (target, isStdout) in [(Int32(1), true), (Int32(2), false)] {
                var ends: [Int32] = [-1, -1]
                guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
                // Neither end may leak into other children spawned meanwhile (the child's copy is made by dup2).
                _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
                posix_spawn_file_actions_adddup2(&actions, ends[1], target)
                toClose.append(ends[1])
                readers.append((ends[0], isStdout))
            }
        case .file(let path):
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw POSIXError(.ENOENT) }
            toClose.append(fd)
            posix_spawn_file_actions_adddup2(&actions, fd, 1)
            posix_spawn_file_actions_adddup2(&actions, fd, 2)
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        guard Self.addCloseFrom(&actions, 3) else {
            for reader in readers { close(reader.fd) }
            throw Unsupported(description: "posix_spawn_file_actions_addclosefrom_np is not available")
        }
        if let workingDirectory { Self.addChdir(&actions, workingDirectory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (a terminal's Ctrl-C is not the child's), no signal blocked.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let variables = environment ?? ProcessInfo.processInfo.environment
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            for reader in readers { close(reader.fd) }
            throw Failed(description: "could not start \(executable): \(String(cString: strerror(spawned)))")
        }
        pid = child
        buffers.withLock { $0.openReaders = readers.count }
        for reader in readers { startReading(reader.fd, stdout: reader.stdout) }
    }

    /// Drains one pipe on a thread of its own until the child (and whatever inherited it) closes it.
    private func startReading(_ fd: Int32, stdout: Bool) {
        Thread.detachNewThread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(fd, &chunk, chunk.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                let data = Data(chunk[0..<count])
                buffers.withLock { if stdout { $0.stdout.append(data) } else { $0.stderr.append(data) } }
            }
            close(fd)
            buffers.withLock { $0.openReaders -= 1 }
        }
    }

    /// The exit status once the child has ended (its signal number if a signal ended it), else nil. Reaps it.
    public var exitStatus: Int32? {
        status.withLock { known in
            if let known { return known }
            var raw: Int32 = 0
            let reaped = waitpid(pid, &raw, WNOHANG)
            guard reaped == pid else { return nil }
            let signal = raw & 0x7f
            known = signal == 0 ? (raw >> 8) & 0xff : signal
            return known
        }
    }

    public var isRunning: Bool { exitStatus == nil }

    /// Waits for the child to end (at most `timeout`; then kills it and throws) and for its output to drain.
    public func wait(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let exit = exitStatus {
                let drained = ContinuousClock.now + .seconds(2)
                while buffers.withLock({ $0.openReaders }) > 0, ContinuousClock.now < drained {
                    try await Task.sleep(for: .milliseconds(10))
                }
                return exit
            }
            if ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                throw Failed(description: "\(description) did not finish in time")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Sends `signal` unless the child has been reaped (its pid may belong to another process by then).
    public func signal(_ signal: Int32) {
        status.withLock { known in if known == nil { _ = kill(pid, signal) } }
    }

    /// Kills the child (SIGKILL) if it still runs and waits, at most `timeout`, until it is gone. Never blocks longer.
    public func stop(timeout: Duration = .seconds(30)) {
        guard isRunning else { return }
        signal(SIGKILL)
        let deadline = ContinuousClock.now + timeout
        while isRunning, ContinuousClock.now < deadline { usleep(20_000) }
    }

    public var standardOutput: String { buffers.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    public var standardError: String { buffers.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    public struct Failed: Error, CustomStringConvertible {
        public let description: String
    }

    public struct Unsupported: Error, CustomStringConvertible {
        public let description: String
    }

    // glibc's `_np` spawn actions, found at run time (the C library has them since 2.29 and 2.34; the Swift module
    // of its headers need not declare them).
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias Chdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        guard let address = dlsym(nil, name) else { return nil }
        return unsafeBitCast(address, to: type)
    }

    private static func addCloseFrom(_ actions: inout posix_spawn_file_actions_t, _ lowest: Int32) -> Bool {
        guard let closeFrom = symbol("posix_spawn_file_actions_addclosefrom_np", as: CloseFrom.self) else { return false }
        return closeFrom(&actions, lowest) == 0
    }

    private static func addChdir(_ actions: inout posix_spawn_file_actions_t, _ folder: String) {
        guard let chdir = symbol("posix_spawn_file_actions_addchdir_np", as: Chdir.self) else { return }
        _ = folder.withCString { chdir(&actions, $0) }
    }
}
