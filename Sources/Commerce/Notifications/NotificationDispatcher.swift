import BallastCore
import ChaosKit
import Evidence
import EvidenceStore
import Foundation
import Logging
import Metrics
import SQLKit
import ServiceLifecycle
import Storage
import Tracing

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
    /// The default claim on one notification (NOTIFY_CLAIM_SECONDS): an attempt, with an injected delay of up to
    /// 60 s and the webhook's 5 s, fits inside it with room to spare. (A shorter claim is safe too: an attempt whose
    /// delay outlasts the claim's usable part is abandoned before it delivers, and the row is tried again.)
    public static let defaultClaimSeconds: Int64 = 120
    /// The end of a claim that no attempt may reach: an attempt starts only if, at the transport's longest, it ends
    /// this long before the claim does, so the time to record it and any drift between this process's clock and
    /// the database's never let it overlap another dispatcher's attempt. (With the shortest claim, 10 s, and the
    /// webhook's 5 s, that leaves 3 s after a renewal to start.)
    static let claimMargin: Duration = .seconds(2)
    /// The longest a receiver's 429 may park a notification; a longer Retry-After is absurd and is clamped.
    public static let maximumRetryAfterSeconds: Int64 = 86_400
    static let pollInterval: Duration = .milliseconds(250)

    public struct Settings: Sendable {
        public var maxAttempts: Int
        public var retryBaseMilliseconds: Int
        public var retryMaxMilliseconds: Int
        /// How long a claim on one notification lasts (NOTIFY_CLAIM_SECONDS).
        public var claimSeconds: Int64

        public init(maxAttempts: Int, retryBaseMilliseconds: Int, retryMaxMilliseconds: Int,
                    claimSeconds: Int64 = NotificationDispatcher.defaultClaimSeconds) {
            precondition(claimSeconds >= 10, "a claim lasts at least ten seconds")
            self.maxAttempts = maxAttempts
            self.retryBaseMilliseconds = retryBaseMilliseconds
            self.retryMaxMilliseconds = retryMaxMilliseconds
            self.claimSeconds = claimSeconds
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
    let failpoints: Failpoints?

    /// Failpoints for tests of the store failing at the worst moment.
    public enum Failpoint {
        /// Before an attempt's outcome is written (the notification has been delivered or not by then).
        public static let beforeRecord = "notify.before_record"
    }

    public init(
        database: Database, transport: any NotificationTransport, settings: Settings, injector: FaultInjector,
        evidence: EvidenceLog, metrics: any MetricsFactory, logger: Logger, failpoints: Failpoints? = nil,
        isReady: @escaping @Sendable () -> Bool = { true }
    ) {
        self.failpoints = failpoints
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

    /// The ids of up to `limit` notifications that are due and not claimed, on the database's clock.
    private func due(limit: Int) -> SQLQueryString {
        let now = database.nowMicros
        return """
            SELECT id FROM notifications
            WHERE status = 'pending' AND next_attempt_at_micros <= \(now)
              AND (claimed_until_micros IS NULL OR claimed_until_micros <= \(now))
            ORDER BY next_attempt_at_micros LIMIT \(bind: limit)
            """
    }

    /// Claims a batch: each row gets this claim's token and an expiry on the database's clock. The token fences
    /// every later write: only the holder of a row's current claim can renew it or record an attempt.
    private func claim() async throws -> [Claimed] {
        // An idle dispatcher polls with a read; only when something is due does it take a write transaction
        // (on SQLite that is the store's write lock).
        let anything = try await database.read { sql in try await sql.raw(due(limit: 1)).first() }
        guard anything != nil else { return [] }
        let token = UUID.random().lowercasedString
        // Before the claim is asked for: the database stamps each row's expiry after this instant, so the claim
        // holds the rows until at least `asked` + claimSeconds.
        let asked = ContinuousClock.now
        let lock: SQLQueryString = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let rows = try await database.transaction { sql in
            try await sql.raw("""
                UPDATE notifications SET claimed_until_micros = \(database.nowMicros) + \(bind: settings.claimSeconds * 1_000_000),
                    claim_token = \(bind: token)
                WHERE id IN (\(due(limit: Self.batchSize))\(lock))
                RETURNING id, channel, recipient, template, data, attempts, trace_parent
                """).all(decoding: ClaimedRow.self)
        }
        return rows.compactMap { row in
            NotificationChannel(rawValue: row.channel).map {
                Claimed(notification: OutboxNotification(id: row.id, channel: $0, recipient: row.recipient, template: row.template,
                                                         data: row.data, attempts: row.attempts, traceParent: row.trace_parent),
                        token: token, asked: asked)
            }
        }
    }

    /// A claimed notification, the token of the claim, and when the claim was asked for (it lasts from a moment
    /// after that).
    struct Claimed: Sendable {
        let notification: OutboxNotification
        let token: String
        let asked: ContinuousClock.Instant
    }

    /// Renews this claim on one row for one attempt (a full claim period from now on the database's clock), or
    /// answers false when the claim was lost (it expired and another dispatcher took the row, or the row moved
    /// on): then this process must not deliver it. A batch's later rows, once their claim is too old to hold a
    /// whole attempt, are renewed just before it, so no claim outlives the time its holder can still act on it,
    /// however slow the earlier attempts were.
    private func renew(_ claimed: Claimed) async throws -> Bool {
        let now = database.nowMicros
        return try await database.transaction { sql in
            try await sql.raw("""
                UPDATE notifications SET claimed_until_micros = \(now) + \(bind: settings.claimSeconds * 1_000_000)
                WHERE id = \(bind: claimed.notification.id) AND status = 'pending' AND claim_token = \(bind: claimed.token)
                  AND claimed_until_micros > \(now)
                RETURNING id
                """).first()
        } != nil
    }

    // MARK: One attempt

    /// One attempt at one claimed notification, fenced by its claim. The attempt (an injected delay included) must
    /// end well inside the claim (renewed first if it is too old); a process paused past it finds its claim gone
    /// and writes nothing.
    func attempt(_ claimed: Claimed) async {
        // Continues the trace of the request that wrote the notification, so its webhook call shows in that trace.
        await Traces.continuing(claimed.notification.traceParent, "notification delivery", kind: .consumer) { span in
            span?.attributes["ballast.notification.id"] = claimed.notification.id
            await attemptInTrace(claimed)
        }
    }

    private func attemptInTrace(_ claimed: Claimed) async {
        let notification = claimed.notification
        // An attempt starts only while all of it (the transport's longest) ends a margin before the claim does.
        let usable = Duration.seconds(settings.claimSeconds) - Self.claimMargin - transport.longestAttempt
        var asked = claimed.asked
        // A young claim is used as it is: nobody else writes a claimed pending row before its claim expires (an
        // admin only requeues dead rows), so a renewal would only say what the claim already guarantees, at the
        // price of a transaction per notification. Young: the attempt can start for at most half the claim (which
        // bounds how far the database's clock may jump ahead under it before a second dispatcher could take the row
        // while this one still sends it: 60 s with the default claim), and is in the first half of that window, so
        // at least as long again is left to start it (a slow claim on a loaded machine leaves less, and then the
        // row is renewed). An older claim (a batch's later rows after slow attempts, a paused process) is renewed
        // first, and so is every row of a dispatcher that is stopping, as before.
        let young = min(usable, Duration.seconds(settings.claimSeconds) / 2)
        if Task.isCancelled || ContinuousClock.now >= asked + young / 2 {
            // Taken before the renewal is asked for: the database stamps the claim's expiry while the question is
            // under way, and a process paused before it reads the answer must count that pause against the claim.
            asked = ContinuousClock.now
            do {
                guard try await renew(claimed) else {
                    count(notification.channel.rawValue, .claimLost)
                    return
                }
            } catch {
                logger.warning("could not renew a notification claim; leaving it", metadata: [
                    "notificationId": .string(notification.id), "error": "\(error)",
                ])
                return
            }
        }
        // Past this (a paused process, a slow start) nothing is sent, the claim is given up and no attempt is counted.
        let startBy = asked + usable
        let point: FaultPoint = notification.channel == .email ? .notifyEmail : .notifyPush
        var outcome: DeliveryOutcome
        switch injector.check(point, entityId: notification.id) {
        case .fail(let fault)?:
            outcome = .failed(fault.description)
        case .delay(let duration, _)?:
            try? await Task.sleep(for: duration)
            outcome = ContinuousClock.now < startBy ? await transport.deliver(notification, startBy: startBy) : .notStarted
        case nil:
            outcome = ContinuousClock.now < startBy ? await transport.deliver(notification, startBy: startBy) : .notStarted
        }
        // A store that is briefly busy or unreachable must not turn a delivered notification into a second delivery:
        // the write is fenced by the claim's token, so it is tried again while the claim lasts. Only after that does
        // the claim expire and the row get tried again (at least once, never twice at the same time).
        let recordBy = asked + Duration.seconds(settings.claimSeconds)
        while true {
            do {
                try await record(claimed, outcome)
                return
            } catch {
                guard ContinuousClock.now + Self.recordRetryPause < recordBy, !Task.isCancelled else {
                    logger.warning("could not record a notification attempt", metadata: [
                        "notificationId": .string(notification.id), "error": "\(error)",
                    ])
                    return
                }
                try? await Task.sleep(for: Self.recordRetryPause)
            }
        }
    }

    /// The pause before writing an attempt's outcome again after the store failed to take it.
    static let recordRetryPause: Duration = .milliseconds(250)

    /// Records how the attempt ended, only while this claim still holds the row (its token); a write that matches
    /// nothing is not an error: another dispatcher owns the row now and records its own attempts.
    private func record(_ claimed: Claimed, _ outcome: DeliveryOutcome) async throws {
        try await failpoints?.pass(Failpoint.beforeRecord)
        let notification = claimed.notification
        let now = database.nowMicros
        let attempts = notification.attempts + 1
        let channel = notification.channel.rawValue
        let owned: SQLQueryString = """
            id = \(bind: notification.id) AND status = 'pending' AND claim_token = \(bind: claimed.token)
            """
        switch outcome {
        case .notStarted:
            // Nothing was sent: give the claim up (if still ours) without counting an attempt.
            try await database.transaction { sql in
                try await sql.raw("""
                    UPDATE notifications SET claimed_until_micros = NULL, claim_token = NULL WHERE \(owned)
                    """).run()
            }
            count(channel, .claimLost)
        case .delivered:
            // The commonest record, one statement: on PostgreSQL a transaction of its own (two round trips where
            // BEGIN, the update and COMMIT take three), elsewhere in a transaction.
            let recorded: Bool
            if let rows = try await database.transactionOfOne({
                RecordSentStatement(id: notification.id, token: claimed.token, attempts: Int64(attempts))
            }, then: { rows, _ in rows }) {
                recorded = !rows.isEmpty
            } else {
                recorded = try await database.transaction { sql in
                    try await sql.raw("""
                        UPDATE notifications SET status = 'sent', attempts = \(bind: attempts), sent_at_micros = \(now),
                            updated_at_micros = \(now), claimed_until_micros = NULL, claim_token = NULL, last_error = NULL
                        WHERE \(owned) RETURNING id
                        """).first() != nil
                }
            }
            count(channel, recorded ? .sent : .claimLost)
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
            let recorded = try await reschedule(claimed, attempts: attempts, afterMicros: wait * 1_000_000,
                                                error: "the receiver asked to wait \(wait) s (429)")
            count(channel, recorded ? .throttled : .claimLost)
        case .failed(let reason) where attempts < settings.maxAttempts:
            let recorded = try await reschedule(claimed, attempts: attempts, afterMicros: backoffMicros(afterAttempt: attempts),
                                                error: reason)
            count(channel, recorded ? .retry : .claimLost)
        case .failed, .retryAfter:
            let reason: String
            if case .failed(let text) = outcome { reason = text } else { reason = "the receiver kept asking to wait (429)" }
            // The dead letter and its evidence commit together, and only when this claim still held the row: a
            // claim lost meanwhile writes neither, so each dead letter has exactly one record.
            let recorded = try await database.transaction { sql -> Bool in
                guard try await sql.raw("""
                    UPDATE notifications SET status = 'dead', attempts = \(bind: attempts), updated_at_micros = \(now),
                        claimed_until_micros = NULL, claim_token = NULL, last_error = \(bind: String(reason.prefix(500)))
                    WHERE \(owned) RETURNING id
                    """).first() != nil
                else { return false }
                try await evidence.append([EvidenceEvent(
                    .notificationDeadLettered, outcome: .failure, entityType: "notification",
                    entityId: notification.id,
                    details: ["channel": .string(channel), "template": .string(notification.template),
                              "attempts": .integer(Int64(attempts)), "lastError": .string(String(reason.prefix(300)))],
                    key: "notification-dead:\(notification.id):\(claimed.token)")], in: sql)
                return true
            }
            guard recorded else { return count(channel, .claimLost) }
            count(channel, .dead)
            logger.error("notification dead-lettered", metadata: [
                "notificationId": .string(notification.id), "channel": .string(channel), "attempts": "\(attempts)",
            ])
        }
    }

    /// The next attempt `afterMicros` from now on the database's clock, with the claim released; false when this
    /// claim no longer held the row.
    private func reschedule(_ claimed: Claimed, attempts: Int, afterMicros: Int64, error: String) async throws -> Bool {
        let now = database.nowMicros
        return try await database.transaction { sql in
            try await sql.raw("""
                UPDATE notifications SET attempts = \(bind: attempts), next_attempt_at_micros = \(now) + \(bind: afterMicros),
                    updated_at_micros = \(now), claimed_until_micros = NULL, claim_token = NULL,
                    last_error = \(bind: String(error.prefix(500)))
                WHERE id = \(bind: claimed.notification.id) AND status = 'pending' AND claim_token = \(bind: claimed.token)
                RETURNING id
                """).first()
        } != nil
    }

    /// Full jitter: a random wait between 0 and min(max, base × 2^(attempt − 1)).
    func backoffMicros(afterAttempt attempt: Int) -> Int64 {
        let base = Int64(settings.retryBaseMilliseconds) * 1000
        let cap = Int64(settings.retryMaxMilliseconds) * 1000
        let exponent = min(attempt - 1, 40)
        let window = min(cap, base.multipliedReportingOverflow(by: Int64(1) << exponent).overflow ? cap : base << exponent)
        return Int64.random(in: 0...max(0, window))
    }

    /// How one claimed attempt ended (`notifications_total{outcome}`).
    public enum AttemptOutcome: String, Sendable, CaseIterable {
        case sent, retry, throttled, dead
        /// The claim was gone (or never used) when the outcome was to be written: another dispatcher owns the row.
        case claimLost = "claim_lost"
    }

    private func count(_ channel: String, _ outcome: AttemptOutcome) {
        Counter(label: "notifications_total", dimensions: [("channel", channel), ("outcome", outcome.rawValue)], factory: metrics)
            .increment()
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
        let count = { (status: String) in Double(rows.first { $0.status == status }?.n ?? 0) }
        Gauge(label: "notifications_pending", factory: metrics).record(count("pending"))
        Gauge(label: "notifications_dead", factory: metrics).record(count("dead"))
    }
}

private struct ClaimedRow: Decodable {
    let id: String
    let channel: String
    let recipient: String
    let template: String
    let data: String
    let attempts: Int
    let trace_parent: String?
}

/// A delivered notification recorded as sent, only while the claim with `token` still holds it (PostgreSQL; the
/// same update as the portable one in ``NotificationDispatcher``'s record). One row when recorded, none when the
/// claim was lost.
struct RecordSentStatement: PreparedQuery {
    static let name = "ballast.notification.sent"
    static let sql = """
        UPDATE notifications SET status = 'sent', attempts = $1, sent_at_micros = \(Database.postgresNowMicros),
            updated_at_micros = \(Database.postgresNowMicros), claimed_until_micros = NULL, claim_token = NULL, last_error = NULL
        WHERE id = $2 AND status = 'pending' AND claim_token = $3
        RETURNING id
        """
    static let parameters: [TypedParameter] = [.integer, .text, .text]

    let id: String
    let token: String
    let attempts: Int64

    var values: [TypedValue] { [.integer(attempts), .text(id), .text(token)] }

    func decode(_ row: TypedRow) throws -> String { try row.text(0) }
}
