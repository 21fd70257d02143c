import BallastCore
import Crypto
import DomainValues
import Evidence
import Foundation
import SQLKit
import Storage

/// `Idempotency-Key` for POSTs that move money or create orders (SPEC §3): a retry with the same key and body
/// gets the first answer again; with another body, 422 `idempotency_key_reused`; while the first is still
/// running, 409 `idempotency_key_in_use`. Keys are scoped to the caller and kept 24 hours.
///
/// How: ``claim(user:key:requestHash:)`` records the key as in flight in a short transaction of its own, so a
/// concurrent retry sees it. The effect's transaction then marks it completed with the response
/// (``complete(user:key:token:status:body:in:)``): the effect cannot commit without the key, and a crash before the
/// commit leaves only an in-flight claim, which the next retry takes over once it is older than
/// ``abandonedAfterSeconds`` on the database's clock. A take-over is a compare-and-swap on the claim it read (its
/// state and token): if the first request completes in the meantime, the take-over matches nothing and the retry
/// reads the key again, so it replays the first answer instead of applying the effect twice (I9). A failed effect
/// releases its claim, so the request can be tried again.
public struct IdempotencyStore: Sendable {
    public static let retentionSeconds: Int64 = 24 * 3600
    /// By default, an in-flight claim older than this belonged to a request that died; a retry may take it over.
    public static let defaultAbandonedAfterSeconds: Int64 = 60
    public static let maxKeyLength = 255

    /// Failpoints for tests that race requests sharing a key.
    public enum Failpoint {
        /// In the effect's transaction, after the key is marked completed and before the commit.
        public static let afterComplete = "idempotency.after_complete"
    }

    let database: Database
    /// How old an in-flight claim must be (database clock) before a retry takes it over.
    let abandonedAfterSeconds: Int64

    public init(database: Database, abandonedAfterSeconds: Int64 = IdempotencyStore.defaultAbandonedAfterSeconds) {
        precondition(abandonedAfterSeconds >= 1, "a claim is abandoned after at least a second")
        self.database = database
        self.abandonedAfterSeconds = abandonedAfterSeconds
    }

    /// A stored answer to replay.
    public struct StoredResponse: Sendable, Equatable {
        public let status: Int
        public let body: String
    }

    public enum Claim: Sendable, Equatable {
        /// Go ahead: this request owns the key now, as long as the claim token is still the one stored.
        case proceed(token: String)
        /// The first request finished: answer this again.
        case replay(StoredResponse)
    }

    /// The header's rule: 1–255 printable ASCII characters without spaces.
    public static let keyRule = TextRule.ascii(.visibleASCII, 1...maxKeyLength)
    /// The `Idempotency-Key` header, as the OpenAPI document lists it.
    public static let keyHeader = Field.optional("Idempotency-Key", .text(keyRule), summary: "makes a retry safe (kept 24 h)")

    /// Checks the header value: 1–255 printable ASCII characters.
    public static func validateKey(_ key: String) throws -> String {
        guard keyRule.problem(with: key) == nil else {
            throw AppError(.validationFailed, "Idempotency-Key must be 1 to \(maxKeyLength) printable ASCII characters without spaces",
                           details: ["field": "Idempotency-Key"])
        }
        return key
    }

    /// SHA-256 of what makes two requests "the same": method, path and the body's canonical JSON.
    public static func requestHash(method: String, path: String, canonicalBody: String) -> String {
        EvidenceHasher.hex(SHA256.hash(data: Array("\(method) \(path)\n\(canonicalBody)".utf8)))
    }

    public func claim(user: UserID, key: String, requestHash: String) async throws -> Claim {
        // A lost race (a concurrent insert, or a take-over that found the claim changed) reads the key again; a
        // key changes hands a bounded number of times while one request looks at it.
        for _ in 0..<4 {
            do {
                if let claim = try await claimOnce(user: user, key: key, requestHash: requestHash) { return claim }
            } catch StorageError.uniqueViolation {
                continue
            }
        }
        throw AppError(.idempotencyKeyInUse, "requests with this Idempotency-Key are racing; retry shortly", retryAfterSeconds: 1)
    }

