import DomainValues
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce

/// Refuses bodies over 1 MiB with 413 before a handler sees them: at once when `Content-Length` says so, and
/// while reading otherwise (handlers read with this same limit).
struct BodyLimitMiddleware<Context: BallastRequestContext>: RouterMiddleware {
    static var maxBytes: Int { 1 << 20 }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > Self.maxBytes {
            throw AppError(
                .payloadTooLarge, "request body is \(declared) bytes; the limit is \(Self.maxBytes) bytes (1 MiB)",
                details: ["limitBytes": .integer(Int64(Self.maxBytes))])
        }
        return try await next(request, context)
    }
}
