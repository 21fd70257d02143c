import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Marketplace

extension Request {
    /// Reads the body (at most 1 MiB) as a JSON object. Not JSON → 400 `malformed_json`; JSON but not an object
    /// → 422. The Content-Type header is not consulted: every body is JSON here, and command-line clients often
    /// send JSON labelled as a form.
    func jsonObject() async throws -> InputObject {
        guard let input = try await optionalJSONObject() else {
            throw AppError(.malformedJSON, "the request body is empty; expected a JSON object")
        }
        return input
    }

    /// As ``jsonObject()``, but an empty body is `nil` (for actions whose fields are all optional).
    func optionalJSONObject() async throws -> InputObject? {
        let buffer = try await body.collect(upTo: BodyLimitMiddleware<AppRequestContext>.maxBytes)
        guard buffer.readableBytes > 0 else { return nil }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView))
        } catch {
            throw AppError(.malformedJSON, "the request body is not valid JSON")
        }
        return try InputObject(value)
    }
}
