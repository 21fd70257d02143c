import BallastCore
import Foundation

/// A UUID that knows what it identifies, so a wallet id cannot be passed where an order id is expected.
/// Lower-case text in storage and in the API.
public struct TypedID<Tag>: Hashable, Sendable, Codable, CustomStringConvertible {
    public let uuid: UUID

    public init(_ uuid: UUID = .random()) {
        self.uuid = uuid
    }

    /// Parses the text form; `nil` when it is not a UUID.
    public init?(_ text: String) {
        guard text.count == 36, let uuid = UUID(uuidString: text) else { return nil }
        self.uuid = uuid
    }

    public var description: String { uuid.lowercasedString }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = Self(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a UUID"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension TypedID {
    /// Parses an id in a path, or throws 404 for a malformed one (no such resource can exist); ids in bodies are
    /// read with ``InputObject/id(_:as:)`` and a malformed one is a 422 naming the field.
    public static func parsePath(_ text: String, _ what: String) throws -> Self {
        guard let id = Self(text) else { throw AppError.notFound(what) }
        return id
    }
}
