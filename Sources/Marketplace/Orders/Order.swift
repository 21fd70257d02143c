import Foundation

public enum OrderTag {}
public typealias OrderID = TypedID<OrderTag>

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
    public let unitPrice: Int64
}

/// An order: stock taken and the buyer's wallet charged, in one transaction.
public struct Order: Sendable, Equatable {
    public let id: OrderID
    public let buyerId: UserID
    public let walletId: WalletID
    public let status: OrderStatus
    public let items: [OrderItem]
    public let subtotal: Int64
    public let shipping: Int64
    public let total: Int64
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

    public let walletId: WalletID
    /// Sorted by product id: the order in which their stock rows are locked, whatever order the caller sent.
    public let items: [ShippedItem]
    public let destination: Destination

    public init(_ input: InputObject) throws {
        walletId = try WalletID.parseField(input, "walletId")
        guard let raw = input.fields["items"], raw != .null else { throw AppError.invalidField("items", "items is required") }
        guard case .array(let values) = raw else {
            throw AppError.invalidField("items", "items must be an array of {productId, quantity}, got \(raw.typeName)")
        }
        guard !values.isEmpty else { throw AppError.invalidField("items", "an order needs at least one item") }
        guard values.count <= Self.maximumLines else {
            throw AppError.invalidField("items", "an order may have at most \(Self.maximumLines) lines, got \(values.count)")
        }
        var seen: Set<ProductID> = []
        var items: [ShippedItem] = []
        for (index, value) in values.enumerated() {
            let field = "items[\(index)]"
            guard case .object(let fields) = value else {
                throw AppError.invalidField(field, "\(field) must be an object {productId, quantity}")
            }
            let line = InputObject(fields: fields)
            let product = try Destination.scoped(field) { try ProductID.parseField(line, "productId") }
            let quantity = try Destination.scoped(field) { try line.integer("quantity", in: 1...Self.maximumQuantity) }
            guard seen.insert(product).inserted else {
                throw AppError.invalidField("\(field).productId", "product \(product) appears more than once; send one line per product")
            }
            items.append(ShippedItem(productId: product, quantity: quantity))
        }
        self.items = items.sorted { $0.productId.description < $1.productId.description }
        destination = try Destination(input.fields["destination"])
    }
}
