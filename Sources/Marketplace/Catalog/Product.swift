import Foundation

public enum ProductTag {}
public typealias ProductID = TypedID<ProductTag>

/// Where a product is in its life: `draft` (new, not for sale) → `active` (for sale) → `disabled` (off sale)
/// → `archived`. Deletion is separate (``Product/deletedAt``), so a deleted product keeps its last status.
public enum ProductStatus: String, Sendable, CaseIterable {
    case draft, active, disabled, archived
}

/// A product a seller offers, priced in USD minor units, with its stock.
public struct Product: Sendable, Equatable {
    /// The most a product may cost, in minor units (the SPEC's money ceiling).
    public static let maximumPrice: Int64 = Amount.maximum
    /// The most units one stock change (create or restock) may add.
    public static let maximumStockChange: Int64 = 1_000_000_000
    /// The most units a product may ever have been stocked with, so every sum stays inside Int64.
    public static let maximumUnitsStocked: Int64 = 1_000_000_000_000

    public let id: ProductID
    public let sellerId: UserID
    public let sku: String
    public let name: String
    public let price: Int64
    public let stock: Int64
    public let unitsStocked: Int64
    public let status: ProductStatus
    public let createdAt: Date
    public let updatedAt: Date
    public let deletedAt: Date?

    /// Whether `user` may change it: its seller or an admin.
    public func isManageable(by user: User) -> Bool { user.isAdmin || sellerId == user.id }
}

/// What a seller sends to create a product, parsed and checked.
public struct NewProduct: Sendable {
    public let sku: String
    public let name: String
    public let price: Int64
    public let stock: Int64

    public init(_ input: InputObject) throws {
        sku = try input.string("sku", maxLength: 64)
        guard sku.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0) }) else {
            throw AppError.invalidField("sku", "sku may contain letters, digits, '-', '_' and '.' only")
        }
        name = try input.string("name", maxLength: 200)
        price = try input.integer("price", in: 1...Product.maximumPrice)
        stock = try input.integer("stock", in: 0...Product.maximumStockChange)
    }
}

/// A `PATCH`: the fields present change, the others stay.
public struct ProductEdit: Sendable, Equatable {
    public let name: String?
    public let price: Int64?

    public init(_ input: InputObject) throws {
        let known: Set<String> = ["name", "price"]
        if let unknown = input.fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw AppError.invalidField(unknown, "\(unknown) cannot be changed here; send name and/or price")
        }
        name = try input.optionalString("name", maxLength: 200)
        price = try input.optionalInteger("price", in: 1...Product.maximumPrice)
        guard name != nil || price != nil else {
            throw AppError(.validationFailed, "send name and/or price to change", details: ["field": "name"])
        }
    }
}
