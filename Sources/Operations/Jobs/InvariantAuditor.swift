import BallastCore
import ChaosKit
import Evidence
import EvidenceStore
import Foundation
import Logging
import Metrics
import SQLKit
import Storage

/// The job `ledger-invariant-auditor`: checks I1–I4 on the primary store and writes one INVARIANT_VIOLATION
/// evidence record for each thing that is off. Read-only apart from that evidence.
///
/// Every figure comes from one snapshot of the store (``Database/snapshot(_:)``): a credit committed between two of
/// its reads must not look like money created or lost, because a reported violation becomes a permanent record.
public struct InvariantAuditor: Sendable {
    let database: Database
    let evidence: EvidenceLog
    let logger: Logger
    let failpoints: Failpoints?

    /// Failpoints for tests that commit changes in the middle of an audit.
    public enum Failpoint {
        /// Between the audit's reads of the money held (balances and revenue) and of the money that came in.
        public static let betweenReads = "auditor.between_reads"
    }

    let metrics: any MetricsFactory

    public init(
        database: Database, evidence: EvidenceLog, logger: Logger, failpoints: Failpoints? = nil,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) {
        self.metrics = metrics
        self.database = database
        self.evidence = evidence
        self.logger = logger
        self.failpoints = failpoints
    }

    /// One broken invariant.
    public struct Violation: Sendable, Equatable {
        public let invariant: String
        public let entityType: String
        public let entityId: String
        public let message: String
    }

    public struct Report: Sendable, Equatable {
        public var walletsChecked = 0
        public var productsChecked = 0
        public var ordersChecked = 0
        public var violations: [Violation] = []

        public var json: JSONValue {
            .object([
                "walletsChecked": .integer(Int64(walletsChecked)), "productsChecked": .integer(Int64(productsChecked)),
                "ordersChecked": .integer(Int64(ordersChecked)), "violations": .integer(Int64(violations.count)),
                "details": .array(violations.prefix(100).map {
                    .object(["invariant": .string($0.invariant), "entityType": .string($0.entityType),
                             "entityId": .string($0.entityId), "message": .string($0.message)])
                }),
            ])
        }
    }

    private struct IdRow: Decodable { let id: String }
    private struct CountRow: Decodable { let n: Int64 }

    /// Audits one snapshot; with `lease`, its evidence is written only while the run still holds it.
    public func run(lease: JobLease? = nil) async throws -> Report {
        let failpoints = self.failpoints
        let report = try await database.snapshot { sql in
            var report = Report()
            report.walletsChecked = Int(try await Self.count("wallets", sql))
            report.productsChecked = Int(try await Self.count("products", sql))
            report.ordersChecked = Int(try await Self.count("orders", sql))
            for id in try await Self.ids("SELECT id FROM wallets WHERE balance < 0", sql) {
                report.violations.append(Violation(invariant: "I1", entityType: "wallet", entityId: id, message: "balance below zero"))
            }
            for id in try await Self.ids("""
                SELECT w.id FROM wallets w
                WHERE w.balance <> (SELECT COALESCE(SUM(CASE WHEN t.kind = 'credit' THEN t.amount ELSE -t.amount END), 0)
                                    FROM wallet_transactions t WHERE t.wallet_id = w.id)
                """, sql) {
                report.violations.append(Violation(invariant: "I2", entityType: "wallet", entityId: id,
                                                   message: "balance differs from its ledger"))
            }
            // System totals can pass Int64 (many wallets, each within its own limit), so they are summed exactly.
            let held = try await Self.exactSum("balance", from: "wallets", sql)
                + Self.exactSum("total", from: "orders WHERE status <> 'cancelled'", sql)
            try await failpoints?.pass(Failpoint.betweenReads)
            let external = try await Self.exactSum(
                "CASE WHEN kind = 'credit' THEN amount ELSE -amount END", from: "wallet_transactions WHERE order_id IS NULL", sql)
            if held != external {
                report.violations.append(Violation(
                    invariant: "I2", entityType: "system", entityId: "money",
                    message: "balances + revenue held (\(held)) differ from top-ups − withdrawals (\(external))"))
            }
            for id in try await Self.ids("""
                SELECT p.id FROM products p
                WHERE p.stock < 0 OR p.stock + (SELECT COALESCE(SUM(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id
                                                WHERE i.product_id = p.id AND o.status <> 'cancelled') <> p.units_stocked
                """, sql) {
                report.violations.append(Violation(invariant: "I3", entityType: "product", entityId: id,
                                                   message: "stock + units in orders differ from units stocked"))
            }
            for id in try await Self.ids("""
                SELECT o.id FROM orders o
                WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)
                   OR (SELECT count(*) FROM wallet_transactions t WHERE t.order_id = o.id AND t.kind = 'debit' AND t.amount = o.total) <> 1
                   OR (SELECT count(*) FROM wallet_transactions t WHERE t.order_id = o.id AND t.kind = 'credit')
                      <> CASE WHEN o.status = 'cancelled' THEN 1 ELSE 0 END
                """, sql) {
                report.violations.append(Violation(invariant: "I4", entityType: "order", entityId: id,
                                                   message: "order without its items, its payment, or its refund"))
            }
            return report
        }
        if !report.violations.isEmpty {
            let events = report.violations.map { violation in
                EvidenceEvent(
                    .invariantViolation, outcome: .failure, entityType: violation.entityType,
                    entityId: violation.entityId,
                    details: ["invariant": .string(violation.invariant), "message": .string(violation.message),
                              "fence": lease.map { .integer($0.fence) } ?? .null])
            }
            try await database.transaction { sql in
                try await lease?.hold(in: sql)
                try await evidence.append(events, in: sql)
            }
            for violation in report.violations {
                Counter(label: "invariant_violations_total", dimensions: [("invariant", violation.invariant)], factory: metrics).increment()
            }
            logger.error("invariant violations found", metadata: ["count": .stringConvertible(report.violations.count)])
        }
        return report
    }

    private static func count(_ table: String, _ sql: any SQLDatabase) async throws -> Int64 {
        try await number("SELECT CAST(count(*) AS BIGINT) AS n FROM \(unsafeRaw: table)", sql)
    }

    private static func number(_ query: SQLQueryString, _ sql: any SQLDatabase) async throws -> Int64 {
        try await sql.raw(query).first(decoding: CountRow.self)?.n ?? 0
    }

    /// The exact sum of an integer `expression` over `rows` (a table and an optional WHERE), however large: the
    /// parts above and below 10^9 are summed separately (neither can overflow for fewer than ~9·10^9 rows of values
    /// up to 10^18) and put together in 128 bits. Integer division and remainder truncate toward zero on both
    /// stores, so high·10^9 + low is each value exactly, negatives included.
    private static func exactSum(_ expression: String, from rows: String, _ sql: any SQLDatabase) async throws -> Int128 {
        struct Parts: Decodable { let high: Int64; let low: Int64 }
        let parts = try await sql.raw("""
            SELECT CAST(COALESCE(SUM((\(unsafeRaw: expression)) / 1000000000), 0) AS BIGINT) AS high,
                   CAST(COALESCE(SUM((\(unsafeRaw: expression)) % 1000000000), 0) AS BIGINT) AS low
            FROM \(unsafeRaw: rows)
            """).first(decoding: Parts.self)
        guard let parts else { return 0 }
        return Int128(parts.high) * 1_000_000_000 + Int128(parts.low)
    }

    private static func ids(_ query: SQLQueryString, _ sql: any SQLDatabase) async throws -> [String] {
        try await sql.raw(query).all(decoding: IdRow.self).map(\.id)
    }
}
