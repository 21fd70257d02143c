import BallastCore
import HTTPTypes
import Hummingbird
import NIOCore
import Logging

/// One JSON log line per request when it finishes: method, route (the matched template, not the raw path, so
/// ids stay out of it), status, durationMs and the request id (from the logger's metadata).
/// Headers are never logged, so tokens cannot leak through here.
struct AccessLogMiddleware<Context: BallastRequestContext>: RouterMiddleware {
    let renderer: ErrorRenderer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = await renderer.respond(to: request, context: context, next: next)
        let elapsed = ContinuousClock.now - started
        let milliseconds = elapsed.inMilliseconds
        context.logger.info("request", metadata: [
            "method": .string(request.method.rawValue),
            "route": .string(context.endpointPath ?? "unmatched"),
            "status": .stringConvertible(response.status.code),
            "durationMs": .stringConvertible((milliseconds * 1000).rounded() / 1000),
        ])
        return response
    }
}
