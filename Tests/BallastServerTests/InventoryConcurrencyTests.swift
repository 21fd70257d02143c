import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Commerce
import Testing

/// The chaos suite "inventory concurrency": stock is never oversold and an order is all or nothing, under
/// hundreds of concurrent orders, cancels and ships, and under failures injected inside the transaction.
@Suite("Inventory concurrency", .timeLimit(.minutes(10)))
struct InventoryConcurrencyTests {
    @Test(arguments: TestStores.kinds)
    func sixtyOrdersForTenUnitsCreateExactlyTen(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 1000, stock: 10)
            var buyers: [(token: String, wallet: String)] = []
            for index in 0..<6 { buyers.append(try await app.buyer("buyer\(index)", funds: 100_000)) }
            let tally = StatusTally()
            let codes = Locked<[String: Int]>([:])
            let team = buyers
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    group.addTask {
                        let buyer = team[index % team.count]
                        let reply = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)])
                        tally.add(reply.status)
                        if let code = reply.errorCode { codes.withLock { $0[code, default: 0] += 1 } }
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all == [201: 10, 409: 50])
            #expect(codes.withLock { $0 } == ["insufficient_stock": 50])
            #expect(try await app.stock(product) == 0)
            #expect(try await app.orderCount() == 10)
            var charged: Int64 = 0
            for buyer in buyers {
                let balance = try await app.balance(buyer.wallet)
                #expect(try await app.ledgerSum(buyer.wallet) == balance)
                charged += 100_000 - balance
            }
            #expect(charged == 10 * 1500, "ten orders of 1000 + 500 shipping")
            let conserved = try await app.moneyConserved()
            #expect(conserved.held == conserved.external)
        }
    }

    /// 300 orders of two to four products each, half listing their items in ascending and half in descending
    /// product order, from 100 concurrent clients, over products with different stock levels.
    @Test(arguments: TestStores.kinds)
    func multiProductOrdersInOppositeOrdersNeitherDeadlockNorOversell(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            var products: [String] = []
            for stock in [5, 12, 20, 33, 8, 50] {
                products.append(try await app.createProduct(token: seller, price: 100 + stock, stock: stock))
            }
            products.sort()
            var buyers: [(token: String, wallet: String)] = []
            for index in 0..<10 { buyers.append(try await app.buyer("buyer\(index)", funds: 1_000_000)) }
            let tally = StatusTally()
            let codes = Locked<[String: Int]>([:])
            let catalog = products, team = buyers
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<100 {
                    group.addTask {
                        var generator = SystemRandomNumberGenerator()
                        for step in 0..<3 {
                            let count = Int.random(in: 2...4, using: &generator)
                            var chosen = Array(catalog.shuffled(using: &generator).prefix(count)).sorted()
                            if (client + step) % 2 == 1 { chosen.reverse() }
                            let items = chosen.map { ($0, Int.random(in: 1...3, using: &generator)) }
                            let buyer = team[client % team.count]
                            let reply = try await app.order(token: buyer.token, wallet: buyer.wallet, items)
                            tally.add(reply.status)
                            if let code = reply.errorCode { codes.withLock { $0[code, default: 0] += 1 } }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all.values.reduce(0, +) == 300)
            #expect(Set(tally.all.keys).isSubset(of: [201, 409]), "\(tally.all)")
            #expect(Set(codes.withLock { $0.keys }).isSubset(of: ["insufficient_stock"]), "\(codes.withLock { $0 })")
            #expect(tally[201] > 0)
            #expect(try await app.orderCount() == Int64(tally[201]))
            for product in products {
                let stock = try await app.stock(product)
                #expect(stock >= 0)
                #expect(try await stock + app.unitsSold(product) == app.unitsStocked(product), "product \(product)")
            }
            for buyer in buyers { #expect(try await app.ledgerSum(buyer.wallet) == app.balance(buyer.wallet)) }
            let conserved = try await app.moneyConserved()
            #expect(conserved.held == conserved.external)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aFailureInsideTheOrderTransactionLeavesNothingBehind(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 400, stock: 10)
            let buyer = try await app.buyer(funds: 5000)

            for failpoint in [OrderService.Failpoint.placeAfterStockUpdate, OrderService.Failpoint.placeAfterPayment] {
                try app.services.failpoints.arm(failpoint, .once)
                let failed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 3)])
                #expect(failed.status == .internalServerError, "\(failpoint)")
                #expect(try await app.stock(product) == 10, "\(failpoint)")
                #expect(try await app.balance(buyer.wallet) == 5000, "\(failpoint)")
                #expect(try await app.ledgerCount(buyer.wallet) == 1, "\(failpoint)")
                #expect(try await app.orderCount() == 0, "\(failpoint)")
                #expect(try await app.integer("SELECT count(*) AS n FROM order_items") == 0, "\(failpoint)")
                #expect(try await app.notificationCount() == 0, "\(failpoint)")
            }

            // The same order goes through once nothing fails.
            let placed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 3)])
            #expect(placed.status == .created)
            let orderId = try #require(placed.json["id"] as? String)
            // A cancel that fails after putting the stock back keeps the order paid, the stock taken, the money spent.
            try app.services.failpoints.arm(OrderService.Failpoint.cancelAfterStockReturn, .once)
            #expect(try await app.request(.post, "/api/orders/\(orderId)/cancel", token: buyer.token).status == .internalServerError)
            #expect(try await app.request(.get, "/api/orders/\(orderId)", token: buyer.token).json["status"] as? String == "paid")
            #expect(try await app.stock(product) == 7)
            #expect(try await app.balance(buyer.wallet) == 5000 - 1700)
            #expect(try await app.request(.post, "/api/orders/\(orderId)/cancel", token: buyer.token).status == .ok)
            #expect(try await app.stock(product) == 10)
            #expect(try await app.balance(buyer.wallet) == 5000)
        }
    }

    /// 100 orders, each cancelled by its buyer and shipped by an admin at the same moment: each ends either
    /// cancelled (stock and money back) or shipped, never both.
    @Test(arguments: TestStores.kinds)
    func aCancelRacingAShipHasExactlyOneWinner(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 250, stock: 1000)
            var buyers: [(token: String, wallet: String)] = []
            for index in 0..<10 { buyers.append(try await app.buyer("buyer\(index)", funds: 100_000)) }
            var orders: [(id: String, buyer: Int)] = []
            for index in 0..<100 {
                let buyer = buyers[index % buyers.count]
                let reply = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 2)])
                orders.append((try #require(reply.json["id"] as? String), index % buyers.count))
            }
            #expect(try await app.stock(product) == 800)
            let outcomes = Locked<[String: (cancel: UInt, ship: UInt)]>([:])
            let team = buyers, placed = orders
            try await withThrowingTaskGroup(of: Void.self) { group in
                for order in placed {
                    group.addTask {
                        let reply = try await app.request(.post, "/api/orders/\(order.id)/cancel", token: team[order.buyer].token)
                        outcomes.withLock { $0[order.id, default: (0, 0)].cancel = UInt(reply.status.code) }
                    }
                    group.addTask {
                        let reply = try await app.request(.post, "/api/orders/\(order.id)/ship", token: TestApp.adminToken)
                        outcomes.withLock { $0[order.id, default: (0, 0)].ship = UInt(reply.status.code) }
                    }
                }
                try await group.waitForAll()
            }
            var cancelled = 0
            for order in orders {
                let outcome = try #require(outcomes.withLock { $0[order.id] })
                #expect([outcome.cancel, outcome.ship].sorted() == [200, 409], "\(order.id): \(outcome)")
                let status = try await app.request(.get, "/api/orders/\(order.id)", token: TestApp.adminToken).json["status"] as? String
                let ledgerRows = try await app.integer("SELECT count(*) AS n FROM wallet_transactions WHERE order_id = \(bind: order.id)")
                if outcome.cancel == 200 {
                    cancelled += 1
                    #expect(status == "cancelled")
                    #expect(ledgerRows == 2, "payment and refund")
                } else {
                    #expect(status == "shipped")
                    #expect(ledgerRows == 1, "payment only")
                }
            }
            #expect(try await app.stock(product) == Int64(800 + 2 * cancelled))
            #expect(try await app.stock(product) + app.unitsSold(product) == 1000)
            var spent: Int64 = 0
            for buyer in buyers {
                let balance = try await app.balance(buyer.wallet)
                #expect(try await app.ledgerSum(buyer.wallet) == balance)
                spent += 100_000 - balance
            }
            #expect(spent == Int64(100 - cancelled) * 1000, "each shipped order cost 2 × 250 + 500")
            let conserved = try await app.moneyConserved()
            #expect(conserved.held == conserved.external)
        }
    }
}
