@testable import BallastServer
import DomainValues
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Telemetry
import Testing

/// Errors that are not bugs never become a 500: the renderer alone, on errors no route can be made to throw on
/// purpose.
@Suite struct ErrorRendererTests {
    private func render(_ error: any Error, metrics: MetricsRegistry = MetricsRegistry()) throws -> Response {
        let context = AppRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let request = Request(
            head: HTTPRequest(method: .post, scheme: "http", authority: "127.0.0.1", path: "/api/wallets/x/debit"),
            body: RequestBody(buffer: ByteBuffer()))
        return ErrorRenderer(metrics: metrics.factory).response(for: error, request: request, context: context)
    }

    /// A request whose task was cancelled (the server stopping under it) is a 503 the caller retries, not an
    /// internal error.
    @Test func aCancelledRequestIsServiceUnavailableWithRetryAfter() throws {
        let metrics = MetricsRegistry()
        let response = try render(CancellationError(), metrics: metrics)
        #expect(response.status == .serviceUnavailable)
        #expect(response.headers[.retryAfter] == "1")
        #expect(!metrics.render().contains("http_internal_errors_total{"))
    }

    /// An error nobody foresaw stays a 500 `internal`: the check above is not a renderer that answers 503 to all.
    @Test func anUnforeseenErrorIsStillInternal() throws {
        struct Unforeseen: Error {}
        let metrics = MetricsRegistry()
        #expect(try render(Unforeseen(), metrics: metrics).status == .internalServerError)
        #expect(metrics.render().contains("http_internal_errors_total{"))
    }
}
