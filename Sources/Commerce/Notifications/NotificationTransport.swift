import AsyncHTTPClient
import BallastCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Tracing

/// A notification taken from the outbox for delivery.
public struct OutboxNotification: Sendable, Equatable {
    public let id: String
    public let channel: NotificationChannel
    public let recipient: String
    public let template: String
    /// The stored JSON object text.
    public let data: String
    /// Attempts made before this one.
    public let attempts: Int
    /// The W3C `traceparent` of the request that wrote it, when that request was traced.
    public var traceParent: String? = nil
}

/// How one delivery attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// The receiver asked to wait (429 with Retry-After, in seconds, already bounded); `clamped` when it asked for
    /// more than the longest wait this process accepts.
    case retryAfter(seconds: Int, clamped: Bool = false)
    case failed(String)
    /// Nothing was sent: the attempt could not start before its deadline. Not an attempt at all: the claim is let go
    /// and the notification tried again later, its attempts unchanged.
    case notStarted

    /// One word for the outcome, as traces record it.
    var label: String {
        switch self {
        case .delivered: "delivered"
        case .retryAfter: "retry_after"
        case .failed: "failed"
        case .notStarted: "not_started"
        }
    }
}

/// Where notifications go.
public protocol NotificationTransport: Sendable {
    /// The longest one attempt can take, start to end (the dispatcher starts an attempt only while all of it fits
    /// inside its claim).
    var longestAttempt: Duration { get }
    /// One attempt at `notification`, started no later than `startBy` (past it, the attempt would outlast the
    /// sender's claim, and another process may deliver the notification meanwhile): an attempt that cannot start
    /// in time sends nothing and fails.
    func deliver(_ notification: OutboxNotification, startBy: ContinuousClock.Instant) async -> DeliveryOutcome
}

/// The default transport: one JSON log line per notification (`NOTIFY_WEBHOOK_URL` unset).
public struct LogTransport: NotificationTransport {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public var longestAttempt: Duration { .zero }

    public func deliver(_ notification: OutboxNotification, startBy: ContinuousClock.Instant) async -> DeliveryOutcome {
        guard ContinuousClock.now < startBy else { return .notStarted }
        logger.info("notification", metadata: [
            "notificationId": .string(notification.id), "channel": .string(notification.channel.rawValue),
            "recipient": .string(notification.recipient), "template": .string(notification.template),
            "data": .string(notification.data),
        ])
        return .delivered
    }
}

/// POSTs each notification to `NOTIFY_WEBHOOK_URL` (SPEC §8): `{id, channel, recipient, template, data}` with
/// `Idempotency-Key: <id>`, so a receiver can drop the repeats that at-least-once delivery brings. 2xx is
/// delivered; 429 waits for its Retry-After (seconds or an HTTP date, at most ``maximumRetryAfterSeconds``; 60 s
/// when absent or unreadable); anything else, or no whole answer within ``timeout`` (a receiver that never ends its
/// body included), is a failed attempt. At most 64 KiB of the answer is read.
public struct WebhookTransport: NotificationTransport {
    public static let defaultRetryAfterSeconds = 60
    /// The most of a receiver's answer that is read (then dropped: only its status matters).
    public static let maximumReplyBytes = 64 * 1024

    let url: URL
    let timeout: Duration
    let client: HTTPClient
    let maximumRetryAfterSeconds: Int64

    public init(url: URL, timeout: Duration = .seconds(5), client: HTTPClient = PeerClient.shared, maximumRetryAfterSeconds: Int64 = NotificationDispatcher.maximumRetryAfterSeconds) {
        self.url = url
        self.timeout = timeout
        self.client = client
        self.maximumRetryAfterSeconds = maximumRetryAfterSeconds
    }

    public var longestAttempt: Duration { timeout }

    public func deliver(_ notification: OutboxNotification, startBy: ContinuousClock.Instant) async -> DeliveryOutcome {
        await Traces.span("notification webhook", kind: .client) { span in
            span?.updateAttributes { attributes in
                attributes["http.request.method"] = "POST"
                attributes["server.address"] = url.host ?? ""
                attributes["ballast.notification.id"] = notification.id
            }
            let outcome = await post(notification, startBy: startBy)
            span?.attributes["ballast.delivery.outcome"] = outcome.label
            if case .failed = outcome { span?.setStatus(SpanStatus(code: .error)) }
            return outcome
        }
    }

    private func post(_ notification: OutboxNotification, startBy: ContinuousClock.Instant) async -> DeliveryOutcome {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: notification.id)
        for (name, value) in Traces.outboundHeaders() { request.headers.replaceOrAdd(name: name, value: value) }
        let data = (try? JSONDecoder().decode(JSONValue.self, from: Data(notification.data.utf8))) ?? .object([:])
        let body: JSONValue = .object([
            "id": .string(notification.id), "channel": .string(notification.channel.rawValue),
            "recipient": .string(notification.recipient), "template": .string(notification.template), "data": data,
        ])
        guard let encoded = try? JSONEncoder().encode(body) else { return .failed("the notification could not be encoded") }
        request.body = .bytes(ByteBuffer(data: encoded))
        // Checked as late as possible: the last moment before the request is handed to the client.
        guard ContinuousClock.now < startBy else { return .notStarted }
        // The whole exchange, the answer's body included, is bounded by the timeout.
        let limit = timeout
        let deadline = NIODeadline.now() + .nanoseconds(limit.wholeNanoseconds)
        let client = self.client, maximumWait = maximumRetryAfterSeconds, sent = request
        do {
            return try await Deadline.run(limit) {
                let response = try await client.execute(sent, deadline: deadline)
                _ = try? await response.body.collect(upTo: Self.maximumReplyBytes)
                switch response.status.code {
                case 200..<300:
                    return .delivered
                case 429:
                    let now = Int64(Date().timeIntervalSince1970)
                    guard let wait = RetryAfter.parse(response.headers.first(name: "Retry-After"), nowSeconds: now,
                                                      maximumSeconds: maximumWait)
                    else { return .retryAfter(seconds: Int(min(Int64(Self.defaultRetryAfterSeconds), maximumWait))) }
                    return .retryAfter(seconds: Int(wait.seconds), clamped: wait.clamped)
                default:
                    return .failed("the webhook answered \(response.status.code)")
                }
            }
        } catch is Deadline.Passed {
            return .failed("the webhook did not answer within \(limit)")
        } catch {
            return .failed("the webhook did not answer: \(error)")
        }
    }
}
