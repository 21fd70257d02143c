import BallastServer
import DomainValues
import Foundation
import HTTPTypes
import Commerce
import SQLKit
import Storage

extension TestApp {
    /// Creates a product through the API (published unless `publish` is false) and returns its id.
    func createProduct(
        token: String, sku: String = "sku-\(UUID().uuidString.prefix(8))", price: Int = 1000, stock: Int = 10,
        publish: Bool = true
    ) async throws -> String {
        let reply = try await request(.post, "/api/products", token: token,
                                      body: #"{"sku":"\#(sku)","name":"Product \#(sku)","price":\#(price),"stock":\#(stock)}"#)
        guard reply.status == .created, let id = reply.json["id"] as? String else {
            throw AppError(.internal, "could not create a product: \(reply.status) \(reply.body)")
        }
        if publish {
            let published = try await request(.post, "/api/products/\(id)/publish", token: token)
            guard published.status == .ok else { throw AppError(.internal, "publish failed: \(published.status) \(published.body)") }
        }
        return id
    }

    /// A member with a USD wallet holding `funds`.
    func buyer(_ name: String = "buyer", funds: Int) async throws -> (token: String, wallet: String) {
        let token = try await createUser(name: name)
        let wallet = try await openWallet(token: token)
        if funds > 0 { try await credit(wallet, funds) }
        return (token, wallet)
    }

    /// `POST /api/orders` for `items` (product id, quantity) to `country`.
    func order(
        token: String, wallet: String, _ items: [(String, Int)], country: String = "US", headers: HTTPFields = [:]
    ) async throws -> TestReply {
        let lines = items.map { #"{"productId":"\#($0.0)","quantity":\#($0.1)}"# }.joined(separator: ",")
        return try await request(.post, "/api/orders", token: token, headers: headers, body: """
            {"walletId":"\(wallet)","items":[\(lines)],"destination":{"country":"\(country)","postalCode":"94107"}}
            """)
    }

    func integer(_ query: SQLQueryString) async throws -> Int64 {
        try await services.primary.read { sql in
            try await sql.raw(query).first()!.decode(column: "n", as: Int64.self)
        }
    }

    func stock(_ product: String) async throws -> Int64 {
        try await integer("SELECT stock AS n FROM products WHERE id = \(bind: product)")
    }

    func unitsStocked(_ product: String) async throws -> Int64 {
        try await integer("SELECT units_stocked AS n FROM products WHERE id = \(bind: product)")
    }

    /// Units of the product in orders that are not cancelled.
    func unitsSold(_ product: String) async throws -> Int64 {
        try await integer("""
            SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) AS n FROM order_items i JOIN orders o ON o.id = i.order_id
            WHERE i.product_id = \(bind: product) AND o.status <> 'cancelled'
            """)
    }

    func orderCount() async throws -> Int64 {
        try await integer("SELECT count(*) AS n FROM orders")
    }

    func notificationCount() async throws -> Int64 {
        try await integer("SELECT count(*) AS n FROM notifications")
    }

    /// I2 across the whole store: balances + revenue held for orders that are not cancelled, against money
    /// that entered minus money that left (ledger rows not linked to an order; transfers cancel out).
    func moneyConserved() async throws -> (held: Int64, external: Int64) {
        let balances = try await integer("SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS n FROM wallets")
        let revenue = try await integer("SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) AS n FROM orders WHERE status <> 'cancelled'")
        let external = try await integer("""
            SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'credit' THEN amount ELSE -amount END), 0) AS BIGINT) AS n
            FROM wallet_transactions WHERE order_id IS NULL
            """)
        return (balances + revenue, external)
    }
}
