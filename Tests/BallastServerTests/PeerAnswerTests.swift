import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Commerce
import NIOCore
import Testing

/// Every value a peer sends is hostile input: absurd numbers, dates, sizes and bodies that never end must neither
/// trap nor park work forever nor slow a sale; they are clamped or treated as a failed call, logged and counted.
@Suite("Hostile peers", .timeLimit(.minutes(10)))
struct PeerAnswerTests {
    /// A webhook that throttles with whatever Retry-After the test gives.
    static func webhook(_ provider: FakeProvider) -> [String: String] {
        ["NOTIFY_WEBHOOK_URL": provider.url + "/hooks", "NOTIFY_RETRY_BASE_MS": "1", "NOTIFY_RETRY_MAX_MS": "1"]
    }

    @Test(arguments: TestStores.kinds)
    func anAbsurdRetryAfterIsClampedNotATrap(kind: StoreKind) async throws {
        // (header, the wait at most, whether it counts as clamped): numbers past Int64, past a day, dates in year 9999.
        let cases: [(String, Int64, Bool)] = [
            ("99999999999999999999999999999999", NotificationDispatcher.maximumRetryAfterSeconds, true),
            ("9223372036854775807", NotificationDispatcher.maximumRetryAfterSeconds, true),
            ("86401", NotificationDispatcher.maximumRetryAfterSeconds, true),
            ("Fri, 31 Dec 9999 23:59:59 GMT", NotificationDispatcher.maximumRetryAfterSeconds, true),
            ("Sun, 06 Nov 1994 08:49:37 GMT", 0, false),
            ("-5", Int64(WebhookTransport.defaultRetryAfterSeconds), false),
            ("soon", Int64(WebhookTransport.defaultRetryAfterSeconds), false),
        ]
        try await FakeProvider.with { provider in
            try await TestApp.run(kind, environment: Self.webhook(provider)) { (app: TestApp) async throws in
                var clamped = 0
                for (header, maximumWait, counts) in cases {
                    provider.answer {
                        $0.status = .tooManyRequests
                        $0.headers = [HTTPField.Name("Retry-After")!: header]
                    }
                    _ = try await app.placeNotifiedOrder()
                    #expect(try await app.services.dispatcher.runOnce() == 2, "\(header)")
                    // Taken after the dispatcher parked the notifications (on this machine's clock, which the store
                    // shares): the bound holds however long the run took on a loaded machine.
                    let after = Int64(Date().timeIntervalSince1970 * 1_000_000)
                    let latest = try await app.integer("""
                        SELECT CAST(max(next_attempt_at_micros) AS BIGINT) AS n FROM notifications WHERE status = 'pending'
                        """)
                    #expect(latest <= after + (maximumWait + 5) * 1_000_000, "\(header): parked until \(latest)")
                    if counts { clamped += 2 }
                    #expect(try await app.metric(#"peer_values_clamped_total{peer="notify_webhook",value="retry_after"}"#) == clamped,
                            "\(header)")
                    // Start the next case from an empty outbox.
                    try await app.services.primary.transaction { sql in
                        try await sql.raw("UPDATE notifications SET status = 'sent' WHERE status = 'pending'").run()
                    }
                }
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func aBodyThatNeverEndsIsAFailedCallWithinTheTimeout(kind: StoreKind) async throws {
        // A peer that answers 200 and then drips its body forever: the shipping quote falls back and the
        // notification attempt fails, each within its timeout, and the sale goes through.
        let router = Router()
        let endless: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: #"{"amount":"#))
                while true {
                    try await Task.sleep(for: .milliseconds(50))
                    try await writer.write(ByteBuffer(string: " "))
                }
            })
        }
        router.post("/**", use: endless)
        try await LoopbackHTTPServer.run(router) { peer in
            let environment = ["SHIPPING_RATES_URL": peer.url + "/rates", "SHIPPING_TIMEOUT_MS": "500",
                               "NOTIFY_WEBHOOK_URL": peer.url + "/hooks"]
            try await TestApp.run(kind, environment: environment) { (app: TestApp) async throws in
                let seller = try await app.createUser(name: "seller")
                let product = try await app.createProduct(token: seller, price: 100, stock: 10)
                let buyer = try await app.buyer(funds: 10_000)
                let started = ContinuousClock.now
                let order = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)])
                #expect(order.status == .created)
                // Without its deadline, a call to a body that never ends would last until the test's time limit. The
                // bounds leave room above the deadlines (0.5 s, 5 s) for a shared machine, and no more.
                #expect(ContinuousClock.now - started < .seconds(5), "the quote gave up at its timeout")
                #expect(order.json["shippingSource"] as? String == "fallback")
                #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="timeout"}"#) == 1)
                let attempt = ContinuousClock.now
                #expect(try await app.services.dispatcher.runOnce() == 2)
                #expect(ContinuousClock.now - attempt < .seconds(15), "the webhook call gave up at its 5 s timeout")
                #expect(try await app.notificationStatuses() == ["pending": 2], "a failed attempt, to be retried")
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func anAbsurdShippingReplyIsAFailedCall(kind: StoreKind) async throws {
        let replies = [
            #"{"amount":1e400,"currency":"USD"}"#, #"{"amount":9223372036854775807,"currency":"USD"}"#,
            #"{"amount":-1,"currency":"USD"}"#, #"{"amount":10000001,"currency":"USD"}"#, #"{"amount":5.5,"currency":"USD"}"#,
            #"{"amount":"500","currency":"USD"}"#, #"{"amount":500,"currency":"usd"}"#, #"[500]"#, "", String(repeating: "9", count: 70_000),
        ]
        try await FakeProvider.with { provider in
            try await TestApp.run(kind, environment: ["SHIPPING_RATES_URL": provider.url + "/rates"]) { (app: TestApp) async throws in
                let seller = try await app.createUser(name: "seller")
                let product = try await app.createProduct(token: seller, price: 100, stock: 100)
                let buyer = try await app.buyer(funds: 1_000_000)
                for body in replies {
                    provider.answer { $0.body = body }
                    let placed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)])
                    #expect(placed.status == .created, "\(body.prefix(60))")
                    #expect(placed.json["shippingSource"] as? String == "fallback", "\(body.prefix(60))")
                    #expect(placed.json["shipping"] as? Int == 500, "\(body.prefix(60))")
                }
            }
        }
    }
}
