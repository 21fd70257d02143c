import Foundation

/// A product with its stock.
public struct ProductBody: Codable, Sendable, Equatable {
    public let id: String
    public let sellerId: String
    public let sku: String
    public let name: String
    public let price: Int64
    public let currency: String
    public let stock: Int64
    public let status: String
    public let createdAt: Date
    public let updatedAt: Date
    @Nullable public var deletedAt: Date?

    public init(id: String, sellerId: String, sku: String, name: String, price: Int64, currency: String, stock: Int64,
                status: String, createdAt: Date, updatedAt: Date, deletedAt: Date?) {
        self.id = id
        self.sellerId = sellerId
        self.sku = sku
        self.name = name
        self.price = price
        self.currency = currency
        self.stock = stock
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deletedAt = deletedAt
    }
}

/// What taking a product off sale would touch.
public struct ImpactBody: Codable, Sendable, Equatable {
    public let productId: String
    public let status: String
    public let stock: Int64
    public let openOrders: Int64
    public let awaitingShipment: Int64
    public let inTransit: Int64
    public let unitsInOpenOrders: Int64
    public let revenueAtRisk: Int64

    public init(productId: String, status: String, stock: Int64, openOrders: Int64, awaitingShipment: Int64,
                inTransit: Int64, unitsInOpenOrders: Int64, revenueAtRisk: Int64) {
        self.productId = productId
        self.status = status
        self.stock = stock
        self.openOrders = openOrders
        self.awaitingShipment = awaitingShipment
        self.inTransit = inTransit
        self.unitsInOpenOrders = unitsInOpenOrders
        self.revenueAtRisk = revenueAtRisk
    }
}

/// The answer to a bulk disable: how many products changed, and each one after the change.
public struct BulkDisableBody: Codable, Sendable, Equatable {
    public let disabled: Int
    public let products: [ProductBody]

    public init(disabled: Int, products: [ProductBody]) {
        self.disabled = disabled
        self.products = products
    }
}

/// An order: its items at the prices paid, shipping, and where it goes.
public struct OrderBody: Codable, Sendable, Equatable {
    public struct Item: Codable, Sendable, Equatable {
        public let productId: String
        public let quantity: Int64
        public let unitPrice: Int64

        public init(productId: String, quantity: Int64, unitPrice: Int64) {
            self.productId = productId
            self.quantity = quantity
            self.unitPrice = unitPrice
        }
    }

    public struct Destination: Codable, Sendable, Equatable {
        public let country: String
        public let postalCode: String

        public init(country: String, postalCode: String) {
            self.country = country
            self.postalCode = postalCode
        }
    }

    public let id: String
    public let status: String
    public let buyerId: String
    public let walletId: String
    public let items: [Item]
    public let subtotal: Int64
    public let shipping: Int64
    public let total: Int64
    public let currency: String
    public let shippingSource: String
    public let destination: Destination
    public let createdAt: Date
    public let updatedAt: Date

    public init(id: String, status: String, buyerId: String, walletId: String, items: [Item], subtotal: Int64,
                shipping: Int64, total: Int64, currency: String, shippingSource: String, destination: Destination,
                createdAt: Date, updatedAt: Date) {
        self.id = id
        self.status = status
        self.buyerId = buyerId
        self.walletId = walletId
        self.items = items
        self.subtotal = subtotal
        self.shipping = shipping
        self.total = total
        self.currency = currency
        self.shippingSource = shippingSource
        self.destination = destination
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A listing; every change raises its version.
public struct ListingBody: Codable, Sendable, Equatable {
    public let id: String
    public let ownerId: String
    public let title: String
    public let price: Int64
    public let version: Int64
    public let createdAt: Date
    public let updatedAt: Date
    @Nullable public var deletedAt: Date?

    public init(id: String, ownerId: String, title: String, price: Int64, version: Int64, createdAt: Date,
                updatedAt: Date, deletedAt: Date?) {
        self.id = id
        self.ownerId = ownerId
        self.title = title
        self.price = price
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deletedAt = deletedAt
    }
}
