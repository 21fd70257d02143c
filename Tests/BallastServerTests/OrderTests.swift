import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Commerce
import Testing

@Suite("Orders", .timeLimit(.minutes(10)))
struct OrderTests {
    @Test(arguments: TestStores.kinds)
    func anOrderTakesStockAndPaymentAndWritesItsNotifications(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let otherSeller = try await app.createUser(name: "seller2")
            let mug = try await app.createProduct(token: seller, price: 1250, stock: 5)
            let pen = try await app.createProduct(token: otherSeller, price: 300, stock: 100)
            let buyer = try await app.buyer(funds: 10_000)

            let placed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(pen, 4), (mug, 2)])
            #expect(placed.status == .created, "\(placed.body)")
            let orderId = try #require(placed.json["id"] as? String)
            #expect(placed.json["status"] as? String == "paid")
            #expect(placed.json["subtotal"] as? Int == 3700)
            #expect(placed.json["shipping"] as? Int == 500)
            #expect(placed.json["total"] as? Int == 4200)
            #expect(placed.json["shippingSource"] as? String == "fallback")
            #expect(placed.json["walletId"] as? String == buyer.wallet)
            let items = try #require(placed.json["items"] as? [[String: Any]])
            #expect(Set(items.compactMap { $0["productId"] as? String }) == [mug, pen])
            #expect(items.first { $0["productId"] as? String == mug }?["unitPrice"] as? Int == 1250)

            #expect(try await app.stock(mug) == 3)
            #expect(try await app.stock(pen) == 96)
            #expect(try await app.balance(buyer.wallet) == 5800)
            #expect(try await app.ledgerSum(buyer.wallet) == 5800)
            #expect(try await app.integer("SELECT count(*) AS n FROM wallet_transactions WHERE order_id = \(bind: orderId)") == 1)
            // The buyer's confirmation email and one push per seller, written with the order.
            #expect(try await app.integer("SELECT count(*) AS n FROM notifications WHERE order_id = \(bind: orderId) AND channel = 'email'") == 1)
            #expect(try await app.integer("SELECT count(*) AS n FROM notifications WHERE order_id = \(bind: orderId) AND channel = 'push'") == 2)
            #expect(try await app.integer("SELECT count(*) AS n FROM notifications WHERE status = 'pending'") == 3)

            // Abroad costs 1500 to ship.
            let abroad = try await app.order(token: buyer.token, wallet: buyer.wallet, [(pen, 1)], country: "DE")
            #expect(abroad.json["shipping"] as? Int == 1500)
            #expect(abroad.json["total"] as? Int == 1800)

            // The buyer and admins see it; another member does not.
            #expect(try await app.request(.get, "/api/orders/\(orderId)", token: buyer.token).json["total"] as? Int == 4200)
            #expect(try await app.request(.get, "/api/orders/\(orderId)", token: TestApp.adminToken).status == .ok)
            #expect(try await app.request(.get, "/api/orders/\(orderId)", token: seller).status == .notFound)
            #expect(try await app.request(.get, "/api/orders/\(UUID())", token: buyer.token).status == .notFound)

            let metrics = try await app.request(.get, "/metrics")
            #expect(metrics.body.contains(#"orders_total{outcome="created"} 2"#))
            let conserved = try await app.moneyConserved()
            #expect(conserved.held == conserved.external)
        }
    }

    @Test(arguments: TestStores.kinds)
    func badItemsAreRefusedWithNothingTaken(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 100, stock: 50)
            let draft = try await app.createProduct(token: seller, price: 100, stock: 50, publish: false)
            let buyer = try await app.buyer(funds: 100_000)
            let eurWallet = try await app.openWallet(token: buyer.token, currency: "EUR")
            try await app.credit(eurWallet, 100_000)
            let stranger = try await app.buyer("stranger", funds: 100_000)
            func body(_ items: String, wallet: String? = nil, destination: String = #"{"country":"US","postalCode":"1"}"#) -> String {
                #"{"walletId":"\#(wallet ?? buyer.wallet)","items":\#(items),"destination":\#(destination)}"#
            }
            let line = { (quantity: String) in #"[{"productId":"\#(product)","quantity":\#(quantity)}]"# }
            let cases: [(String, String)] = [
                (body(line("0")), "items[0].quantity"),
                (body(line("-1")), "items[0].quantity"),
                (body(line("1.5")), "items[0].quantity"),
                (body(line(#""1""#)), "items[0].quantity"),
                (body(line("1001")), "items[0].quantity"),
                (body(line("null")), "items[0].quantity"),
                (body(#"[{"productId":"nope","quantity":1}]"#), "items[0].productId"),
                (body(#"[{"quantity":1}]"#), "items[0].productId"),
                (body(#"[5]"#), "items[0]"),
                (body("[]"), "items"),
                (body(#"{"productId":"x"}"#), "items"),
                (body("[" + Array(repeating: #"{"productId":"\#(UUID())","quantity":1}"#, count: 101).joined(separator: ",") + "]"), "items"),
                (body(#"[{"productId":"\#(product)","quantity":1},{"productId":"\#(product)","quantity":2}]"#), "items[1].productId"),
                (#"{"walletId":"\#(buyer.wallet)","items":\#(line("1"))}"#, "destination"),
                (body(line("1"), destination: #"{"country":"usa","postalCode":"1"}"#), "destination.country"),
                (body(line("1"), destination: #"{"country":"US"}"#), "destination.postalCode"),
                (body(line("1"), destination: #""US""#), "destination"),
                (body(line("1"), wallet: "wallet"), "walletId"),
                (body(#"[{"productId":"\#(draft)","quantity":1}]"#), "items"),
                (body(#"[{"productId":"\#(UUID())","quantity":1}]"#), "items"),
                (body(line("1"), wallet: eurWallet), "walletId"),
            ]
            for (json, field) in cases {
                let reply = try await app.request(.post, "/api/orders", token: buyer.token, body: json)
                #expect(reply.status == .unprocessableContent, "\(json.prefix(200)): \(reply.body)")
                #expect(reply.errorDetails?["field"] as? String == field, "\(json.prefix(200)): \(reply.body)")
            }
            // Someone else's wallet: not found. Malformed JSON: 400.
            let foreign = try await app.request(.post, "/api/orders", token: buyer.token, body: body(line("1"), wallet: stranger.wallet))
            #expect(foreign.status == .notFound)
            let missing = try await app.request(.post, "/api/orders", token: buyer.token,
                                                body: body(line("1"), wallet: UUID().uuidString.lowercased()))
            #expect(missing.status == .notFound, "\(missing.body)")
            #expect(try await app.request(.post, "/api/orders", token: buyer.token, body: "{").status == .badRequest)

            #expect(try await app.orderCount() == 0)
            #expect(try await app.notificationCount() == 0)
            #expect(try await app.stock(product) == 50)
            #expect(try await app.balance(buyer.wallet) == 100_000)
            #expect(try await app.balance(stranger.wallet) == 100_000)
            #expect(try await app.balance(eurWallet) == 100_000)
        }
    }

    @Test(arguments: TestStores.kinds)
    func missingFundsOrStockRefuseTheWholeOrder(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let cheap = try await app.createProduct(token: seller, price: 100, stock: 10)
            let scarce = try await app.createProduct(token: seller, price: 100, stock: 1)
            let poor = try await app.buyer(funds: 1000)

            // 5 × 100 + 1 × 100 + 500 shipping = 1100 > 1000: nothing taken from either product.
            let unpaid = try await app.order(token: poor.token, wallet: poor.wallet, [(cheap, 5), (scarce, 1)])
            #expect(unpaid.status == .conflict)
            #expect(unpaid.errorCode == "insufficient_funds")
            #expect(try await app.stock(cheap) == 10)
            #expect(try await app.stock(scarce) == 1)

            // Two of a product that has one: insufficient_stock naming it; the other line's stock is untouched.
            let tooMany = try await app.order(token: poor.token, wallet: poor.wallet, [(cheap, 1), (scarce, 2)])
            #expect(tooMany.status == .conflict)
            #expect(tooMany.errorCode == "insufficient_stock")
            #expect(tooMany.errorDetails?["productId"] as? String == scarce)
            #expect(tooMany.errorDetails?["available"] as? Int == 1)
            #expect(try await app.stock(cheap) == 10)

            // A depleted product: 409.
            #expect(try await app.order(token: poor.token, wallet: poor.wallet, [(scarce, 1)]).status == .created)
            let depleted = try await app.order(token: poor.token, wallet: poor.wallet, [(scarce, 1)])
            #expect(depleted.status == .conflict)
            #expect(depleted.errorCode == "insufficient_stock")
            #expect(try await app.orderCount() == 1)
            #expect(try await app.balance(poor.wallet) == 400)
            let metrics = try await app.request(.get, "/metrics").body
            #expect(metrics.contains(#"orders_total{outcome="insufficient_stock"} 2"#))
            #expect(metrics.contains(#"orders_total{outcome="insufficient_funds"} 1"#))
        }
    }

    @Test(arguments: TestStores.kinds)
    func ordersMoveAlongAndACancelGivesStockAndMoneyBack(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 700, stock: 10)
            let buyer = try await app.buyer(funds: 10_000)
            func place() async throws -> String {
                let reply = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 2)])
                return try #require(reply.json["id"] as? String)
            }
            let first = try await place()
            // Members may not ship; nothing moves from paid straight to delivered.
            #expect(try await app.request(.post, "/api/orders/\(first)/ship", token: buyer.token).status == .forbidden)
            let early = try await app.request(.post, "/api/orders/\(first)/deliver", token: TestApp.adminToken)
            #expect(early.status == .conflict)
            #expect(early.errorCode == "invalid_transition")
            #expect(try await app.request(.post, "/api/orders/\(first)/ship", token: TestApp.adminToken).json["status"] as? String == "shipped")
            let late = try await app.request(.post, "/api/orders/\(first)/cancel", token: buyer.token)
            #expect(late.errorCode == "invalid_transition")
            #expect(try await app.request(.post, "/api/orders/\(first)/deliver", token: TestApp.adminToken).json["status"] as? String == "delivered")

            let second = try await place()
            #expect(try await app.stock(product) == 6)
            #expect(try await app.balance(buyer.wallet) == 10_000 - 2 * 1900)
            // Another member cannot cancel it (not found); its buyer can.
            #expect(try await app.request(.post, "/api/orders/\(second)/cancel", token: seller).status == .notFound)
            let cancelled = try await app.request(.post, "/api/orders/\(second)/cancel", token: buyer.token)
            #expect(cancelled.status == .ok)
            #expect(cancelled.json["status"] as? String == "cancelled")
            #expect(try await app.stock(product) == 8)
            #expect(try await app.balance(buyer.wallet) == 10_000 - 1900)
            #expect(try await app.ledgerSum(buyer.wallet) == 10_000 - 1900)
            #expect(try await app.request(.post, "/api/orders/\(second)/cancel", token: buyer.token).errorCode == "invalid_transition")
            // An admin may cancel any paid order.
            let third = try await place()
            #expect(try await app.request(.post, "/api/orders/\(third)/cancel", token: TestApp.adminToken).status == .ok)
            #expect(try await app.stock(product) + app.unitsSold(product) == app.unitsStocked(product))
            let conserved = try await app.moneyConserved()
            #expect(conserved.held == conserved.external)
        }
    }

    @Test(arguments: TestStores.kinds)
    func anOrderWithAnIdempotencyKeyIsPlacedOnce(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 100, stock: 100)
            let buyer = try await app.buyer(funds: 100_000)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "order-1"]
            let first = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 3)], headers: key)
            #expect(first.status == .created)
            let again = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 3)], headers: key)
            #expect(again.status == .created)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(again.body == first.body)
            let other = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 4)], headers: key)
            #expect(other.errorCode == "idempotency_key_reused")
            #expect(try await app.orderCount() == 1)
            #expect(try await app.stock(product) == 97)
            #expect(try await app.balance(buyer.wallet) == 100_000 - 800)
        }
    }

    /// The rows an order wrote, with its own id and the times taken out: what two placements of the same order must
    /// write alike.
    private func footprint(_ app: TestApp, order: String) async throws -> [String] {
        try await app.services.primary.read { sql in
            var rows: [String] = []
            for row in try await sql.raw("""
                SELECT status || ' ' || subtotal || ' ' || shipping || ' ' || total || ' ' || shipping_source || ' '
                       || destination_country || ' ' || destination_postal_code || ' ' || buyer_id || ' ' || wallet_id
                       || ' ' || CAST(created_at_micros = updated_at_micros AS TEXT) AS line
                FROM orders WHERE id = \(bind: order)
                UNION ALL
                SELECT 'item ' || product_id || ' ' || seller_id || ' ' || quantity || ' ' || unit_price FROM order_items WHERE order_id = \(bind: order)
                UNION ALL
                SELECT 'ledger ' || kind || ' ' || amount || ' ' || reference FROM wallet_transactions WHERE order_id = \(bind: order)
                UNION ALL
                SELECT 'notification ' || channel || ' ' || recipient || ' ' || template || ' ' || data || ' ' || status
                       || ' ' || attempts
                FROM notifications WHERE order_id = \(bind: order)
                """).all() {
                rows.append(try row.decode(column: "line", as: String.self).replacingOccurrences(of: order, with: "ORDER"))
            }
            return rows.sorted()
        }
    }

    /// On PostgreSQL an order without a key is one statement, and with a key a transaction of several: both write
    /// the same rows (order, items, ledger, outbox data text) and answer the same body, for lines across sellers.
    @Test(arguments: TestStores.kinds)
    func anOrderWithoutAKeyWritesWhatAKeyedOneWrites(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let otherSeller = try await app.createUser(name: "seller2")
            let products = [
                try await app.createProduct(token: seller, price: 1250, stock: 10),
                try await app.createProduct(token: otherSeller, price: 300, stock: 100),
                try await app.createProduct(token: seller, price: 7, stock: 10),
            ]
            let buyer = try await app.buyer(funds: 100_000)
            let lines = [(products[2], 3), (products[0], 2), (products[1], 4)]
            let unkeyed = try await app.order(token: buyer.token, wallet: buyer.wallet, lines)
            let keyed = try await app.order(
                token: buyer.token, wallet: buyer.wallet, lines, headers: [HTTPField.Name("Idempotency-Key")!: "same-order"])
            #expect(unkeyed.status == .created, "\(unkeyed.body)")
            #expect(keyed.status == .created, "\(keyed.body)")
            let unkeyedId = try #require(unkeyed.json["id"] as? String)
            let keyedId = try #require(keyed.json["id"] as? String)
            func comparable(_ reply: TestReply, _ id: String) -> String {
                reply.body.replacingOccurrences(of: id, with: "ORDER")
                    .replacingOccurrences(of: #""(createdAt|updatedAt)":"[^"]*""#, with: "", options: .regularExpression)
            }
            #expect(comparable(unkeyed, unkeyedId) == comparable(keyed, keyedId))
            let written = try await footprint(app, order: unkeyedId)
            let writtenWithKey = try await footprint(app, order: keyedId)
            #expect(written == writtenWithKey)
            let rowsPerOrder = 8 // the order, 3 items, 1 ledger row, 3 notifications
            #expect(written.count == rowsPerOrder, "\(written)")
            #expect(written.contains { $0.hasPrefix("ledger debit 4221 order:ORDER") }, "\(written)")
            #expect(try await app.integer("SELECT count(DISTINCT id) AS n FROM notifications") == 6)
            let spent: Int64 = 2 * 4221
            #expect(try await app.balance(buyer.wallet) == 100_000 - spent)
            #expect(try await app.ledgerSum(buyer.wallet) == 100_000 - spent)
            #expect(try await app.stock(products[0]) == 6)
            #expect(try await app.stock(products[1]) == 92)
            #expect(try await app.stock(products[2]) == 4)
            let conserved = try await app.moneyConserved()
            #expect(conserved.held == conserved.external)
        }
    }

    /// One line per product: two lines of one product are refused at the door, before any statement (the one
    /// statement of an order without a key checks each line against its product's stock alone, so it relies on
    /// this, and refuses such an order itself besides).
    @Test(arguments: TestStores.kinds)
    func twoLinesOfOneProductAreRefused(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 100, stock: 5)
            let buyer = try await app.buyer(funds: 100_000)
            let twice = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 3), (product, 3)])
            #expect(twice.status == .unprocessableContent, "\(twice.body)")
            #expect(twice.errorDetails?["field"] as? String == "items[1].productId")
            #expect(try await app.stock(product) == 5)
            #expect(try await app.balance(buyer.wallet) == 100_000)
            #expect(try await app.orderCount() == 0)
        }
    }
}
