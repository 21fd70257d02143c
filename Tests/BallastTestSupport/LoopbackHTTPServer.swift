import Hummingbird
import Logging
import Synchronization

/// A router served on 127.0.0.1 at a free port: the real HTTP peer of tests that play a provider, a webhook or a
/// whole target. `run` starts it, waits until it listens, and stops it after `body`.
public final class LoopbackHTTPServer: Sendable {
    private let port = Mutex<Int?>(nil)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port.withLock { $0 } ?? 0)" }

    private init() {}

    public static func run(_ router: Router<BasicRequestContext>, _ body: (LoopbackHTTPServer) async throws -> Void) async throws {
        let server = LoopbackHTTPServer()
        try await server.start(router)
        do {
            try await body(server)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    private func start(_ router: Router<BasicRequestContext>) async throws {
        var logger = Logger(label: "loopback-http-server")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { [self] channel in setPort(channel.localAddress?.port) }, logger: logger)
        task.withLock { $0 = Task { try await app.runService() } }
        for _ in 0..<500 where port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        guard port.withLock({ $0 }) != nil else { throw CancellationError() }
    }

    private func setPort(_ value: Int?) { port.withLock { $0 = value } }

    private func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = await running?.result
    }
}
