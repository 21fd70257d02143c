import BallastCore
import DomainValues
import Foundation


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
    public let priceMinor: Int64
    public let stock: Int64
    public let unitsStocked: Int64
    public let status: ProductStatus
    public let createdAt: Date
    public let updatedAt: Date
    public let deletedAt: Date?

    /// Whether `user` may change it: its seller or an admin.
    public func isManageable(by user: User) -> Bool { user.isAdmin || sellerId == user.id }
}

/// What a seller sends to create a product, parsed and checked: `{sku, name, price, stock}`.
public struct NewProduct: Sendable {
    public static let sku = Field.required("sku", .text(.ascii(.identifier, 1...64)), summary: "unique among the seller's products")
    public static let name = Field.required("name", .text(.printable(max: 200)))
    public static let price = Field.required("price", .integer(1...Product.maximumPrice), summary: "USD minor units")
    public static let stock = Field.required("stock", .integer(0...Product.maximumStockChange))
    public static let shape = ObjectShape([sku, name, price, stock])

    public let sku: String
    public let name: String
    public let priceMinor: Int64
    public let stock: Int64

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        sku = try input.text(Self.sku)
        name = try input.text(Self.name)
        priceMinor = try input.integer(Self.price)
        stock = try input.integer(Self.stock)
    }
}

/// A `PATCH`: `{name?, price?}`; the fields present change, the others stay.
public struct ProductEdit: Sendable, Equatable {
    public static let name = Field("name", .text(.printable(max: 200)))
    public static let price = Field("price", .integer(1...Product.maximumPrice))
    public static let shape = ObjectShape([name, price], atLeastOneOf: ["name", "price"])

    public let name: String?
    public let priceMinor: Int64?

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        name = try input.optionalText(Self.name)
        priceMinor = try input.optionalInteger(Self.price)
        guard name != nil || priceMinor != nil else {
            throw AppError(.validationFailed, "send name and/or price to change", details: ["field": "name"])
        }
    }
}

/// `POST /api/products/{id}/restock`: `{quantity}`.
public struct RestockRequest: Sendable, Equatable {
    public static let quantity = Field.required("quantity", .integer(1...Product.maximumStockChange))
    public static let shape = ObjectShape([quantity])

    public let quantity: Int64

    public init(_ body: JSONValue) throws {
        quantity = try Self.shape.validate(body).integer(Self.quantity)
    }
}

/// The body of a destructive product action: `{confirm?}` (absent means false).
public struct ConfirmRequest: Sendable, Equatable {
    public static let confirm = Field.optional("confirm", .boolean, summary: "true to go ahead; otherwise the impact is shown")
    public static let shape = ObjectShape([confirm])

    public let confirm: Bool

    public init(_ body: JSONValue?) throws {
        guard let body else {
            confirm = false
            return
        }
        confirm = try Self.shape.validate(body).optionalBool(Self.confirm) ?? false
    }
}

/// `POST /api/products/bulk-disable`: `{ids: [1 to 500 distinct product ids], confirm?}`.
public struct BulkDisableRequest: Sendable, Equatable {
    public static let maximumProducts = 500
    public static let ids = Field.required("ids", .array(.uuid, count: 1...maximumProducts, distinct: true))
    public static let shape = ObjectShape([ids, ConfirmRequest.confirm])

    public let ids: [ProductID]
    public let confirm: Bool

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        var ids: [ProductID] = []
        for element in try input.array(Self.ids) {
            guard case .string(let text) = element.value, let id = ProductID(text) else {
                throw AppError.invalidField(element.path, "\(element.path) must be a product id (UUID)")
            }
            // One id spelled in two cases is one product.
            if !ids.contains(id) { ids.append(id) }
        }
        self.ids = ids
        confirm = try input.optionalBool(ConfirmRequest.confirm) ?? false
    }
}
