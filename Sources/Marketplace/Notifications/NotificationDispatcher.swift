import ChaosKit
import Evidence
import Foundation
import Logging
import Metrics
import SQLKit
import ServiceLifecycle
import Storage

/// Delivers the notification outbox (a service in every server process).
///
/// It claims due rows in batches: one conditional update that stamps `claimed_until` (PostgreSQL picks the
/// rows `FOR UPDATE SKIP LOCKED`, so several dispatchers never take the same row; on SQLite the store's write
/// lock does the same). A claim lasts ``claimSeconds``: a process killed mid-delivery leaves rows that are
/// claimed again once it expires and delivered again with the same Idempotency-Key. A failed attempt waits an
/// exponential backoff with full jitter (NOTIFY_RETRY_BASE_MS doubling up to NOTIFY_RETRY_MAX_MS); a 429 waits
/// its Retry-After; after NOTIFY_MAX_ATTEMPTS the row is dead, with NOTIFICATION_DEAD_LETTERED evidence
/// written in the same transaction.
public final class NotificationDispatcher: Service, Sendable {
    public static let batchSize = 50
    /// Deliveries of one batch made at the same time.
    public static let parallelDeliveries = 8
    public static let claimSeconds: Int64 = 120
    /// The longest a receiver's 429 may park a notification; a longer Retry-After is absurd and is clamped.
    public static let maximumRetryAfterSeconds: Int64 = 86_400
    static let pollInterval: Duration = .milliseconds(250)

    public struct Settings: Sendable {
        public var maxAttempts: Int
        public var retryBaseMilliseconds: Int
        public var retryMaxMilliseconds: Int

        public init(maxAttempts: Int, retryBaseMilliseconds: Int, retryMaxMilliseconds: Int) {
            self.maxAttempts = maxAttempts
            self.retryBaseMilliseconds = retryBaseMilliseconds
            self.retryMaxMilliseconds = retryMaxMilliseconds
        }
    }

    let database: Database
    let transport: any NotificationTransport
    let settings: Settings
    let injector: FaultInjector
    let evidence: EvidenceLog
    let metrics: any MetricsFactory
    let logger: Logger
    let isReady: @Sendable () -> Bool

