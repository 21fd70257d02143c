import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A real HTTP server on 127.0.0.1 that plays a shipping provider or a notification webhook in tests: it answers
/// what the test tells it to, after an optional delay, and remembers every request it got.
final class FakeProvider: Sendable {
    struct Reply: Sendable {
        var status: HTTPResponse.Status = .ok
        var body: String = #"{"amount":700,"currency":"USD"}"#
        var headers: HTTPFields = [:]
        var delay: Duration = .zero
    }

    struct Received: Sendable {
        let path: String
        let headers: HTTPFields
        let body: String
    }

    private let reply = Mutex(Reply())
    /// Requests in progress by Idempotency-Key, and keys seen twice at the same time.
    private let inFlight = Mutex<[String: Int]>([:])
    private let overlapping = Mutex<Set<String>>([])
    private let received = Mutex<[Received]>([])
    private let port = Mutex<Int?>(nil)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    var url: String { "http://127.0.0.1:\(port.withLock { $0 } ?? 0)" }
    var requests: [Received] { received.withLock { $0 } }
    /// Idempotency keys that were being handled twice at the same moment.
    var overlappingKeys: Set<String> { overlapping.withLock { $0 } }

    func answer(_ configure: (inout Reply) -> Void) { reply.withLock { configure(&$0) } }

    /// Starts the server and waits until it listens.
    func start() async throws {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { [self] request, _ in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            received.withLock {
                $0.append(Received(path: request.uri.path, headers: request.headers, body: String(buffer: buffer)))
            }
            let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
            let concurrent = inFlight.withLock { $0[key, default: 0] += 1; return $0[key]! }
            if concurrent > 1 { _ = overlapping.withLock { $0.insert(key) } }
            defer { inFlight.withLock { $0[key, default: 1] -= 1 } }
            let current = reply.withLock { $0 }
            if current.delay > .zero { try await Task.sleep(for: current.delay) }
            var headers = current.headers
            headers[.contentType] = "application/json"
            return Response(status: current.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: current.body)))
        }
        router.post("/", use: handler)
        router.post("/**", use: handler)
        var logger = Logger(label: "fake-provider")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { [self] channel in setPort(channel.localAddress?.port) }, logger: logger)
        task.withLock { $0 = Task { try await app.runService() } }
        for _ in 0..<500 where port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        guard port.withLock({ $0 }) != nil else { throw CancellationError() }
    }

    private func setPort(_ value: Int?) { port.withLock { $0 = value } }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = await running?.result
    }

    /// Runs `body` with a started provider, stopping it afterwards.
    static func with(_ body: (FakeProvider) async throws -> Void) async throws {
        let provider = FakeProvider()
        try await provider.start()
        do {
            try await body(provider)
            await provider.stop()
        } catch {
            await provider.stop()
            throw error
        }
    }
}
