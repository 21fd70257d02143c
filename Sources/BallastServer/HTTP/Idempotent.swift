import HTTPTypes
import Hummingbird
import Commerce
import NIOCore

/// The HTTP side of a command (``IdempotentCommands``): what the caller sent, as a ``CommandRequest`` (the body, the
/// `Idempotency-Key` header, method and path), and the answer as a response (`Idempotent-Replayed: true` on a
/// replay of a stored answer).
enum CommandHTTP {
    static var keyHeader: HTTPField.Name { HTTPField.Name("Idempotency-Key")! }
    static var replayedHeader: HTTPField.Name { HTTPField.Name("Idempotent-Replayed")! }

    static func command(_ request: Request) async throws -> CommandRequest {
        CommandRequest(body: try await request.jsonBody(), key: request.headers[keyHeader],
                       method: request.method.rawValue, path: request.uri.path)
    }

    static func response<Value>(_ answer: CommandAnswer<Value>) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if answer.replayed { headers[replayedHeader] = "true" }
        return Response(status: HTTPResponse.Status(code: answer.status), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: answer.body)))
    }

    /// `value` as the caller sees it, in the one JSON form every answer uses (what a replay sends back too).
    static func render(_ value: some Encodable) throws -> String {
        String(decoding: try JSONResponse.encoder.encode(value), as: UTF8.self)
    }

    /// As above, for a body written by hand (the same text, without `Codable`'s cost).
    static func render(_ value: some HandWrittenJSON) throws -> String {
        String(decoding: value.jsonBytes, as: UTF8.self)
    }
}
