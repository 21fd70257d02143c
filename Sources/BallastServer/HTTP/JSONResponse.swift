import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce
import Telemetry

/// Builds JSON responses with one encoder configuration: RFC 3339 UTC times, stable key order.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.string(from: date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func make(_ status: HTTPResponse.Status, _ value: some Encodable, headers: HTTPFields = [:]) throws -> Response {
        let data = try encoder.encode(value)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// As above, for a body written by hand (the same bytes, without `Codable`'s cost).
    static func make(_ status: HTTPResponse.Status, _ value: some HandWrittenJSON, headers: HTTPFields = [:]) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: value.jsonBytes)))
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-21T13:24:08.123Z`.
enum RFC3339 {
    static func string(from date: Date) -> String {
        LogTime.string(from: date)
    }
}
