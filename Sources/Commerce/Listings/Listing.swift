import BallastCore
import DomainValues
import Foundation


/// A listing: a title and a price offered by its owner. Every change raises its version, so the shadow copy
/// can tell a newer write from an older one. Deleted listings are kept (soft delete) with their final version.
public struct Listing: Sendable, Equatable {
    public let id: ListingID
    public let ownerId: UserID
    public let title: String
    public let priceMinor: Int64
    public let version: Int64
    public let createdAtMicros: Int64
    public let updatedAtMicros: Int64
    public let deletedAtMicros: Int64?

    public var createdAt: Date { Date(timeIntervalSince1970: Double(createdAtMicros) / 1_000_000) }
    public var updatedAt: Date { Date(timeIntervalSince1970: Double(updatedAtMicros) / 1_000_000) }
    public var deletedAt: Date? { deletedAtMicros.map { Date(timeIntervalSince1970: Double($0) / 1_000_000) } }
}

/// `POST /api/listings`: `{title, price}`.
public struct NewListing: Sendable {
    public static let title = Field.required("title", .text(.printable(max: 200)))
    public static let price = Field.required("price", .integer(1...Amount.maximum), summary: "minor units")
    public static let shape = ObjectShape([title, price])

    public let title: String
    public let priceMinor: Int64

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        title = try input.text(Self.title)
        priceMinor = try input.integer(Self.price)
    }
}

/// `PATCH /api/listings/{id}`: `{title?, price?}`, at least one.
public struct ListingEdit: Sendable {
    public static let title = Field("title", .text(.printable(max: 200)))
    public static let price = Field("price", .integer(1...Amount.maximum))
    public static let shape = ObjectShape([title, price], atLeastOneOf: ["title", "price"])

    public let title: String?
    public let priceMinor: Int64?

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        title = try input.optionalText(Self.title)
        priceMinor = try input.optionalInteger(Self.price)
        guard title != nil || priceMinor != nil else {
            throw AppError(.validationFailed, "send title and/or price to change", details: ["field": "title"])
        }
    }
}
