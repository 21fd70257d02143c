import BallastCore
import DomainValues
import Foundation


/// paid → shipped → delivered, or paid → cancelled. "Open" means paid or shipped.
public enum OrderStatus: String, Sendable, CaseIterable {
    case paid, shipped, delivered, cancelled

    public static let open: [OrderStatus] = [.paid, .shipped]
    public var isOpen: Bool { Self.open.contains(self) }
}

/// One line of an order, at the price it was bought for.
public struct OrderItem: Sendable, Equatable {
    public let productId: ProductID
    public let sellerId: UserID
    public let quantity: Int64
    public let unitPriceMinor: Int64
}

/// An order: stock taken and the buyer's wallet charged, in one transaction.
public struct Order: Sendable, Equatable {
    public let id: OrderID
    public let buyerId: UserID
    public let walletId: WalletID
    public let status: OrderStatus
    public let items: [OrderItem]
    public let subtotalMinor: Int64
    public let shippingMinor: Int64
    public let totalMinor: Int64
    public let shippingSource: ShippingQuote.Source
    public let destination: Destination
    public let createdAt: Date
    public let updatedAt: Date
}

/// A parsed `POST /api/orders` body: every item checked before anything is read or written.
public struct OrderRequest: Sendable {
    /// Lines per order.
    public static let maximumLines = 100
    /// Units per line.
    public static let maximumQuantity: Int64 = 1000

    public static let productId = Field.required("productId", .uuid)
    public static let quantity = Field.required("quantity", .integer(1...maximumQuantity))
    public static let item = ObjectShape([productId, quantity])
    public static let walletId = Field.required("walletId", .uuid, summary: "the buyer's own USD wallet")
    public static let items = Field.required(
        "items", .array(.object(item), count: 1...maximumLines, distinct: false), summary: "one line per product")
    public static let destination = Field.required("destination", .object(Destination.shape))
    public static let shape = ObjectShape([walletId, items, destination])

    public let walletId: WalletID
    /// Sorted by product id: the order in which their stock rows are locked, whatever order the caller sent.
    public let items: [ShippedItem]
    public let destination: Destination

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        walletId = try input.id(Self.walletId)
        var seen: Set<ProductID> = []
        var items: [ShippedItem] = []
        for element in try input.array(Self.items) {
            let line = try Self.item.validate(element.value, path: element.path)
            let product: ProductID = try line.id(Self.productId)
            guard seen.insert(product).inserted else {
                throw AppError.invalidField(
                    "\(element.path).productId", "product \(product) appears more than once; send one line per product")
            }
            items.append(ShippedItem(productId: product, quantity: try line.integer(Self.quantity)))
        }
        self.items = items.sorted { $0.productId.description < $1.productId.description }
        destination = try Destination(try input.object(Self.destination)!)
    }
}
