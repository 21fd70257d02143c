import BallastServer
import BallastTestSupport
import DomainValues
import Foundation
import HTTPTypes
import ChaosKit
import Commerce
import Telemetry
import Testing

@Suite("Circuit breaker states", .timeLimit(.minutes(10)))
struct CircuitBreakerStateTests {
    let second: UInt64 = 1_000_000_000

    @Test func fiveFailuresInARowOpenIt() {
        var breaker = CircuitBreakerStateMachine()
        for _ in 0..<4 {
            #expect(breaker.permit(now: 0) == .allowed)
            breaker.record(success: false, now: 0)
        }
        #expect(breaker.state == .closed)
        breaker.record(success: false, now: 10)
        #expect(breaker.state == .open(untilNanoseconds: 10 + 30 * second))
        #expect(breaker.permit(now: 11) == .refused(retryAfterNanoseconds: 30 * second - 1))
    }

    @Test func aSuccessResetsTheRunButHalfOfTheLastTwentyStillOpensIt() {
        var breaker = CircuitBreakerStateMachine()
        // fail, fail, fail, fail, succeed ×2 … never five in a row, but 10 of 20 failures.
        var outcomes: [Bool] = []
        for _ in 0..<5 { outcomes += [false, false, true, true] }
        for (index, success) in outcomes.enumerated() {
            #expect(breaker.state == .closed, "call \(index)")
            _ = breaker.permit(now: 0)
            breaker.record(success: success, now: 0)
        }
        #expect(breaker.state == .open(untilNanoseconds: 30 * second))
    }

    @Test func fewerThanTwentyCallsNeverTripTheRatio() {
        var breaker = CircuitBreakerStateMachine()
        for success in [false, true, false, true, false, true, false, true] {
            _ = breaker.permit(now: 0)
            breaker.record(success: success, now: 0)
        }
        #expect(breaker.state == .closed)
    }

    @Test func afterThirtySecondsOneTrialGoesThroughAndDecides() {
        var breaker = CircuitBreakerStateMachine()
        for _ in 0..<5 { breaker.record(success: false, now: 0) }
        #expect(breaker.permit(now: 30 * second) == .trial)
        #expect(breaker.state == .halfOpen)
        #expect(breaker.permit(now: 30 * second + 1) == .refused(retryAfterNanoseconds: second), "only one trial")
        breaker.record(success: false, now: 31 * second)
        #expect(breaker.state == .open(untilNanoseconds: 61 * second))
        #expect(breaker.permit(now: 61 * second) == .trial)
        breaker.record(success: true, now: 62 * second)
        #expect(breaker.state == .closed)
        // History is forgotten: four more failures do not open it.
        for _ in 0..<4 { breaker.record(success: false, now: 63 * second) }
        #expect(breaker.state == .closed)
    }
}

