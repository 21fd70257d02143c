import AsyncHTTPClient
import BallastConfig
import BallastTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import SQLKit
import Storage
import Synchronization
import Testing

extension ChildProcesses {
    /// I4 and I5 against a real `ballast serve`: orders and cancels from concurrent clients, SIGKILL in the middle,
    /// restart, then every acknowledged write is there and every ledger and stock level adds up.
    @Suite("Crash safety", .serialized)
    struct CrashSafetyTests {
        static let adminToken = String(repeating: "c", count: 40)

        @Test(arguments: TestStores.kinds)
        func acknowledgedOrdersSurviveSIGKILLAndEverythingAddsUp(kind: StoreKind) async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            try await TestStores.withFreshURL(kind) { url in
                let environment = [
                    "DATABASE_URL": CLITests.connectionString(url), "SHADOW_DATABASE_URL": "none",
                    "BALLAST_ADMIN_TOKEN": Self.adminToken, "LOG_LEVEL": "warning",
                ]
                var server = try await Server.start(environment: environment, folder: folder)
                defer { server.kill() }
                let api = server.api

                let seller = try await api.createUser("seller")
                var products: [String] = []
                for index in 0..<3 {
                    let product = try await api.call(.POST, "/api/products", seller,
                                                     #"{"sku":"crash-\#(index)","name":"Crash \#(index)","price":150,"stock":400}"#)
                    let id = try #require(product.json["id"] as? String)
                    #expect(try await api.call(.POST, "/api/products/\(id)/publish", seller, "{}").status == 200)
                    products.append(id)
                }
                var buyers: [(token: String, wallet: String)] = []
                for index in 0..<8 {
                    let token = try await api.createUser("buyer\(index)")
                    let wallet = try #require(try await api.call(.POST, "/api/wallets", token, "{}").json["id"] as? String)
                    #expect(try await api.call(.POST, "/api/wallets/\(wallet)/credit", Self.adminToken, #"{"amount":1000000}"#).status == 200)
                    buyers.append((token, wallet))
                }

                // 16 clients order (and now and then cancel) until the server dies under them.
                let acknowledged = Acknowledged()
                let team = buyers, catalog = products
                let load = Task {
                    await withTaskGroup(of: Void.self) { group in
                        for client in 0..<16 {
                            group.addTask {
                                let buyer = team[client % team.count]
                                var step = 0
                                while !Task.isCancelled {
                                    step += 1
                                    let first = catalog[(client + step) % catalog.count]
                                    let second = catalog[(client + step + 1) % catalog.count]
                                    let items = step % 2 == 0
                                        ? #"[{"productId":"\#(first)","quantity":1}]"#
                                        : #"[{"productId":"\#(second)","quantity":2},{"productId":"\#(first)","quantity":1}]"#
                                    guard let placed = try? await api.call(.POST, "/api/orders", buyer.token, """
                                        {"walletId":"\(buyer.wallet)","items":\(items),"destination":{"country":"US","postalCode":"1"}}
                                        """, timeout: .seconds(5)) else { return }
                                    // 409 (stock or money ran out) and 503 are answers of this server under load; anything
                                    // else means the peer is not the server this test started.
                                    guard placed.status == 201, let id = placed.json["id"] as? String else {
                                        if placed.status == 409 || placed.status == 503 { continue } else { return }
                                    }
                                    acknowledged.withLock { $0[id] = "paid" }
                                    if step % 4 == 0 {
                                        guard let cancel = try? await api.call(.POST, "/api/orders/\(id)/cancel", buyer.token, "{}", timeout: .seconds(5))
                                        else { return }
                                        if cancel.status == 200 { acknowledged.withLock { $0[id] = "cancelled" } }
                                    }
                                }
                            }
                        }
                    }
                }
                // Let the load build up, then kill the server mid-flight.
                var before = 0
                for _ in 0..<400 where before < 100 {
                    try await Task.sleep(for: .milliseconds(50))
                    before = acknowledged.withLock { $0.count }
                }
                server.kill()
                // The clients stop on their own when calls fail; cancelling makes sure they stop even if something
                // else answers on the dead server's port.
                load.cancel()
                await load.value
                let answered = acknowledged.withLock { $0 }
                #expect(answered.count >= 100, "the load placed orders before the kill")

                server = try await Server.start(environment: environment, folder: folder)
                // I5: every order answered 201 exists, in the state the client was last told.
                for (id, status) in answered {
                    let order = try await server.api.call(.GET, "/api/orders/\(id)", Self.adminToken, nil)
                    #expect(order.status == 200, "order \(id) was acknowledged but is gone")
                    #expect(order.json["status"] as? String == status, "order \(id)")
                }
                try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                    try await database.read { sql in try await Self.checkInvariants(sql) }
                }
                server.kill()
            }
        }

