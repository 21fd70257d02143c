import BallastTestSupport
import ChaosKit
import DomainValues
import Foundation
import HTTPTypes
import Commerce
import Synchronization
import Testing

/// Hostile input through the whole API (SPEC I10, I11, §3): text the databases count or store differently, races
/// that must be 409s, read faults, another user's wallet in an answer, methods a path does not route.
@Suite("Hostile input", .timeLimit(.minutes(10)))
struct HostileInputTests {
    /// What an answer is, for comparing stores: status, error code and the field named.
    struct Answer: Equatable, CustomStringConvertible {
        let status: UInt
        let code: String?
        let field: String?
        init(_ reply: TestReply) {
            status = UInt(reply.status.code)
            code = reply.errorCode
            field = reply.errorDetails?["field"] as? String
        }
        var description: String { "\(status) \(code ?? "-") \(field ?? "-")" }
    }

    static let hostile: [(name: String, text: String)] = [
        ("NUL", "desk\u{0}"), ("a newline", "oak\ndesk"), ("DEL", "desk\u{7F}"), ("an escape", "\u{1B}[31mred"),
        ("130 flags (260 scalars)", String(repeating: "🇺🇸", count: 130)), ("a letter and 300 combining marks", "a" + String(repeating: "\u{301}", count: 300)),
        ("only blanks", " \u{3000}\u{A0} "),
    ]

