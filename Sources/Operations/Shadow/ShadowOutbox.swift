import Commerce
import EvidenceStore
import SQLKit
import Storage

/// One shadow write waiting in the outbox, under one claim: the listing and version it mirrors, and the token of
/// the claim that may complete it.
public typealias ShadowOutboxKey = OutboxClaim

/// How the evidence appender deletes completed shadow writes' rows in the transaction of their evidence.
public struct ShadowOutboxCompleter: OutboxCompleter {
    public init() {}

    public func complete(_ claims: [OutboxClaim], in sql: Transaction) async throws -> Set<OutboxClaim> {
        try await ShadowOutbox.complete(claims, in: sql)
    }
}

/// The shadow outbox (`shadow_outbox` in the primary store): a row per listing write, inserted in the listing's own
/// transaction, so no commit can happen without its shadow write on record, and deleted when the write has landed
/// in the shadow or its failure has been recorded. The process that wrote a row claims it at once (its token and
/// an expiry on the database's clock) and applies it from memory; a row whose claim expired (its process died, or
/// was paused) is claimed again and applied by whichever process sweeps first. A completion must still hold the
/// row's claim, so two processes never both record one write's failure.
enum ShadowOutbox {
    static let entityType = ShadowWrite.shadowedEntityType

    /// Records `listing`'s write in the caller's transaction, claimed by `token` for `claimSeconds`.
    static func insert(
        _ listing: Listing, _ operation: ShadowWrite.Operation, requestId: String?, traceParent: String?, token: String,
        claimSeconds: Int64, database: Database, in sql: Transaction
    ) async throws {
        let now = database.nowMicros
        try await sql.raw("""
            INSERT INTO shadow_outbox (entity_type, entity_id, version, operation, request_id, enqueued_at_micros,
                                       claimed_until_micros, claim_token, trace_parent)
            VALUES (\(bind: entityType), \(bind: listing.id.description), \(bind: listing.version), \(bind: operation.rawValue),
                    \(bind: requestId), \(now), \(now) + \(bind: claimSeconds * 1_000_000), \(bind: token), \(bind: traceParent))
            """).run()
    }

    /// Deletes the rows of `keys` that each key's claim still holds; answers the keys deleted.
    static func complete(_ keys: [ShadowOutboxKey], in sql: Transaction) async throws -> Set<ShadowOutboxKey> {
        var deleted: Set<ShadowOutboxKey> = []
        struct Row: Decodable {
            let entity_type: String
            let entity_id: String
            let version: Int64
            let claim_token: String
        }
        for chunk in stride(from: 0, to: keys.count, by: 100).map({ keys[$0..<min($0 + 100, keys.count)] }) {
            var query: SQLQueryString = "DELETE FROM shadow_outbox WHERE "
            for (index, key) in chunk.enumerated() {
                query += index == 0 ? "(" : " OR ("
                query += """
                    entity_type = \(bind: key.entityType) AND entity_id = \(bind: key.entityId) AND version = \(bind: key.version)
                    AND claim_token = \(bind: key.claimToken))
                    """
            }
            query += " RETURNING entity_type, entity_id, version, claim_token"
            for row in try await sql.raw(query).all(decoding: Row.self) {
                deleted.insert(ShadowOutboxKey(entityType: row.entity_type, entityId: row.entity_id, version: row.version,
                                               claimToken: row.claim_token))
            }
        }
        return deleted
    }

    /// A row claimed by a sweep.
    struct Claimed: Decodable, Sendable {
        let entity_id: String
        let version: Int64
        let operation: String
        let request_id: String?
        let trace_parent: String?
    }

    /// Claims up to `limit` rows whose claim has expired (on the database's clock), oldest first, for `token`.
    static func claimExpired(_ database: Database, token: String, claimSeconds: Int64, limit: Int) async throws -> [Claimed] {
        let now = database.nowMicros
        let lock: SQLQueryString = database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await database.transaction { sql in
            let due: SQLQueryString = """
                SELECT entity_type, entity_id, version FROM shadow_outbox
                WHERE claimed_until_micros IS NULL OR claimed_until_micros <= \(now)
                ORDER BY enqueued_at_micros LIMIT \(bind: limit)\(lock)
                """
            return try await sql.raw("""
                UPDATE shadow_outbox SET claimed_until_micros = \(now) + \(bind: claimSeconds * 1_000_000),
                    claim_token = \(bind: token)
                WHERE (entity_type, entity_id, version) IN (\(due))
                RETURNING entity_id, version, operation, request_id, trace_parent
                """).all(decoding: Claimed.self)
        }
    }

    /// Gives up claims (at shutdown), so another process, or the next start, applies the rows at once.
    static func release(_ keys: [ShadowOutboxKey], _ database: Database) async throws {
        guard !keys.isEmpty else { return }
        try await database.transaction { sql in
            for key in keys {
                try await sql.raw("""
                    UPDATE shadow_outbox SET claimed_until_micros = NULL, claim_token = NULL
                    WHERE entity_type = \(bind: key.entityType) AND entity_id = \(bind: key.entityId)
                      AND version = \(bind: key.version) AND claim_token = \(bind: key.claimToken)
                    """).run()
            }
        }
    }

    /// The listings among `ids` with a shadow write still waiting (in any process): not discrepancies yet.
    static func pending(_ ids: [String], _ database: Database) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        struct Row: Decodable { let entity_id: String }
        var pending: Set<String> = []
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ ids[$0..<min($0 + 500, ids.count)] }) {
            let rows = try await database.read { sql in
                var query: SQLQueryString = "SELECT DISTINCT entity_id FROM shadow_outbox WHERE entity_type = \(bind: entityType) AND entity_id IN ("
                for (index, id) in chunk.enumerated() { query += index == 0 ? "\(bind: id)" : ", \(bind: id)" }
                query += ")"
                return try await sql.raw(query).all(decoding: Row.self)
            }
            pending.formUnion(rows.map(\.entity_id))
        }
        return pending
    }

    /// Rows waiting, for `/metrics` and tests.
    static func count(_ database: Database) async throws -> Int {
        try await database.read { sql in
            try await sql.raw("SELECT CAST(count(*) AS BIGINT) AS n FROM shadow_outbox").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }
}