        /// I2–I4 on the store itself.
        static func checkInvariants(_ sql: any SQLDatabase) async throws {
            struct Mismatch: Decodable { let id: String }
            // Every wallet's balance equals its ledger.
            let wallets = try await sql.raw("""
                SELECT w.id FROM wallets w
                WHERE w.balance <> (SELECT COALESCE(SUM(CASE WHEN t.kind = 'credit' THEN t.amount ELSE -t.amount END), 0)
                                    FROM wallet_transactions t WHERE t.wallet_id = w.id)
                """).all(decoding: Mismatch.self)
            #expect(wallets.isEmpty, "wallets whose balance differs from their ledger: \(wallets.map(\.id))")
            // For every product, stock + units in non-cancelled orders = units ever stocked.
            let products = try await sql.raw("""
                SELECT p.id FROM products p
                WHERE p.stock + (SELECT COALESCE(SUM(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id
                                 WHERE i.product_id = p.id AND o.status <> 'cancelled') <> p.units_stocked
                """).all(decoding: Mismatch.self)
            #expect(products.isEmpty, "products whose stock does not add up: \(products.map(\.id))")
            // Every order has its items and exactly one payment of its total; cancelled ones exactly one refund.
            let orders = try await sql.raw("""
                SELECT o.id FROM orders o
                WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)
                   OR (SELECT count(*) FROM wallet_transactions t WHERE t.order_id = o.id AND t.kind = 'debit' AND t.amount = o.total) <> 1
                   OR (SELECT count(*) FROM wallet_transactions t WHERE t.order_id = o.id AND t.kind = 'credit')
                      <> CASE WHEN o.status = 'cancelled' THEN 1 ELSE 0 END
                """).all(decoding: Mismatch.self)
            #expect(orders.isEmpty, "orders without their items, payment or refund: \(orders.map(\.id))")
            // No payment without its order.
            let orphans = try await sql.raw("""
                SELECT t.id FROM wallet_transactions t
                WHERE t.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = t.order_id)
                """).all(decoding: Mismatch.self)
            #expect(orphans.isEmpty, "ledger rows for orders that do not exist: \(orphans.map(\.id))")
        }
    }
}

/// Order id → the status its client was last told, shared by the load's tasks.
final class Acknowledged: Sendable {
    private let orders = Mutex<[String: String]>([:])
    func withLock<R: Sendable>(_ body: (inout [String: String]) -> R) -> R { orders.withLock { body(&$0) } }
}

/// A `ballast serve` child process and a small JSON client for it.
struct Server {
    let child: BallastProcess
    let api: APIClient

    static func start(environment: [String: String], folder: URL) async throws -> Server {
        let port = try freeLoopbackPort()
        let child = try BallastProcess(["serve", "--port", String(port)], environment: environment, workingDirectory: folder)
        let api = APIClient(base: "http://127.0.0.1:\(port)", adminToken: ChildProcesses.CrashSafetyTests.adminToken)
        for _ in 0..<600 {
            if (try? await api.call(.GET, "/health/ready", nil, nil))?.status == 200 { return Server(child: child, api: api) }
            try await Task.sleep(for: .milliseconds(100))
        }
        child.signal(SIGKILL)
        throw BallastProcess.TimedOut(what: "ballast serve start-up: \(child.readStderr())")
    }

    func kill() { child.stop() }
}

struct APIClient: Sendable {
    let base: String
    let adminToken: String

    func call(
        _ method: HTTPMethod, _ path: String, _ token: String?, _ body: String?, timeout: TimeAmount = .seconds(30)
    ) async throws -> (status: UInt, json: [String: Any]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return (response.status.code, json)
    }

    func createUser(_ name: String) async throws -> String {
        let reply = try await call(.POST, "/api/users", adminToken, #"{"name":"\#(name)","role":"member"}"#)
        guard let token = reply.json["token"] as? String else { throw BallastProcess.TimedOut(what: "user creation: \(reply)") }
        return token
    }
}