    /// One look at the key: the decision, or nil when the key changed under this request (look again).
    private func claimOnce(user: UserID, key: String, requestHash: String) async throws -> Claim? {
        let token = UUID.random().lowercasedString
        let now = database.nowMicros
        return try await database.transaction { sql in
            if let row = try await sql.raw("""
                SELECT request_hash, state, response_status, response_body, created_at_micros, updated_at_micros,
                       COALESCE(claim_token, '') AS claim_token, \(now) AS now_micros
                FROM idempotency_keys WHERE user_id = \(bind: user.description) AND idem_key = \(bind: key)
                """).first(decoding: KeyRow.self) {
                let expired = row.created_at_micros < row.now_micros - Self.retentionSeconds * 1_000_000
                if !expired {
                    guard row.request_hash == requestHash else {
                        throw AppError(.idempotencyKeyReused, "this Idempotency-Key was used with a different request",
                                       details: ["field": "Idempotency-Key"])
                    }
                    if row.state == "completed", let status = row.response_status, let body = row.response_body {
                        return .replay(StoredResponse(status: status, body: body))
                    }
                    if row.updated_at_micros > row.now_micros - abandonedAfterSeconds * 1_000_000 {
                        throw AppError(.idempotencyKeyInUse, "a request with this Idempotency-Key is still being processed; retry shortly",
                                       retryAfterSeconds: 1)
                    }
                }
                // Expired, or abandoned by a request that died (or is stuck): take it over, but only the claim read
                // above. A new token means the old request, should it still finish, can no longer complete the key.
                let createdAt: SQLQueryString = expired ? now : "\(bind: row.created_at_micros)"
                let taken = try await sql.raw("""
                    UPDATE idempotency_keys SET request_hash = \(bind: requestHash), state = 'in_flight', response_status = NULL,
                        response_body = NULL, created_at_micros = \(createdAt),
                        updated_at_micros = \(now), claim_token = \(bind: token)
                    WHERE user_id = \(bind: user.description) AND idem_key = \(bind: key)
                      AND state = \(bind: row.state) AND COALESCE(claim_token, '') = \(bind: row.claim_token)
                      AND updated_at_micros = \(bind: row.updated_at_micros)
                    RETURNING idem_key
                    """).first()
                return taken == nil ? nil : .proceed(token: token)
            }
            try await sql.raw("""
                INSERT INTO idempotency_keys (user_id, idem_key, request_hash, state, created_at_micros, updated_at_micros, claim_token)
                VALUES (\(bind: user.description), \(bind: key), \(bind: requestHash), 'in_flight', \(now), \(now), \(bind: token))
                """).run()
            return .proceed(token: token)
        }
    }

    /// Marks the key completed with its response, inside the effect's transaction. Throws 409
    /// `idempotency_key_in_use` (rolling the effect back) when another request took the claim over meanwhile, so
    /// two requests with one key can never both take effect (SPEC I9).
    public func complete(user: UserID, key: String, token: String, status: Int, body: String, in sql: Transaction) async throws {
        let owned = try await sql.raw("""
            UPDATE idempotency_keys SET state = 'completed', response_status = \(bind: status), response_body = \(bind: body),
                updated_at_micros = \(database.nowMicros)
            WHERE user_id = \(bind: user.description) AND idem_key = \(bind: key) AND claim_token = \(bind: token)
              AND state = 'in_flight'
            RETURNING idem_key
            """).first()
        guard owned != nil else {
            throw AppError(.idempotencyKeyInUse, "another request with this Idempotency-Key took over; retry to get its answer",
                           retryAfterSeconds: 1)
        }
    }

    /// Gives up this request's claim after its effect failed, so the request may be tried again. A claim taken
    /// over by another request is left alone.
    public func release(user: UserID, key: String, token: String) async throws {
        try await database.transaction { sql in
            try await sql.raw("""
                DELETE FROM idempotency_keys
                WHERE user_id = \(bind: user.description) AND idem_key = \(bind: key) AND state = 'in_flight'
                  AND claim_token = \(bind: token)
                """).run()
        }
    }

    /// Deletes keys older than 24 hours; returns how many.
    @discardableResult
    public func prune() async throws -> Int {
        try await database.transaction { sql in
            try await sql.raw("""
                DELETE FROM idempotency_keys WHERE created_at_micros < \(database.nowMicros) - \(bind: Self.retentionSeconds * 1_000_000)
                RETURNING idem_key
                """).all().count
        }
    }
}

struct KeyRow: Decodable {
    let request_hash: String
    let state: String
    let response_status: Int?
    let response_body: String?
    let created_at_micros: Int64
    let updated_at_micros: Int64
    let claim_token: String
    let now_micros: Int64
}
