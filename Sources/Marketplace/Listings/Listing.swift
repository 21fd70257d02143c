import Foundation

public enum ListingTag {}
public typealias ListingID = TypedID<ListingTag>

/// A listing: a title and a price offered by its owner. Every change raises its version, so the shadow copy
/// can tell a newer write from an older one. Deleted listings are kept (soft delete) with their final version.
public struct Listing: Sendable, Equatable {
    public let id: ListingID
    public let ownerId: UserID
    public let title: String
    public let price: Int64
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
    public let title: String
    public let price: Int64

    public init(_ input: InputObject) throws {
        title = try input.string("title", maxLength: 200)
        price = try input.integer("price", in: 1...Amount.maximum)
    }
}

/// `PATCH /api/listings/{id}`: `{title?, price?}`, at least one.
public struct ListingEdit: Sendable {
    public let title: String?
    public let price: Int64?

    public init(_ input: InputObject) throws {
        if let unknown = input.fields.keys.sorted().first(where: { !["title", "price"].contains($0) }) {
            throw AppError.invalidField(unknown, "\(unknown) cannot be changed here; send title and/or price")
        }
        title = try input.optionalString("title", maxLength: 200)
        price = try input.optionalInteger("price", in: 1...Amount.maximum)
        guard title != nil || price != nil else {
            throw AppError(.validationFailed, "send title and/or price to change", details: ["field": "title"])
        }
    }
}
