import BallastCore
import HTTPTypes
import Hummingbird
import Tracing

/// One server span per request (outermost, and added only when tracing is on): named by method and route template
/// (`POST /api/orders`), with the status code, failed on a 5xx. A caller's W3C `traceparent` makes it a child of
/// the caller's span. Everything the request does (database transactions, outbound calls, its log lines) runs
/// inside it.
struct TracingMiddleware<Context: BallastRequestContext>: RouterMiddleware {

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let method = request.method.rawValue
        return try await Traces.serving(
            method, traceParent: request.headers[traceParentField], traceState: request.headers[traceStateField]
        ) { span in
            span.attributes["http.request.method"] = method
            do {
                let response = try await next(request, context)
                finish(span, context: context, status: Int(response.status.code))
                return response
            } catch {
                finish(span, context: context, status: (error as? any HTTPResponseError).map { Int($0.status.code) } ?? 500)
                throw error
            }
        }
    }

    private func finish(_ span: any Span, context: Context, status: Int) {
        if let route = context.endpointPath {
            span.operationName = "\(span.operationName) \(route)"
            span.attributes["http.route"] = route
        }
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
    }
}

private let traceParentField = HTTPField.Name(Traces.traceParentHeader)!
private let traceStateField = HTTPField.Name(Traces.traceStateHeader)!
