import ChaosKit
import HTTPTypes
import Hummingbird
import NIOCore
import Metrics

/// Counts requests and records their durations by method, route template and status:
/// `http_requests_total` and `http_request_duration_seconds` (a histogram). API requests also feed the
/// steady-state guard of fault injection.
struct HTTPMetricsMiddleware<Context: BallastRequestContext>: RouterMiddleware {
    let factory: any MetricsFactory
    let renderer: ErrorRenderer
    let steadyState: SteadyStateGuard

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = await renderer.respond(to: request, context: context, next: next)
        let dimensions = [
            ("method", request.method.rawValue),
            ("route", context.endpointPath ?? "unmatched"),
            ("status", String(response.status.code)),
        ]
        Counter(label: "http_requests_total", dimensions: dimensions, factory: factory).increment()
        Timer(label: "http_request_duration_seconds", dimensions: dimensions, factory: factory)
            .recordInterval(since: started)
        if request.uri.path.hasPrefix("/api/") {
            steadyState.record(serverError: response.status.code >= 500)
        }
        return response
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
