import BallastCore
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
        let response: Response
        var injected = false
        do {
            response = try await next(request, context)
        } catch {
            // An injected read fault is a 5xx the experiment asked for: the steady-state guard watches only the
            // ones it did not.
            injected = error is InjectedFault
            response = renderer.response(for: error, request: request, context: context)
        }
        let dimensions = [
            ("method", request.method.rawValue),
            ("route", context.endpointPath ?? "unmatched"),
            ("status", String(response.status.code)),
        ]
        Counter(label: "http_requests_total", dimensions: dimensions, factory: factory).increment()
        Timer(label: "http_request_duration_seconds", dimensions: dimensions, factory: factory)
            .recordInterval(since: started)
        if request.uri.path.hasPrefix("/api/") {
            steadyState.record(serverError: response.status.code >= 500 && !injected)
        }
        return response
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.wholeNanoseconds)
    }
}