    /// Every request below, on every store: always a 4xx naming the field, never a change, and the same answer on
    /// SQLite and PostgreSQL.
    @Test func theSameHostileTextGetsTheSameAnswerOnEveryStore() async throws {
        let answers = Locked<[StoreKind: [String: Answer]]>([:])
        for kind in TestStores.kinds {
            try await TestApp.run(kind) { app in
                let member = try await app.createUser(name: "member")
                let wallet = try await app.openWallet(token: member)
                try await app.credit(wallet, 1000)
                var seen: [String: Answer] = [:]
                for (name, text) in Self.hostile {
                    let quoted = String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
                    let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                    let requests: [(String, HTTPRequest.Method, String, String?, String?)] = [
                        ("listing title", .post, "/api/listings", #"{"title":\#(quoted),"price":100}"#, "title"),
                        ("product name", .post, "/api/products", #"{"sku":"s-1","name":\#(quoted),"price":100,"stock":1}"#, "name"),
                        ("debit reference", .post, "/api/wallets/\(wallet)/debit", #"{"amount":1,"reference":\#(quoted)}"#, "reference"),
                        ("user name", .post, "/api/users", #"{"name":\#(quoted),"role":"member"}"#, "name"),
                        ("postal code", .post, "/api/orders", #"{"walletId":"\#(wallet)","items":[{"productId":"\#(UUID())","quantity":1}],"destination":{"country":"US","postalCode":\#(quoted)}}"#, "destination.postalCode"),
                        ("chaos seed", .put, "/api/admin/chaos", #"{"seed":\#(quoted)}"#, "seed"),
                        ("evidence filter", .get, "/api/admin/evidence?entityId=\(encoded)", nil, "entityId"),
                        ("cursor", .get, "/api/listings?cursor=\(encoded)", nil, "cursor"),
                    ]
                    for (what, method, path, body, field) in requests {
                        let token = ["user name", "chaos seed", "evidence filter"].contains(what) ? TestApp.adminToken : member
                        let reply = try await app.request(method, path, token: token, body: body)
                        let answer = Answer(reply)
                        let label = "\(what) with \(name)"
                        #expect(answer.status == 422, "\(label): \(reply.body)")
                        #expect(answer.field == field, "\(label): \(reply.body)")
                        seen[label] = answer
                    }
                }
                // Nothing was written by any of them.
                #expect(try await app.integer("SELECT count(*) AS n FROM listings") == 0)
                #expect(try await app.integer("SELECT count(*) AS n FROM products") == 0)
                #expect(try await app.ledgerCount(wallet) == 1)
                #expect(try await app.integer("SELECT count(*) AS n FROM chaos_state WHERE version > 0") == 0)
                answers.withLock { $0[kind] = seen }
            }
        }
        let all = answers.withLock { $0 }
        if let sqlite = all[.sqlite], let postgres = all[.postgres] {
            for (label, answer) in sqlite { #expect(postgres[label] == answer, "\(label): SQLite \(answer), PostgreSQL \(postgres[label].map(\.description) ?? "none")") }
        }
    }

    /// Generated text through the API: every answer is 201 or a 422 naming the field, the stores agree, and what
    /// was accepted reads back exactly (without its outer blanks).
    @Test func generatedTitlesGetTheSameAnswerOnEveryStore() async throws {
        var random = SplitMix64(seed: 14)
        let alphabet: [ClosedRange<UInt32>] = [0x00...0x1F, 0x20...0x7E, 0x7F...0x7F, 0xA0...0xFF, 0x300...0x36F, 0x2000...0x200A,
                                               0x3000...0x3000, 0xFEFF...0xFEFF, 0x1F1E6...0x1F1FF, 0x1F600...0x1F64F]
        var generated: [String] = []
        for _ in 0..<150 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<random.below(230) {
                let range = alphabet[random.below(alphabet.count)]
                scalars.append(Unicode.Scalar(range.lowerBound + UInt32(random.below(Int(range.upperBound - range.lowerBound) + 1)))!)
            }
            generated.append(String(scalars))
        }
        let answers = Locked<[StoreKind: [Answer]]>([:])
        let titles = generated
        for kind in TestStores.kinds {
            try await TestApp.run(kind) { app in
                let member = try await app.createUser(name: "member")
                var seen: [Answer] = []
                for title in titles {
                    let quoted = String(decoding: try JSONEncoder().encode(title), as: UTF8.self)
                    let reply = try await app.request(.post, "/api/listings", token: member, body: #"{"title":\#(quoted),"price":1}"#)
                    let answer = Answer(reply)
                    #expect(answer.status == 201 || (answer.status == 422 && answer.field == "title"), "\(title.debugDescription): \(reply.body)")
                    #expect((answer.status == 201) == (TextRule.printable(max: 200).problem(with: title) == nil), "\(title.debugDescription)")
                    if answer.status == 201, let id = reply.json["id"] as? String {
                        let read = try await app.request(.get, "/api/listings/\(id)", token: member)
                        #expect(read.json["title"] as? String == (try? TextRule.printable(max: 200).check(title, field: "title")))
                    }
                    seen.append(answer)
                }
                answers.withLock { $0[kind] = seen }
            }
        }
        let all = answers.withLock { $0 }
        if let sqlite = all[.sqlite], let postgres = all[.postgres] { #expect(sqlite == postgres) }
    }

    @Test(arguments: TestStores.kinds)
    func concurrentCreatesOfOneSKUAreOneCreatedAndTheRestConflicts(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let tally = StatusTally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<120 {
                    group.addTask {
                        tally.add(try await app.request(.post, "/api/products", token: seller,
                                                        body: #"{"sku":"same-sku","name":"Mug","price":100,"stock":1}"#).status)
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all == [201: 1, 409: 119])
            #expect(try await app.integer("SELECT count(*) AS n FROM products") == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func restoresRacingForOneSKUAreOneRestoredAndAConflict(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            var deleted: [String] = []
            for _ in 0..<2 {
                let id = try await app.createProduct(token: seller, sku: "twin", publish: false)
                #expect(try await app.request(.delete, "/api/products/\(id)?confirm=true", token: seller).status == .ok)
                deleted.append(id)
            }
            for _ in 0..<20 {
                let tally = StatusTally()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for id in deleted {
                        group.addTask { tally.add(try await app.request(.post, "/api/products/\(id)/restore", token: seller).status) }
                    }
                    try await group.waitForAll()
                }
                #expect(tally.all == [200: 1, 409: 1])
                // Put the one restored back to deleted for the next round.
                let live = try await app.integer("SELECT count(*) AS n FROM products WHERE deleted_at_micros IS NULL")
                #expect(live == 1)
                for id in deleted where try await app.productStatus(id) != nil {
                    _ = try await app.request(.delete, "/api/products/\(id)?confirm=true", token: seller)
                }
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func concurrentRetriesOfOneDeadNotificationAreOneRetryAndConflicts(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: ["CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "1", "CHAOS_SCOPE": "all_writes",
                                                  "NOTIFY_MAX_ATTEMPTS": "1"]) { app in
            _ = try await app.placeNotifiedOrder()
            try await app.dispatchUntilQuiet()
            #expect(try await app.notificationStatuses() == ["dead": 2])
            let dead = try await app.request(.get, "/api/admin/notifications?status=dead", token: TestApp.adminToken)
            let id = try #require((dead.json["items"] as? [[String: Any]])?.first?["id"] as? String)
            let tally = StatusTally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<60 {
                    group.addTask {
                        tally.add(try await app.request(.post, "/api/admin/notifications/\(id)/retry", token: TestApp.adminToken).status)
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all == [200: 1, 409: 59])
            #expect(try await app.adminActions(id).count == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func readFaultsAnswer503FaultInjectedAndDoNotTripTheGuard(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let member = try await app.createUser(name: "member")
            let wallet = try await app.openWallet(token: member)
            try await app.credit(wallet, 10_000)
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 100, stock: 10)
            let order = try #require(try await app.order(token: member, wallet: wallet, [(product, 1)]).json["id"] as? String)
            let listing = try #require(try await app.request(.post, "/api/listings", token: member,
                                                             body: #"{"title":"Desk","price":100}"#).json["id"] as? String)
            let reads = ["/api/listings/\(listing)", "/api/listings", "/api/products/\(product)", "/api/products",
                         "/api/orders/\(order)", "/api/wallets/\(wallet)", "/api/wallets/\(wallet)/transactions"]
            for path in reads { #expect(try await app.request(.get, path, token: member).status == .ok, "\(path) before") }

            let on = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken,
                                           body: #"{"enabled":true,"scope":"reads","failRate":1}"#)
            #expect(on.status == .ok)
            for _ in 0..<20 {
                for path in reads {
                    let reply = try await app.request(.get, path, token: member)
                    #expect(reply.status == .serviceUnavailable, "\(path)")
                    #expect(reply.errorCode == "fault_injected", "\(path)")
                    #expect(reply.headers[.retryAfter] == "1", "\(path)")
                }
            }
            let counted = try await app.metric(#"chaos_injected_faults_total{entity_type="listing",operation="read"}"#)
                + app.metric(#"chaos_injected_faults_total{entity_type="product",operation="read"}"#)
                + app.metric(#"chaos_injected_faults_total{entity_type="order",operation="read"}"#)
                + app.metric(#"chaos_injected_faults_total{entity_type="wallet",operation="read"}"#)
            #expect(counted == 140)
            // 140 injected 503s in the last minute: expected failures, so the guard stays quiet and chaos stays on.
            #expect(app.services.steadyState.tripReason(abortErrorRate: 0.01) == nil)
            await app.services.chaosMonitor.tick()
            #expect(app.services.injector.state.isLive())
            // Writes are untouched by the read scope's read points.
            #expect(try await app.request(.post, "/api/wallets/\(wallet)/debit", token: member, body: #"{"amount":1}"#).status == .ok)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aTransferShowsTheTargetWalletOnlyToItsOwnerOrAnAdmin(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let alice = try await app.createUser(name: "alice")
            let bob = try await app.createUser(name: "bob")
            let aliceWallet = try await app.openWallet(token: alice)
            let aliceSecond = try await app.openWallet(token: alice)
            let bobWallet = try await app.openWallet(token: bob)
            let bobEuro = try await app.openWallet(token: bob, currency: "EUR")
            try await app.credit(aliceWallet, 1000)

            func transfer(_ token: String, _ from: String, _ to: String) async throws -> TestReply {
                try await app.request(.post, "/api/transfers", token: token,
                                      body: #"{"fromWalletId":"\#(from)","toWalletId":"\#(to)","amount":1}"#)
            }
            let toStranger = try await transfer(alice, aliceWallet, bobWallet)
            #expect(toStranger.status == .created)
            let to = try #require(toStranger.json["to"] as? [String: Any])
            #expect(to.keys.sorted() == ["id"], "nothing of bob's wallet but its id: \(toStranger.body)")
            let bobId = try await app.userId(bob)
            #expect(!toStranger.body.contains(bobId))

            let toOwn = try await transfer(alice, aliceWallet, aliceSecond)
            #expect((toOwn.json["to"] as? [String: Any])?["balance"] as? Int == 1)
            let byAdmin = try await transfer(TestApp.adminToken, aliceWallet, bobWallet)
            #expect((byAdmin.json["to"] as? [String: Any])?["balance"] as? Int == 2)

            // A currency mismatch tells nothing of another user's wallet: it answers as if the wallet were absent.
            let mismatch = try await transfer(alice, aliceWallet, bobEuro)
            #expect(mismatch.status == .notFound)
            #expect(!mismatch.body.contains("EUR"), "\(mismatch.body)")
            let aliceEuro = try await app.openWallet(token: alice, currency: "EUR")
            #expect(try await transfer(alice, aliceWallet, aliceEuro).status == .unprocessableContent, "her own: she may know")
            // And an idempotent replay answers the stranger the same redacted shape.
            var headers = HTTPFields()
            headers[HTTPField.Name("Idempotency-Key")!] = "t-1"
            let first = try await app.request(.post, "/api/transfers", token: alice, headers: headers,
                                              body: #"{"fromWalletId":"\#(aliceWallet)","toWalletId":"\#(bobWallet)","amount":1}"#)
            let again = try await app.request(.post, "/api/transfers", token: alice, headers: headers,
                                              body: #"{"fromWalletId":"\#(aliceWallet)","toWalletId":"\#(bobWallet)","amount":1}"#)
            #expect(first.body == again.body)
            #expect(((again.json["to"] as? [String: Any])?.keys.sorted()) == ["id"])
        }
    }

    @Test func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        try await TestApp.run(.sqlite) { app in
            let member = try await app.createUser(name: "member")
            let wallet = UUID().uuidString.lowercased()
            let cases: [(HTTPRequest.Method, String, String)] = [
                (.delete, "/api/wallets/\(wallet)", "GET"), (.put, "/api/products/bulk-disable", "POST"),
                (.get, "/api/transfers", "POST"), (.post, "/api/products/\(wallet)", "GET, PATCH, DELETE"),
                (.patch, "/api/admin/chaos", "GET, PUT"), (.put, "/health", "GET"),
            ]
            for (method, path, allow) in cases {
                let reply = try await app.request(method, path, token: member)
                #expect(reply.status == .methodNotAllowed, "\(method) \(path)")
                #expect(reply.headers[.allow] == allow, "\(method) \(path)")
                #expect(reply.errorCode == "method_not_allowed")
            }
            let options = try await app.request(.options, "/api/wallets/\(wallet)/debit", token: member)
            #expect(options.status == .noContent)
            #expect(options.headers[.allow] == "POST, OPTIONS")
            #expect(try await app.request(.get, "/api/no/such/thing", token: member).status == .notFound)
            // Strangers learn nothing about /api paths.
            #expect(try await app.request(.delete, "/api/wallets/\(wallet)").status == .unauthorized)
        }
    }
}

extension TestApp {
    func userId(_ token: String) async throws -> String {
        try await request(.get, "/api/users/me", token: token).json["id"] as? String ?? ""
    }
}
