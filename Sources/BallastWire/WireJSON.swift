import BallastCore
import Foundation

/// An optional field written as `null` when absent instead of being left out: the API shows every documented
/// field. Reading, a missing key reads as nil too.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A ``Nullable`` field whose key is missing reads as nil (synthesized decoding would refuse it).
    public func decode<Value>(_ type: Nullable<Value>.Type, forKey key: Key) throws -> Nullable<Value> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}

/// How a client reads the API's JSON: times are RFC 3339 UTC, with or without fractional seconds.
public enum WireJSON {
    /// One decoder for every answer (decoding does not change it, so it is shared).
    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTime(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 time: \(text)")
            }
            return date
        }
        return decoder
    }()

    /// Decodes `T` from `data`; nil when the body is not a `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) -> T? {
        try? decoder.decode(type, from: data)
    }

    /// Why a body is not what it should be, in one line: the field and what was wrong with it.
    public static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the body" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?: return "\(path(context.codingPath + [key])) is missing"
        case .valueNotFound(_, let context)?: return "\(path(context.codingPath)) is null"
        case .typeMismatch(let type, let context)?: return "\(path(context.codingPath)) is not a \(type)"
        case .dataCorrupted(let context)?: return "\(path(context.codingPath)): \(context.debugDescription)"
        default: return "\(error)"
        }
    }

    /// An RFC 3339 time as the API writes it (`2026-11-21T13:24:08.123Z`), or without fractional seconds.
    public static func parseTime(_ text: String) -> Date? {
        let styles: [Date.ISO8601FormatStyle] = [
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted),
            .iso8601,
        ]
        for style in styles { if let date = try? Date(text, strategy: style) { return date } }
        return nil
    }
}

/// A page of a list: its items and the cursor of the next page (null on the last).
public struct Page<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public let items: [Item]
    @Nullable public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// The body of every error answer: `{"error": {"code", "message", "details"}}`.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Payload: Codable, Sendable, Equatable {
        public let code: String
        public let message: String
        public let details: [String: JSONValue]

        public init(code: String, message: String, details: [String: JSONValue]) {
            self.code = code
            self.message = message
            self.details = details
        }

        /// Only the code is needed to read an error: a refusal is known by its code even from a peer that writes
        /// no message or details.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            code = try container.decode(String.self, forKey: .code)
            message = try container.decodeIfPresent(String.self, forKey: .message) ?? ""
            details = try container.decodeIfPresent([String: JSONValue].self, forKey: .details) ?? [:]
        }

        enum CodingKeys: String, CodingKey { case code, message, details }
    }

    public let error: Payload

    public init(error: Payload) {
        self.error = error
    }
}
