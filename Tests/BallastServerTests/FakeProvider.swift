import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
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
    private let address = Mutex("http://127.0.0.1:0")

    var url: String { address.withLock { $0 } }
    var requests: [Received] { received.withLock { $0 } }
    /// Idempotency keys that were being handled twice at the same moment.
    var overlappingKeys: Set<String> { overlapping.withLock { $0 } }

    func answer(_ configure: (inout Reply) -> Void) { reply.withLock { configure(&$0) } }

    /// The routes: every POST answers what the test set, after the delay it set.
    private func router() -> Router<BasicRequestContext> {
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
        return router
    }

    /// Runs `body` with a started provider, stopping it afterwards.
    static func with(_ body: (FakeProvider) async throws -> Void) async throws {
        let provider = FakeProvider()
        try await LoopbackHTTPServer.run(provider.router()) { server in
            provider.address.withLock { $0 = server.url }
            try await body(provider)
        }
    }
}