/// The chaos suite "external services", part one: shipping quotes. The order never fails because the provider
/// does; with the block policy it is refused with nothing taken.
@Suite("Shipping quotes", .timeLimit(.minutes(10)))
struct ShippingTests {
    func placeOne(_ app: TestApp, country: String = "US") async throws -> (reply: TestReply, wallet: String, product: String) {
        let seller = try await app.createUser(name: "seller")
        let product = try await app.createProduct(token: seller, price: 1000, stock: 10)
        let buyer = try await app.buyer(funds: 10_000)
        return (try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 2)], country: country), buyer.wallet, product)
    }

    @Test(arguments: TestStores.kinds)
    func theProvidersQuoteIsUsedWhenItAnswersWell(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.body = #"{"amount":777,"currency":"USD"}"# }
            try await TestApp.run(kind, environment: ["SHIPPING_RATES_URL": provider.url + "/rates"]) { app in
                let (reply, _, product) = try await placeOne(app, country: "CA")
                #expect(reply.status == .created)
                #expect(reply.json["shipping"] as? Int == 777)
                #expect(reply.json["shippingSource"] as? String == "provider")
                #expect(reply.json["total"] as? Int == 2777)
                let sent = try #require(provider.requests.first)
                #expect(sent.path == "/rates")
                let body = try #require(try JSONSerialization.jsonObject(with: Data(sent.body.utf8)) as? [String: Any])
                #expect(body["currency"] as? String == "USD")
                #expect((body["destination"] as? [String: Any])?["country"] as? String == "CA")
                #expect((body["items"] as? [[String: Any]])?.first?["productId"] as? String == product)
                #expect((body["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 2)
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func badRepliesFallBackToTheTable(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            try await TestApp.run(kind, environment: ["SHIPPING_RATES_URL": provider.url]) { app in
                let replies: [(HTTPResponse.Status, String)] = [
                    (.ok, #"{"amount":-5,"currency":"USD"}"#),
                    (.ok, #"{"amount":12.5,"currency":"USD"}"#),
                    (.ok, #"{"currency":"USD"}"#),
                    (.ok, #"{"amount":"700","currency":"USD"}"#),
                    (.ok, #"{"amount":700,"currency":"EUR"}"#),
                    (.ok, #"{"amount":10000001,"currency":"USD"}"#),
                    (.ok, "shipping is free today"),
                    (.internalServerError, #"{"amount":700,"currency":"USD"}"#),
                ]
                for (index, (status, body)) in replies.enumerated() {
                    provider.answer {
                        $0.status = status
                        $0.body = body
                    }
                    let (reply, _, _) = try await placeOne(app)
                    #expect(reply.status == .created, "\(body)")
                    #expect(reply.json["shipping"] as? Int == 500, "\(body)")
                    #expect(reply.json["shippingSource"] as? String == "fallback", "\(body)")
                    // Alternate with a good reply so the breaker (five failures in a row) stays closed.
                    provider.answer {
                        $0.status = .ok
                        $0.body = #"{"amount":650,"currency":"USD"}"#
                    }
                    #expect(try await placeOne(app).reply.json["shippingSource"] as? String == "provider", "after \(index)")
                }
                #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="invalid_reply"}"#) == 7)
                #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="http_status"}"#) == 1)
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func aSlowOrDownProviderFallsBack(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.delay = .seconds(3) }
            try await TestApp.run(kind, environment: ["SHIPPING_RATES_URL": provider.url, "SHIPPING_TIMEOUT_MS": "300"]) { app in
                let (slow, _, _) = try await placeOne(app)
                #expect(slow.status == .created)
                #expect(slow.json["shippingSource"] as? String == "fallback")
                #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="timeout"}"#) == 1)
            }
        }
        try await TestApp.run(kind, environment: ["SHIPPING_RATES_URL": "http://127.0.0.1:9/rates"]) { app in
            let (down, _, _) = try await placeOne(app, country: "DE")
            #expect(down.status == .created)
            #expect(down.json["shipping"] as? Int == 1500)
            #expect(down.json["shippingSource"] as? String == "fallback")
            // Refused connections are retried until the call's deadline, so a provider that is down reads as either.
            #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="unreachable"}"#)
                    + app.metric(#"shipping_quote_fallbacks_total{reason="timeout"}"#) == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func theBreakerOpensAfterFiveFailuresAndStopsCalling(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.status = .serviceUnavailable }
            try await TestApp.run(kind, environment: ["SHIPPING_RATES_URL": provider.url]) { (app: TestApp) async throws in
                #expect(try await app.metric(#"circuit_breaker_state{dependency="shipping_rates"}"#) == 0)
                for _ in 0..<8 {
                    #expect(try await placeOne(app).reply.json["shippingSource"] as? String == "fallback")
                }
                #expect(provider.requests.count == 5, "no calls while open")
                #expect(try await app.metric(#"circuit_breaker_state{dependency="shipping_rates"}"#) == 1)
                #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="circuit_open"}"#) == 3)
            }
        }
    }

    /// Open → half-open → closed against a real provider, with the open period shortened to 200 ms.
    @Test func theBreakerHalfOpensAndClosesOnASuccessfulTrial() async throws {
        try await FakeProvider.with { provider in
            provider.answer { $0.status = .internalServerError }
            let metrics = MetricsRegistry()
            let breaker = CircuitBreaker(
                dependency: "shipping_rates", machine: CircuitBreakerStateMachine(openNanoseconds: 200_000_000),
                metrics: metrics.factory)
            let rates = ProviderShippingRates(
                url: URL(string: provider.url + "/rates")!, timeout: .seconds(2), policy: .fallback, breaker: breaker,
                injector: FaultInjector(state: ChaosState(settings: .init(), seed: "s"), environment: .test,
                                        metrics: metrics.factory, logger: TestStores.logger),
                metrics: metrics.factory, logger: TestStores.logger)
            let destination = Destination(country: "US", postalCode: "1")
            for _ in 0..<5 { #expect(try await rates.quote(destination: destination, items: []).source == .fallback) }
            guard case .open = breaker.state else { Issue.record("breaker should be open: \(breaker.state)"); return }
            #expect(try await rates.quote(destination: destination, items: []).source == .fallback)
            #expect(provider.requests.count == 5, "no call while open")
            try await Task.sleep(for: .milliseconds(250))
            provider.answer {
                $0.status = .ok
                $0.body = #"{"amount":640,"currency":"USD"}"#
            }
            let trial = try await rates.quote(destination: destination, items: [])
            #expect(trial == ShippingQuote(amountMinor: 640, source: .provider))
            #expect(breaker.state == .closed)
            #expect(provider.requests.count == 6)
            #expect(metrics.render().contains(#"circuit_breaker_state{dependency="shipping_rates"} 0"#))
        }
    }

    @Test(arguments: TestStores.kinds)
    func theBlockPolicyRefusesWithNothingTaken(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: [
            "SHIPPING_RATES_URL": "http://127.0.0.1:9/rates", "SHIPPING_FAILURE_POLICY": "block",
        ]) { app in
            let (reply, wallet, product) = try await placeOne(app)
            #expect(reply.status == .serviceUnavailable)
            #expect(reply.errorCode == "shipping_unavailable")
            #expect(reply.headers[.retryAfter] != nil)
            #expect(try await app.stock(product) == 10)
            #expect(try await app.balance(wallet) == 10_000)
            #expect(try await app.orderCount() == 0)
        }
    }

    @Test(arguments: TestStores.kinds)
    func anInjectedQuoteFaultFallsBack(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            try await TestApp.run(kind, environment: [
                "SHIPPING_RATES_URL": provider.url, "CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "1", "CHAOS_SCOPE": "all_writes",
            ]) { app in
                let (reply, _, _) = try await placeOne(app)
                #expect(reply.status == .created)
                #expect(reply.json["shippingSource"] as? String == "fallback")
                #expect(provider.requests.isEmpty)
                #expect(try await app.metric(#"shipping_quote_fallbacks_total{reason="injected"}"#) == 1)
            }
        }
    }
}