    public init(
        database: Database, transport: any NotificationTransport, settings: Settings, injector: FaultInjector,
        evidence: EvidenceLog, metrics: any MetricsFactory, logger: Logger, isReady: @escaping @Sendable () -> Bool = { true }
    ) {
        self.database = database
        self.transport = transport
        self.settings = settings
        self.injector = injector
        self.evidence = evidence
        self.metrics = metrics
        self.logger = logger
        self.isReady = isReady
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastGauges = ContinuousClock.now - .seconds(10)
            while !Task.isCancelled {
                guard self.isReady() else {
                    try? await Task.sleep(for: Self.pollInterval)
                    continue
                }
                do {
                    let delivered = try await self.runOnce()
                    if ContinuousClock.now - lastGauges > .seconds(5) {
                        try await self.updateGauges()
                        lastGauges = .now
                    }
                    if delivered == 0 { try? await Task.sleep(for: Self.pollInterval) }
                } catch {
                    self.logger.warning("notification dispatch failed; trying again", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Claims one batch of due notifications and makes one attempt at each. Answers how many it claimed.
    @discardableResult
    public func runOnce() async throws -> Int {
        let batch = try await claim()
        guard !batch.isEmpty else { return 0 }
        await withTaskGroup(of: Void.self) { group in
            var next = 0
            for _ in 0..<min(Self.parallelDeliveries, batch.count) {
                let notification = batch[next]
                next += 1
                group.addTask { await self.attempt(notification) }
            }
            while await group.next() != nil, next < batch.count {
                let notification = batch[next]
                next += 1
                group.addTask { await self.attempt(notification) }
            }
        }
        return batch.count
    }

    // MARK: Claiming

    /// The ids of up to `limit` notifications that are due and not claimed.
    private static func due(_ now: Int64, limit: Int) -> SQLQueryString {
        """
        SELECT id FROM notifications
        WHERE status = 'pending' AND next_attempt_at_micros <= \(bind: now)
          AND (claimed_until_micros IS NULL OR claimed_until_micros <= \(bind: now))
        ORDER BY next_attempt_at_micros LIMIT \(bind: limit)
        """
    }

    private func claim() async throws -> [OutboxNotification] {
        let now = StoredTime.nowMicros()
        // An idle dispatcher polls with a read; only when something is due does it take a write transaction
        // (on SQLite that is the store's write lock).
        let anything = try await database.read { sql in try await sql.raw(Self.due(now, limit: 1)).first() }
        guard anything != nil else { return [] }
        let due = Self.due(now, limit: Self.batchSize)
        let lock: SQLQueryString = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let rows = try await database.transaction { sql in
            try await sql.raw("""
                UPDATE notifications SET claimed_until_micros = \(bind: now + Self.claimSeconds * 1_000_000)
                WHERE id IN (\(due)\(lock))
                RETURNING id, channel, recipient, template, data, attempts
                """).all(decoding: ClaimedRow.self)
        }
        return rows.compactMap { row in
            NotificationChannel(rawValue: row.channel).map {
                OutboxNotification(id: row.id, channel: $0, recipient: row.recipient, template: row.template, data: row.data,
                                   attempts: row.attempts)
            }
        }
    }

    // MARK: One attempt

    func attempt(_ notification: OutboxNotification) async {
        let point: FaultPoint = notification.channel == .email ? .notifyEmail : .notifyPush
        var outcome: DeliveryOutcome
        switch injector.check(point, entityId: notification.id) {
        case .fail(let fault)?:
            outcome = .failed(fault.description)
        case .delay(let duration, _)?:
            try? await Task.sleep(for: duration)
            outcome = await transport.deliver(notification)
        case nil:
            outcome = await transport.deliver(notification)
        }
        do {
            try await record(notification, outcome)
        } catch {
            // The claim expires and the row is tried again.
            logger.warning("could not record a notification attempt", metadata: [
                "notificationId": .string(notification.id), "error": "\(error)",
            ])
        }
    }

    private func record(_ notification: OutboxNotification, _ outcome: DeliveryOutcome) async throws {
        let now = StoredTime.nowMicros()
        let attempts = notification.attempts + 1
        let channel = notification.channel.rawValue
        switch outcome {
        case .delivered:
            try await database.transaction { sql in
                try await sql.raw("""
                    UPDATE notifications SET status = 'sent', attempts = \(bind: attempts), sent_at_micros = \(bind: now),
                        updated_at_micros = \(bind: now), claimed_until_micros = NULL, last_error = NULL
                    WHERE id = \(bind: notification.id) AND status = 'pending'
                    """).run()
            }
            count(channel, "sent")
        case .retryAfter(let seconds, let clamped) where attempts < settings.maxAttempts:
            // A peer's number: bounded again here, whatever transport read it, so no arithmetic on it can trap.
            let wait = min(max(0, Int64(seconds)), Self.maximumRetryAfterSeconds)
            if clamped || wait < Int64(seconds) {
                Counter(label: "peer_values_clamped_total", dimensions: [("peer", "notify_webhook"), ("value", "retry_after")],
                        factory: metrics).increment()
                logger.warning("the receiver asked for an absurd Retry-After; waiting the longest accepted instead", metadata: [
                    "notificationId": .string(notification.id), "waitSeconds": .stringConvertible(Int(wait)),
                ])
            }
            try await reschedule(notification, attempts: attempts, at: now + wait * 1_000_000,
                                 error: "the receiver asked to wait \(wait) s (429)")
            count(channel, "throttled")
        case .failed(let reason) where attempts < settings.maxAttempts:
            try await reschedule(notification, attempts: attempts, at: now + backoffMicros(afterAttempt: attempts), error: reason)
            count(channel, "retry")
        case .failed, .retryAfter:
            let reason: String
            if case .failed(let text) = outcome { reason = text } else { reason = "the receiver kept asking to wait (429)" }
            try await database.transaction { sql in
                try await sql.raw("""
                    UPDATE notifications SET status = 'dead', attempts = \(bind: attempts), updated_at_micros = \(bind: now),
                        claimed_until_micros = NULL, last_error = \(bind: String(reason.prefix(500)))
                    WHERE id = \(bind: notification.id) AND status = 'pending'
                    """).run()
                try await evidence.append([EvidenceEvent(
                    controlId: EvidenceControl.systemMonitoring, category: EvidenceCategory.processingIntegrity,
                    eventType: EvidenceType.notificationDeadLettered, eventOutcome: "FAILURE", entityType: "notification",
                    entityId: notification.id,
                    details: ["channel": .string(channel), "template": .string(notification.template),
                              "attempts": .integer(Int64(attempts)), "lastError": .string(String(reason.prefix(300)))])], in: sql)
            }
            count(channel, "dead")
            logger.error("notification dead-lettered", metadata: [
                "notificationId": .string(notification.id), "channel": .string(channel), "attempts": "\(attempts)",
            ])
        }
    }

    private func reschedule(_ notification: OutboxNotification, attempts: Int, at micros: Int64, error: String) async throws {
        try await database.transaction { sql in
            try await sql.raw("""
                UPDATE notifications SET attempts = \(bind: attempts), next_attempt_at_micros = \(bind: micros),
                    updated_at_micros = \(bind: StoredTime.nowMicros()), claimed_until_micros = NULL,
                    last_error = \(bind: String(error.prefix(500)))
                WHERE id = \(bind: notification.id) AND status = 'pending'
                """).run()
        }
    }

    /// Full jitter: a random wait between 0 and min(max, base × 2^(attempt − 1)).
    func backoffMicros(afterAttempt attempt: Int) -> Int64 {
        let base = Int64(settings.retryBaseMilliseconds) * 1000
        let cap = Int64(settings.retryMaxMilliseconds) * 1000
        let exponent = min(attempt - 1, 40)
        let window = min(cap, base.multipliedReportingOverflow(by: Int64(1) << exponent).overflow ? cap : base << exponent)
        return Int64.random(in: 0...max(0, window))
    }

    private func count(_ channel: String, _ outcome: String) {
        Counter(label: "notifications_total", dimensions: [("channel", channel), ("outcome", outcome)], factory: metrics).increment()
    }

    /// `notifications_pending` and `notifications_dead`.
    public func updateGauges() async throws {
        struct Row: Decodable {
            let status: String
            let n: Int64
        }
        let rows = try await database.read { sql in
            try await sql.raw("""
                SELECT status, CAST(count(*) AS BIGINT) AS n FROM notifications WHERE status IN ('pending', 'dead') GROUP BY status
                """).all(decoding: Row.self)
        }
        for status in ["pending", "dead"] {
            Gauge(label: "notifications_\(status)", factory: metrics).record(Double(rows.first { $0.status == status }?.n ?? 0))
        }
    }
}

private struct ClaimedRow: Decodable {
    let id: String
    let channel: String
    let recipient: String
    let template: String
    let data: String
    let attempts: Int
}
