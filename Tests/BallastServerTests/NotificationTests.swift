import BallastServer
import BallastTestSupport
import ChaosKit
import DomainValues
import EvidenceStore
import Foundation
import HTTPTypes
import Commerce
import SQLKit
import Storage
import Telemetry
import Testing

extension TestApp {
    /// Places one order (two notifications: the buyer's email and the seller's push) and answers its id.
    func placeNotifiedOrder() async throws -> String {
        let seller = try await createUser(name: "seller")
        let product = try await createProduct(token: seller, price: 100, stock: 10)
        let buyer = try await buyer(funds: 10_000)
        let reply = try await order(token: buyer.token, wallet: buyer.wallet, [(product, 1)])
        guard reply.status == .created, let id = reply.json["id"] as? String else {
            throw AppError(.internal, "order failed: \(reply.body)")
        }
        return id
    }

    func notificationStatuses() async throws -> [String: Int] {
        struct Row: Decodable {
            let status: String
            let n: Int64
        }
        let rows = try await services.primary.read { sql in
            try await sql.raw("SELECT status, CAST(count(*) AS BIGINT) AS n FROM notifications GROUP BY status").all(decoding: Row.self)
        }
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.status, Int($0.n)) })
    }

    /// Runs dispatcher rounds until nothing is due (at most `rounds`), waiting `pause` between them.
    func dispatchUntilQuiet(rounds: Int = 50, pause: Duration = .milliseconds(20)) async throws {
        for _ in 0..<rounds {
            let claimed = try await services.dispatcher.runOnce()
            if claimed == 0, try await notificationStatuses()["pending"] ?? 0 == 0 { return }
            try await Task.sleep(for: pause)
        }
    }
}

/// The chaos suite "external services", part three: notifications. The order never waits for them; every one
/// ends delivered or dead (with evidence), none is lost, and several dispatchers never deliver one at once.
@Suite("Notifications", .timeLimit(.minutes(10)))
struct NotificationTests {
    static func webhook(_ provider: FakeProvider) -> [String: String] {
        ["NOTIFY_WEBHOOK_URL": provider.url + "/hooks", "NOTIFY_MAX_ATTEMPTS": "3", "NOTIFY_RETRY_BASE_MS": "1",
         "NOTIFY_RETRY_MAX_MS": "5"]
    }

    @Test(arguments: TestStores.kinds)
    func aFailingWebhookNeverFailsTheOrderAndDeadOnesCanBeRetried(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.status = .internalServerError }
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                _ = try await app.placeNotifiedOrder()
                try await app.dispatchUntilQuiet()
                #expect(try await app.notificationStatuses() == ["dead": 2])
                #expect(provider.requests.count == 6, "three attempts each")
                let first = try #require(provider.requests.first)
                let key = try #require(first.headers[HTTPField.Name("Idempotency-Key")!])
                let body = try #require(try JSONSerialization.jsonObject(with: Data(first.body.utf8)) as? [String: Any])
                #expect(body["id"] as? String == key)
                #expect(["email", "push"].contains(body["channel"] as? String))
                #expect(body["recipient"] as? String != nil && body["template"] as? String != nil && body["data"] is [String: Any])
                #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'NOTIFICATION_DEAD_LETTERED'") == 2)
                #expect(try await app.metric(#"notifications_total{channel="email",outcome="dead"}"#) == 1)

