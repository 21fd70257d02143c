import BallastCore
import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce

extension Request {
    /// Reads the body (at most 1 MiB) as JSON. Empty or not JSON → 400 `malformed_json`. The Content-Type header
    /// is not consulted: every body is JSON here, and command-line clients often send JSON labelled as a form.
    /// The caller checks the value against its ``ObjectShape``.
    func jsonBody() async throws -> JSONValue {
        guard let value = try await optionalJSONBody() else {
            throw AppError(.malformedJSON, "the request body is empty; expected a JSON object")
        }
        return value
    }

    /// As ``jsonBody()``, but an empty body is `nil` (for actions whose fields are all optional).
    func optionalJSONBody() async throws -> JSONValue? {
        let buffer = try await body.collect(upTo: BodyLimitMiddleware<AppRequestContext>.maxBytes)
        guard buffer.readableBytes > 0 else { return nil }
        do {
            return try buffer.withUnsafeReadableBytes { try JSONValue.read($0) }
        } catch {
            throw AppError(.malformedJSON, "the request body is not valid JSON")
        }
    }
}
