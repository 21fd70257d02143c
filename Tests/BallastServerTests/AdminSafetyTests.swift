import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Commerce
import Testing

extension TestApp {
    /// ADMIN_ACTION records about `entityId`, oldest first.
    func adminActions(_ entityId: String) async throws -> [[String: Any]] {
        let reply = try await request(.get, "/api/admin/evidence?eventType=ADMIN_ACTION&entityId=\(entityId)&limit=200",
                                      token: TestApp.adminToken)
        return reply.json["items"] as? [[String: Any]] ?? []
    }

    func productStatus(_ id: String) async throws -> String? {
        try await request(.get, "/api/products/\(id)?includeDeleted=true", token: TestApp.adminToken).json["status"] as? String
    }

    func post(_ path: String, _ token: String, _ body: String? = nil) async throws -> TestReply {
        try await request(.post, path, token: token, body: body)
    }
}

/// The chaos suite "admin safety" (SPEC §5): every guard on a destructive product change, the evidence each
/// change leaves, and a destructive step racing new orders.
@Suite("Admin safety", .timeLimit(.minutes(10)))
struct AdminSafetyTests {
    @Test(arguments: TestStores.kinds)
    func theImpactPreviewCountsAreExact(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 300, stock: 100)
            let buyer = try await app.buyer(funds: 100_000)
            var orders: [String] = []
            for quantity in [2, 3, 1, 4] {
                let reply = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, quantity)])
                orders.append(try #require(reply.json["id"] as? String))
            }
            #expect(try await app.post("/api/orders/\(orders[1])/ship", TestApp.adminToken).status == .ok)
            #expect(try await app.post("/api/orders/\(orders[2])/ship", TestApp.adminToken).status == .ok)
            #expect(try await app.post("/api/orders/\(orders[2])/deliver", TestApp.adminToken).status == .ok)
            #expect(try await app.post("/api/orders/\(orders[3])/cancel", buyer.token).status == .ok)

            let impact = try await app.request(.get, "/api/products/\(product)/impact", token: seller)
            #expect(impact.status == .ok)
            #expect(impact.json["productId"] as? String == product)
            #expect(impact.json["status"] as? String == "active")
            #expect(impact.json["stock"] as? Int == 94)
            #expect(impact.json["openOrders"] as? Int == 2)
            #expect(impact.json["awaitingShipment"] as? Int == 1)
            #expect(impact.json["inTransit"] as? Int == 1)
            #expect(impact.json["unitsInOpenOrders"] as? Int == 5)
            #expect(impact.json["revenueAtRisk"] as? Int == 1500)
            #expect(try await app.request(.get, "/api/products/\(product)/impact", token: TestApp.adminToken).json["openOrders"] as? Int == 2)
            #expect(try await app.request(.get, "/api/products/\(product)/impact", token: buyer.token).status == .notFound)
        }
    }

    @Test(arguments: TestStores.kinds)
    func disablingNeedsConfirmationShowsTheImpactAndIsNotBlockedByOpenOrders(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 500, stock: 10)
            let buyer = try await app.buyer(funds: 10_000)
            #expect(try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 2)]).status == .created)

            for body in [nil, "{}", #"{"confirm":false}"#] {
                let refused = try await app.post("/api/products/\(product)/disable", seller, body)
                #expect(refused.status == .conflict)
                #expect(refused.errorCode == "confirmation_required")
                let impact = try #require(refused.errorDetails?["impact"] as? [String: Any])
                #expect(impact["openOrders"] as? Int == 1)
                #expect(impact["unitsInOpenOrders"] as? Int == 2)
                #expect(refused.json["error"].flatMap { ($0 as? [String: Any])?["message"] as? String }?.contains("confirm: true") == true)
            }
            #expect(try await app.post("/api/products/\(product)/disable", seller, #"{"confirm":"yes"}"#).status == .unprocessableContent)
            #expect(try await app.productStatus(product) == "active")
            #expect(try await app.adminActions(product).filter { ($0["details"] as? [String: Any])?["action"] as? String == "disable" }.isEmpty)

            let requestId = "disable-\(UUID().uuidString)"
            let disabled = try await app.request(.post, "/api/products/\(product)/disable", token: seller,
                                                 headers: [HTTPField.Name("X-Request-Id")!: requestId], body: #"{"confirm":true}"#)
            #expect(disabled.status == .ok)
            #expect(disabled.json["status"] as? String == "disabled")
            // Off sale: a new order is refused; the open one stays as it is.
            let late = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)])
            #expect(late.status == .unprocessableContent)
            #expect(try await app.integer("SELECT count(*) AS n FROM orders WHERE status = 'paid'") == 1)

            let record = try #require(try await app.adminActions(product).last)
            #expect(record["controlId"] as? String == "CC-8.1")
            #expect(record["category"] as? String == "ChangeManagement")
            #expect(record["eventType"] as? String == "ADMIN_ACTION")
            #expect(record["entityType"] as? String == "product")
            #expect(record["requestId"] as? String == requestId)
            let details = try #require(record["details"] as? [String: Any])
            #expect(details["action"] as? String == "disable")
            #expect(details["actorRole"] as? String == "member")
            #expect((details["before"] as? [String: Any])?["status"] as? String == "active")
            #expect((details["after"] as? [String: Any])?["status"] as? String == "disabled")
            #expect((details["after"] as? [String: Any])?["stock"] as? Int == 8)
        }
    }

    @Test(arguments: TestStores.kinds)
    func archiveAndDeleteWaitForEveryOrderToBeFinalAndNeverComeStraightFromActive(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 500, stock: 10)
            let buyer = try await app.buyer(funds: 10_000)
            let placed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)])
            let order = try #require(placed.json["id"] as? String)

            // Not straight from active.
            let archive = try await app.post("/api/products/\(product)/archive", seller, #"{"confirm":true}"#)
            #expect(archive.errorCode == "invalid_transition")
            #expect(archive.json["error"].flatMap { ($0 as? [String: Any])?["message"] as? String }?.contains("disable it first") == true)
            let delete = try await app.request(.delete, "/api/products/\(product)?confirm=true", token: seller)
            #expect(delete.errorCode == "invalid_transition")
            #expect(try await app.productStatus(product) == "active")

            #expect(try await app.post("/api/products/\(product)/disable", seller, #"{"confirm":true}"#).status == .ok)
            // Blocked while the order is paid, and while it is shipped but not delivered.
            for step in ["paid", "shipped"] {
                if step == "shipped" { #expect(try await app.post("/api/orders/\(order)/ship", TestApp.adminToken).status == .ok) }
                let blockedArchive = try await app.post("/api/products/\(product)/archive", seller, #"{"confirm":true}"#)
                #expect(blockedArchive.status == .conflict, "\(step)")
                #expect(blockedArchive.errorCode == "blocked", "\(step)")
                let named = blockedArchive.errorDetails?["openOrders"] as? [[String: Any]]
                #expect(named?.first?["id"] as? String == order, "\(step)")
                #expect(named?.first?["status"] as? String == step)
                let blockedDelete = try await app.request(.delete, "/api/products/\(product)", token: seller, body: #"{"confirm":true}"#)
                #expect(blockedDelete.errorCode == "blocked", "\(step)")
                #expect(try await app.productStatus(product) == "disabled")
            }
            #expect(try await app.post("/api/orders/\(order)/deliver", TestApp.adminToken).status == .ok)

            // Every order final: archive needs confirmation, then goes through.
            let unconfirmed = try await app.post("/api/products/\(product)/archive", seller)
            #expect(unconfirmed.errorCode == "confirmation_required")
            #expect((unconfirmed.errorDetails?["impact"] as? [String: Any])?["openOrders"] as? Int == 0)
            let archived = try await app.post("/api/products/\(product)/archive", seller, #"{"confirm":true}"#)
            #expect(archived.json["status"] as? String == "archived")
            #expect(try await app.post("/api/products/\(product)/publish", seller).errorCode == "invalid_transition")

            // Soft delete hides it; restore brings it back disabled.
            #expect(try await app.request(.delete, "/api/products/\(product)", token: seller).errorCode == "confirmation_required")
            let deleted = try await app.request(.delete, "/api/products/\(product)?confirm=true", token: seller)
            #expect(deleted.status == .ok)
            #expect(deleted.json["deletedAt"] as? String != nil)
            #expect(try await app.request(.get, "/api/products/\(product)", token: seller).status == .notFound)
            #expect(try await app.request(.get, "/api/products/\(product)", token: TestApp.adminToken).status == .notFound)
            #expect(try await app.request(.get, "/api/products/\(product)?includeDeleted=true", token: TestApp.adminToken).status == .ok)
            let listed = try await app.request(.get, "/api/products", token: seller)
            #expect((listed.json["items"] as? [[String: Any]])?.contains { $0["id"] as? String == product } == false)
            #expect(try await app.request(.delete, "/api/products/\(product)?confirm=true", token: seller).status == .notFound)
            let restored = try await app.post("/api/products/\(product)/restore", seller)
            #expect(restored.status == .ok)
            #expect(restored.json["status"] as? String == "disabled")
            #expect(restored.json["deletedAt"] is NSNull)
            #expect(try await app.request(.get, "/api/products/\(product)", token: seller).status == .ok)
            #expect(try await app.post("/api/products/\(product)/restore", seller).errorCode == "invalid_transition")

            // More than 30 days after a delete, restore is refused.
            #expect(try await app.request(.delete, "/api/products/\(product)?confirm=true", token: seller).status == .ok)
            let longAgo = Int64((Date().timeIntervalSince1970 - 31 * 24 * 3600) * 1_000_000)
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE products SET deleted_at_micros = \(bind: longAgo) WHERE id = \(bind: product)").run()
            }
            let expired = try await app.post("/api/products/\(product)/restore", seller)
            #expect(expired.status == .conflict)
            #expect(expired.errorCode == "invalid_transition")

            let actions = try await app.adminActions(product).compactMap { ($0["details"] as? [String: Any])?["action"] as? String }
            #expect(actions == ["publish", "disable", "archive", "delete", "restore", "delete"])
        }
    }

    @Test(arguments: TestStores.kinds)
    func deletingADraftWorksAndAMemberCannotTouchAnotherSellersProduct(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let other = try await app.createUser(name: "other")
            let product = try await app.createProduct(token: seller, price: 500, stock: 10)
            let draft = try await app.createProduct(token: seller, price: 500, stock: 10, publish: false)
            for (method, path, body) in [
                (HTTPRequest.Method.get, "/api/products/\(product)/impact", nil as String?),
                (.post, "/api/products/\(product)/disable", #"{"confirm":true}"#),
                (.post, "/api/products/\(product)/archive", #"{"confirm":true}"#),
                (.delete, "/api/products/\(draft)?confirm=true", nil),
                (.post, "/api/products/\(draft)/restore", nil),
                (.patch, "/api/products/\(product)", #"{"price":1}"#),
                (.post, "/api/products/\(product)/restock", #"{"quantity":1}"#),
            ] {
                #expect(try await app.request(method, path, token: other, body: body).status == .notFound, "\(path)")
            }
            let bulk = try await app.post("/api/products/bulk-disable", other, #"{"ids":["\#(product)"],"confirm":true}"#)
            #expect(bulk.status == .forbidden)
            #expect(try await app.productStatus(product) == "active")
            #expect(try await app.productStatus(draft) == "draft")
            // A draft may be deleted (with confirmation) and restored as disabled, by its seller or an admin.
            #expect(try await app.request(.delete, "/api/products/\(draft)", token: TestApp.adminToken, body: #"{"confirm":true}"#).status == .ok)
            #expect(try await app.post("/api/products/\(draft)/restore", TestApp.adminToken).json["status"] as? String == "disabled")
            let record = try #require(try await app.adminActions(draft).last?["details"] as? [String: Any])
            #expect(record["actorRole"] as? String == "admin")
        }
    }

    @Test(arguments: TestStores.kinds)
    func bulkDisableChangesAllOrNothing(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            var products: [String] = []
            for index in 0..<50 { products.append(try await app.createProduct(token: seller, sku: "bulk-\(index)", stock: 5)) }
            let draft = try await app.createProduct(token: seller, sku: "bulk-draft", publish: false)
            let buyer = try await app.buyer(funds: 10_000)
            #expect(try await app.order(token: buyer.token, wallet: buyer.wallet, [(products[7], 1)]).status == .created)
            func ids(_ list: [String]) -> String { list.map { #""\#($0)""# }.joined(separator: ",") }

            // One bad id among 50: named, nothing changed (404 for a missing product, 409 for one in another status).
            let missing = UUID().uuidString.lowercased()
            for (bad, problem, status) in [(draft, "not_active (draft)", HTTPResponse.Status.conflict), (missing, "not_found", .notFound)] {
                var mixed = products
                mixed[20] = bad
                let refused = try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":[\#(ids(mixed))],"confirm":true}"#)
                #expect(refused.status == status)
                let problems = try #require(refused.errorDetails?["problems"] as? [[String: Any]])
                #expect(problems.count == 1)
                #expect(problems.first?["id"] as? String == bad)
                #expect(problems.first?["problem"] as? String == problem)
            }
            for product in products { #expect(try await app.productStatus(product) == "active") }

            // All good but unconfirmed: 409 with each product's impact.
            let unconfirmed = try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":[\#(ids(products))]}"#)
            #expect(unconfirmed.errorCode == "confirmation_required")
            #expect((unconfirmed.errorDetails?["impacts"] as? [Any])?.count == 50)
            #expect(unconfirmed.errorDetails?["openOrders"] as? Int == 1)
            for product in products { #expect(try await app.productStatus(product) == "active") }

            // A failure after the status change rolls every change back, evidence included.
            try app.services.failpoints.arm(ProductService.Failpoint.afterChange, .once)
            let failed = try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":[\#(ids(products))],"confirm":true}"#)
            #expect(failed.status == .internalServerError)
            for product in products { #expect(try await app.productStatus(product) == "active") }
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE details LIKE '%bulk_disable%'") == 0)

            let done = try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":[\#(ids(products))],"confirm":true}"#)
            #expect(done.status == .ok)
            #expect(done.json["disabled"] as? Int == 50)
            for product in products { #expect(try await app.productStatus(product) == "disabled") }
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE details LIKE '%bulk_disable%'") == 50)
            #expect(try await app.request(.get, "/api/admin/evidence/verify", token: TestApp.adminToken).json["valid"] as? Bool == true)

            let tooMany = (0...500).map { _ in #""\#(UUID().uuidString.lowercased())""# }.joined(separator: ",")
            #expect(try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":[\#(tooMany)],"confirm":true}"#).errorDetails?["field"] as? String == "ids")
            #expect(try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":[],"confirm":true}"#).status == .unprocessableContent)
            #expect(try await app.post("/api/products/bulk-disable", TestApp.adminToken, #"{"ids":["x"]}"#).errorDetails?["field"] as? String == "ids[0]")
        }
    }

    @Test(arguments: TestStores.kinds)
    func aFailureBeforeTheEvidenceRowRollsTheChangeBack(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 500, stock: 10)
            let before = try await app.adminActions(product).count
            let steps: [(String, String?, String)] = [
                ("/api/products/\(product)/disable", #"{"confirm":true}"#, "active"),
                ("/api/products/\(product)/restock", #"{"quantity":5}"#, "active"),
            ]
            for (path, body, status) in steps {
                try app.services.failpoints.arm(ProductService.Failpoint.afterChange, .once)
                #expect(try await app.post(path, seller, body).status == .internalServerError, "\(path)")
                #expect(try await app.productStatus(product) == status)
            }
            #expect(try await app.stock(product) == 10)
            #expect(try await app.adminActions(product).count == before)
        }
    }

    @Test(arguments: TestStores.kinds)
    func everyAdminActionLeavesOneRecordIncludingUserCreation(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let created = try await app.request(.post, "/api/users", token: TestApp.adminToken, body: #"{"name":"Ada Lovelace","role":"member"}"#)
            let userId = try #require(created.json["id"] as? String)
            let userRecord = try #require(try await app.adminActions(userId).first)
            #expect(userRecord["entityType"] as? String == "user")
            #expect((userRecord["details"] as? [String: Any])?["action"] as? String == "create_user")
            #expect(!(try await app.request(.get, "/api/admin/evidence?entityId=\(userId)", token: TestApp.adminToken).body.contains("Ada")),
                    "no personal data in evidence")

            let seller = try #require(created.json["token"] as? String)
            let product = try await app.createProduct(token: seller, price: 500, stock: 10, publish: false)
            #expect(try await app.post("/api/products/\(product)/publish", seller).status == .ok)
            #expect(try await app.post("/api/products/\(product)/publish", seller).status == .ok)  // no change, no record
            #expect(try await app.request(.patch, "/api/products/\(product)", token: seller, body: #"{"price":650}"#).status == .ok)
            #expect(try await app.post("/api/products/\(product)/restock", seller, #"{"quantity":3}"#).status == .ok)
            let records = try await app.adminActions(product)
            let actions = records.compactMap { ($0["details"] as? [String: Any])?["action"] as? String }
            #expect(actions == ["publish", "edit", "restock"])
            let edit = try #require(records[1]["details"] as? [String: Any])
            #expect((edit["before"] as? [String: Any])?["price"] as? Int == 500)
            #expect((edit["after"] as? [String: Any])?["price"] as? Int == 650)
            let restock = try #require(records[2]["details"] as? [String: Any])
            #expect((restock["after"] as? [String: Any])?["stock"] as? Int == 13)
            #expect(records.allSatisfy { ($0["details"] as? [String: Any])?["actorId"] as? String == userId })
        }
    }

    /// 100 orders race a disable-then-delete of their product: the delete either is blocked by open orders or
    /// happens with none open, and no open order ever references a deleted product.
    @Test(arguments: TestStores.kinds)
    func ordersRacingADisableThenDeleteNeverLeaveAnOpenOrderOnADeletedProduct(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            var buyers: [(token: String, wallet: String)] = []
            for index in 0..<10 { buyers.append(try await app.buyer("buyer\(index)", funds: 1_000_000)) }
            let team = buyers
            let outcomes = Locked<[UInt]>([])
            for round in 0..<3 {
                let product = try await app.createProduct(token: seller, sku: "race-\(round)", price: 100, stock: 1000)
                let tally = StatusTally()
                let outcome = Locked<(disable: UInt, delete: UInt, code: String?)>((0, 0, nil))
                // Round 0: the orders come once the delete has answered (it finds none open and goes through).
                // Round 1: the orders are spread over 100 ms and the disable lands 30 ms in. Round 2: all at once.
                let disableDelay = Duration.milliseconds([0, 30, 0][round])
                let orderSpacing = [0, 1, 0][round]
                let deleteAnswered = Locked(false)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await Task.sleep(for: disableDelay)
                        let disable = try await app.post("/api/products/\(product)/disable", seller, #"{"confirm":true}"#)
                        let delete = try await app.request(.delete, "/api/products/\(product)?confirm=true", token: seller)
                        outcome.withLock { $0 = (UInt(disable.status.code), UInt(delete.status.code), delete.errorCode) }
                        deleteAnswered.withLock { $0 = true }
                    }
                    for index in 0..<100 {
                        group.addTask {
                            while round == 0, !deleteAnswered.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
                            try await Task.sleep(for: .milliseconds(index * orderSpacing))
                            let buyer = team[index % team.count]
                            tally.add(try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)]).status)
                        }
                    }
                    try await group.waitForAll()
                }
                let result = outcome.withLock { $0 }
                outcomes.withLock { $0.append(result.delete) }
                #expect(result.disable == 200)
                #expect(Set(tally.all.keys).isSubset(of: [201, 422]), "\(tally.all)")
                let open = try await app.integer("""
                    SELECT count(*) AS n FROM order_items i JOIN orders o ON o.id = i.order_id
                    WHERE i.product_id = \(bind: product) AND o.status IN ('paid', 'shipped')
                    """)
                #expect(open == Int64(tally[201]))
                let deletedAt = try await app.integer("SELECT COALESCE(deleted_at_micros, 0) AS n FROM products WHERE id = \(bind: product)")
                if result.delete == 200 {
                    #expect(open == 0, "deleted with open orders")
                    #expect(deletedAt > 0)
                } else {
                    #expect(result.delete == 409 && result.code == "blocked", "\(result)")
                    #expect(open > 0)
                    #expect(deletedAt == 0)
                }
                #expect(try await app.stock(product) + app.unitsSold(product) == 1000)
            }
            // The round whose orders come after the delete found none open: its delete went through.
            #expect(outcomes.withLock { $0 }.first == 200)
        }
    }
}
