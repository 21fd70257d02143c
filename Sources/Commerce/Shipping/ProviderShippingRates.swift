import AsyncHTTPClient
import BallastConfig
import BallastCore
import ChaosKit
import DomainValues
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Tracing

/// Shipping quotes from the configured provider (`SHIPPING_RATES_URL`, wire format in SPEC §8), behind a
/// circuit breaker. Any failed call (timeout, other status, a reply that is not JSON, an amount that is
/// missing, not an integer, negative, above 10^7, or in another currency, an injected fault) falls back to
/// the fixed table, or with `SHIPPING_FAILURE_POLICY=block` refuses the order with 503 shipping_unavailable.
public struct ProviderShippingRates: ShippingRates {
    /// The largest quote believed (10^7 minor units); anything above is an absurd reply.
    public static let maximumAmount: Int64 = 10_000_000
    /// The most of a reply that is read; a longer one is a failed call.
    public static let maximumReplyBytes = 64 * 1024

    let url: URL
    let timeout: Duration
    let policy: ShippingFailurePolicy
    let client: HTTPClient
    let breaker: CircuitBreaker
    let injector: FaultInjector
    let metrics: any MetricsFactory
    let logger: Logger

    public init(
        url: URL, timeout: Duration, policy: ShippingFailurePolicy, client: HTTPClient = PeerClient.shared, breaker: CircuitBreaker,
        injector: FaultInjector, metrics: any MetricsFactory, logger: Logger
    ) {
        self.url = url
        self.timeout = timeout
        self.policy = policy
        self.client = client
        self.breaker = breaker
        self.injector = injector
        self.metrics = metrics
        self.logger = logger
    }

    /// The name of the shipping provider as a dependency (`circuit_breaker_state{dependency}`).
    public static let dependency = "shipping_rates"

    /// Why a quote came from the fixed table (`shipping_quote_fallbacks_total{reason}`).
    public enum FallbackReason: String, Sendable, CaseIterable {
        case circuitOpen = "circuit_open"
        case injected, timeout, unreachable
        case httpStatus = "http_status"
        case invalidReply = "invalid_reply"
    }

    /// Why a quote did not come from the provider (`shipping_quote_fallbacks_total{reason}`).
    enum FailedCall: Error, Equatable {
        case circuitOpen(retryAfterSeconds: Int)
        case injected
        case timeout
        case unreachable
        case status(UInt)
        case invalidReply(String)

        var reason: FallbackReason {
            switch self {
            case .circuitOpen: return .circuitOpen
            case .injected: return .injected
            case .timeout: return .timeout
            case .unreachable: return .unreachable
            case .status: return .httpStatus
            case .invalidReply: return .invalidReply
            }
        }
    }

    public func quote(destination: Destination, items: [ShippedItem]) async throws -> ShippingQuote {
        do {
            return ShippingQuote(amountMinor: try await providerAmount(destination, items), source: .provider)
        } catch let failure as FailedCall {
            Counter(label: "shipping_quote_fallbacks_total", dimensions: [("reason", failure.reason.rawValue)], factory: metrics).increment()
            logger.warning("shipping quote failed", metadata: ["reason": .string(failure.reason.rawValue), "detail": "\(failure)"])
            guard policy == .fallback else {
                var retryAfter = 5
                if case .circuitOpen(let seconds) = failure { retryAfter = max(1, seconds) }
                throw AppError(.shippingUnavailable, "shipping cannot be priced right now; try again in \(retryAfter) s",
                               details: ["reason": .string(failure.reason.rawValue)], retryAfterSeconds: retryAfter)
            }
            return ShippingQuote(amountMinor: FallbackShippingRates.amount(for: destination), source: .fallback)
        }
    }

    /// One call through the breaker: the amount, or a ``FailedCall``.
    private func providerAmount(_ destination: Destination, _ items: [ShippedItem]) async throws -> Int64 {
        switch breaker.permit() {
        case .refused(let nanoseconds):
            throw FailedCall.circuitOpen(retryAfterSeconds: Int((nanoseconds + 999_999_999) / 1_000_000_000))
        case .allowed, .trial:
            break
        }
        do {
            if case .fail? = injector.check(.shippingQuote) { throw FailedCall.injected }
            let amount = try await call(destination, items)
            breaker.record(success: true)
            return amount
        } catch let failure as FailedCall {
            breaker.record(success: false)
            throw failure
        } catch {
            breaker.record(success: false)
            throw FailedCall.unreachable
        }
    }

    private func call(_ destination: Destination, _ items: [ShippedItem]) async throws -> Int64 {
        try await Traces.span("shipping quote", kind: .client) { span in
            span?.updateAttributes { attributes in
                attributes["http.request.method"] = "POST"
                attributes["server.address"] = url.host ?? ""
            }
            let (status, amount) = try await exchange(destination, items)
            span?.attributes["http.response.status_code"] = Int(status)
            guard let amount else { throw FailedCall.status(status) }
            return amount
        }
    }

    /// One request to the provider: its status, and the amount when the status is 200 and the reply is valid.
    private func exchange(_ destination: Destination, _ items: [ShippedItem]) async throws -> (UInt, Int64?) {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in Traces.outboundHeaders() { request.headers.replaceOrAdd(name: name, value: value) }
        let body: JSONValue = .object([
            "destination": .object(["country": .string(destination.country), "postalCode": .string(destination.postalCode)]),
            "items": .array(items.map { .object(["productId": .string($0.productId.description), "quantity": .integer($0.quantity)]) }),
            "currency": "USD",
        ])
        request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        let deadline = NIODeadline.now() + .nanoseconds(timeout.wholeNanoseconds)
        let reply: ByteBuffer
        let status: UInt
        let client = self.client, sent = request
        do {
            // The whole exchange, the reply's body included (a provider that never ends it), within the timeout;
            // at most 64 KiB of reply is read.
            (status, reply) = try await Deadline.run(timeout) {
                let response = try await client.execute(sent, deadline: deadline)
                return (response.status.code, try await response.body.collect(upTo: Self.maximumReplyBytes))
            }
        } catch is Deadline.Passed {
            throw FailedCall.timeout
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout
            || error == .connectTimeout {
            throw FailedCall.timeout
        } catch {
            if NIODeadline.now() >= deadline { throw FailedCall.timeout }
            throw FailedCall.unreachable
        }
        guard status == 200 else { return (status, nil) }
        return (status, try Self.validate(reply))
    }

    /// The amount of a provider reply, or why the reply is not one (SPEC §8).
    static func validate(_ reply: ByteBuffer) throws -> Int64 {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(reply.readableBytesView)),
              case .object(let fields) = value
        else { throw FailedCall.invalidReply("not a JSON object") }
        guard case .string("USD")? = fields["currency"] else { throw FailedCall.invalidReply("currency is not USD") }
        guard case .integer(let amount)? = fields["amount"] else {
            throw FailedCall.invalidReply("amount is missing or not an integer")
        }
        guard (0...maximumAmount).contains(amount) else { throw FailedCall.invalidReply("amount \(amount) is out of range") }
        return amount
    }
}