                let dead = try await app.request(.get, "/api/admin/notifications?status=dead", token: TestApp.adminToken)
                let items = try #require(dead.json["items"] as? [[String: Any]])
                #expect(items.count == 2)
                let id = try #require(items.first?["id"] as? String)
                #expect(items.first?["lastError"] as? String != nil)
                provider.answer { $0.status = .accepted }
                let retried = try await app.request(.post, "/api/admin/notifications/\(id)/retry", token: TestApp.adminToken)
                #expect(retried.status == .ok)
                #expect(retried.json["status"] as? String == "pending")
                try await app.dispatchUntilQuiet()
                #expect(try await app.notificationStatuses() == ["dead": 1, "sent": 1])
                #expect(provider.requests.last?.headers[HTTPField.Name("Idempotency-Key")!] == id)
                let again = try await app.request(.post, "/api/admin/notifications/\(id)/retry", token: TestApp.adminToken)
                #expect(again.errorCode == "invalid_transition")
                #expect(try await app.request(.post, "/api/admin/notifications/\(UUID())/retry", token: TestApp.adminToken).status == .notFound)
                #expect(try await app.request(.get, "/api/admin/notifications?status=lost", token: TestApp.adminToken).status == .unprocessableContent)
                #expect(try await app.adminActions(id).count == 1)
            }
        }
    }

    /// A delivered notification whose outcome the store could not take at first is recorded `sent` once the store
    /// answers (the write is fenced by the claim and tried again while the claim lasts): never left pending, to be
    /// delivered a second time when its claim expires.
    @Test(arguments: TestStores.kinds)
    func aDeliveryWhoseOutcomeTheStoreRefusedOnceIsRecordedNotSentAgain(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                _ = try await app.placeNotifiedOrder()
                try app.services.failpoints.arm(NotificationDispatcher.Failpoint.beforeRecord, .once)
                #expect(try await app.services.dispatcher.runOnce() == 2)
                #expect(provider.requests.count == 2)
                #expect(try await app.notificationStatuses() == ["sent": 2], "the refused write was written again")
                #expect(try await app.services.dispatcher.runOnce() == 0)
                #expect(provider.requests.count == 2, "nothing was delivered twice")
            }
        }
    }

    /// A dispatcher held between delivering and recording, whose claim another dispatcher took meanwhile, records
    /// nothing: the row stays the other's (pending, its claim), and the late holder counts the claim as lost. The
    /// other delivery of the batch is recorded `sent` as usual.
    @Test(arguments: TestStores.kinds)
    func aLateRecordOfARowAnotherDispatcherClaimedWritesNothing(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                _ = try await app.placeNotifiedOrder()
                try app.services.failpoints.arm(NotificationDispatcher.Failpoint.beforeRecord, .pause)
                let batch = Task { try await app.services.dispatcher.runOnce() }
                #expect(await app.services.failpoints.waitUntilHeld(NotificationDispatcher.Failpoint.beforeRecord))
                // Wait for the other delivery's record, then take the held row over as another dispatcher would.
                let deadline = ContinuousClock.now + .seconds(30)
                while try await app.notificationStatuses()["sent"] != 1, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(25))
                }
                let before = try await app.notificationStatuses()
                if before != ["pending": 1, "sent": 1] { app.services.failpoints.release(NotificationDispatcher.Failpoint.beforeRecord) }
                try #require(before == ["pending": 1, "sent": 1], "the other delivery was recorded before the take-over")
                let future = Int64(Date().timeIntervalSince1970 * 1_000_000) + 60_000_000
                try await app.services.primary.transaction { sql in
                    try await sql.raw("""
                        UPDATE notifications SET claim_token = 'another-dispatcher', claimed_until_micros = \(bind: future)
                        WHERE status = 'pending'
                        """).run()
                }
                app.services.failpoints.release(NotificationDispatcher.Failpoint.beforeRecord)
                #expect(try await batch.value == 2)
                #expect(provider.requests.count == 2)
                #expect(try await app.notificationStatuses() == ["pending": 1, "sent": 1])
                #expect(try await app.integer("SELECT count(*) AS n FROM notifications WHERE claim_token = 'another-dispatcher'") == 1)
                let lost = try await app.metric(#"notifications_total{channel="email",outcome="claim_lost"}"#)
                    + app.metric(#"notifications_total{channel="push",outcome="claim_lost"}"#)
                #expect(lost == 1)
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func a429IsHonouredBeforeTheNextAttempt(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer {
                $0.status = .tooManyRequests
                $0.headers = [HTTPField.Name("Retry-After")!: "30"]
            }
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                _ = try await app.placeNotifiedOrder()
                #expect(try await app.services.dispatcher.runOnce() == 2)
                #expect(provider.requests.count == 2)
                // Nothing is due again before the 30 s the receiver asked for.
                #expect(try await app.services.dispatcher.runOnce() == 0)
                let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
                #expect(try await app.integer("SELECT CAST(min(next_attempt_at_micros) AS BIGINT) AS n FROM notifications") > now + 25_000_000)
                #expect(try await app.notificationStatuses() == ["pending": 2])
                #expect(try await app.metric(#"notifications_total{channel="push",outcome="throttled"}"#) == 1)
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func everythingFailingAtOnceStillSellsAndLosesNoNotification(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            var environment = Self.webhook(provider)
            environment.merge(["CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "1", "CHAOS_SCOPE": "all_writes",
                               "SHIPPING_RATES_URL": provider.url + "/rates"]) { _, new in new }
            try await TestApp.run(kind, environment: environment) { (app: TestApp) async throws in
                for _ in 0..<5 { _ = try await app.placeNotifiedOrder() }
                #expect(try await app.orderCount() == 5)
                try await app.dispatchUntilQuiet()
                #expect(try await app.notificationStatuses() == ["dead": 10], "every notification ends dead, none lost")
                #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'NOTIFICATION_DEAD_LETTERED'") == 10)
                #expect(provider.requests.isEmpty, "every call was an injected failure")
            }
        }
    }

    /// A dispatcher stopped mid-batch leaves claimed rows; once the claims expire another delivers them all.
    @Test(arguments: TestStores.kinds)
    func aDispatcherKilledMidBatchLosesNothing(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.delay = .milliseconds(400) }
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                for _ in 0..<3 { _ = try await app.placeNotifiedOrder() }
                let interrupted = Task { try await app.services.dispatcher.runOnce() }
                try await Task.sleep(for: .milliseconds(150))
                interrupted.cancel()
                _ = await interrupted.result
                // The claims of the dead process expire (120 s, shortened here by moving the clock of the rows).
                try await app.services.primary.transaction { sql in
                    try await sql.raw("UPDATE notifications SET claimed_until_micros = 1 WHERE status = 'pending'").run()
                }
                provider.answer { $0.delay = .zero }
                try await app.dispatchUntilQuiet()
                #expect(try await app.notificationStatuses() == ["sent": 6])
                let keys = Set(provider.requests.compactMap { $0.headers[HTTPField.Name("Idempotency-Key")!] })
                #expect(keys.count == 6, "every notification delivered at least once")
            }
        }
    }

    /// Two dispatchers with their own pools on one store, racing over 40 notifications.
    @Test(arguments: TestStores.kinds)
    func twoDispatchersNeverDeliverOneNotificationAtTheSameTime(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.delay = .milliseconds(20) }
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                for _ in 0..<20 { _ = try await app.placeNotifiedOrder() }
                try await Database.withRunning(app.services.primary.url, poolSize: 4, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait,
                                               logger: TestStores.logger) { second in
                    let metrics = MetricsRegistry()
                    let other = NotificationDispatcher(
                        database: second, transport: WebhookTransport(url: URL(string: provider.url + "/hooks")!),
                        settings: .init(maxAttempts: 3, retryBaseMilliseconds: 1, retryMaxMilliseconds: 5),
                        injector: app.services.injector, evidence: EvidenceLog(database: second),
                        metrics: metrics.factory, logger: TestStores.logger)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for dispatcher in [app.services.dispatcher, other] {
                            group.addTask {
                                for _ in 0..<20 where try await dispatcher.runOnce() > 0 {}
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                try await app.dispatchUntilQuiet()
                #expect(try await app.notificationStatuses() == ["sent": 40])
                #expect(provider.overlappingKeys.isEmpty)
                #expect(provider.requests.count == 40, "each delivered exactly once")
            }
        }
    }
}
