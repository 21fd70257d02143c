import BallastCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Logging

/// Gives every request an id: the caller's `X-Request-Id` when it is 1–128 characters of `[A-Za-z0-9._-]`,
/// else a new one. The id goes into every log line of the request and back to the caller in `X-Request-Id`.
/// Outermost middleware: it also renders any error that escaped the others, so even that response has the id.
struct RequestIDMiddleware<Context: BallastRequestContext>: RouterMiddleware {
    static var headerName: HTTPField.Name { HTTPField.Name("X-Request-Id")! }
    static var maxLength: Int { 128 }

    let renderer: ErrorRenderer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestId = request.headers[Self.headerName].flatMap(Self.accepted) ?? Self.generate()
        context.requestId = requestId
        context.logger[metadataKey: "requestId"] = .string(requestId)
        // The framework reads its own key; keep it equal to ours (log lines show only `requestId`).
        context.logger[metadataKey: "hb.request.id"] = .string(requestId)
        var response = await renderer.respond(to: request, context: context, next: next)
        response.headers[Self.headerName] = requestId
        return response
    }

    static func accepted(_ value: String) -> String? {
        guard !value.isEmpty, value.utf8.count <= maxLength,
              value.utf8.allSatisfy({ byte in
                  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                      || byte == 0x2E || byte == 0x5F || byte == 0x2D
              })
        else { return nil }
        return value
    }

    static func generate() -> String {
        UUID.random().lowercasedString
    }
}
