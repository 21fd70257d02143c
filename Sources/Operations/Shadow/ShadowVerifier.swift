import BallastCore
import ChaosKit
import Commerce
import Evidence
import EvidenceStore
import Foundation
import Logging
import Metrics
import SQLKit
import Storage
import Tracing

/// What one verifier run found (SPEC §7).
public struct VerifierResult: Sendable, Equatable {
    /// Distinct listings seen in either store.
    public var checked = 0
    public var missingInShadow = 0
    public var missingInPrimary = 0
    public var mismatched = 0
    /// Discrepancies an injected shadow fault explains.
    public var expected = 0
    /// Discrepancies nothing explains: real bugs.
    public var unexplained = 0
    /// Listings that ever had an injected shadow-write failure.
    public var injectedFaults = 0
    /// How many of those this run found a discrepancy for.
    public var detected = 0
    /// Differences whose shadow write was still waiting in the outbox: not discrepancies (yet).
    public var inFlight = 0
    /// Discrepancies made right in the shadow (with `repair`).
    public var repaired = 0
    /// Discrepancies recorded for the first time by this run.
    public var newlyRecorded = 0
    public var durationSeconds = 0.0

    public init() {}
}

/// What kind of difference between the stores a discrepancy is (`discrepancyType`).
public enum DiscrepancyKind: String, Sendable, CaseIterable {
    case missingInShadow = "missing_in_shadow"
    case missingInPrimary = "missing_in_primary"
    case mismatch
}

/// One difference between the stores, after re-checking.
struct Discrepancy: Sendable, Equatable {
    typealias Kind = DiscrepancyKind

    let entityId: String
    let kind: Kind
    /// For a mismatch, the names of the fields that differ (never their values).
    let fields: [String]
}

/// The discrepancy verifier (job `shadow-discrepancy-verifier`): compares the listings of the primary and
/// the shadow store in keyset batches (memory stays flat whatever the table size), re-checks each difference
/// once the shadow queue has settled (a row written during the scan is not a discrepancy), records each new one
/// once (discrepancy row, SHADOW_WRITE_DISCREPANCY evidence, metrics), resolves the ones that are gone, and
/// with `repair` copies the primary's row over the shadow's.
public struct ShadowVerifier: Sendable {
    public static let batchSize = 10_000
    /// Differences one run keeps in memory (the scan itself holds two batches whatever the table size).
    public static let maximumCandidates = 50_000
    static let entityType = ShadowWrite.shadowedEntityType

    let primary: Database
    let shadow: Database
    let evidence: EvidenceLog
    let appender: EvidenceAppender
    let writer: ShadowWriter?
    let metrics: any MetricsFactory
    let logger: Logger
    let failpoints: Failpoints?

    /// Failpoints for tests that race a repair against new writes.
    public enum Failpoint {
        /// In a repair, after the primary's rows were read and before they are written into the shadow.
        public static let repairBeforeOverwrite = "verifier.repair.before_overwrite"
    }

    public init(
        primary: Database, shadow: Database, evidence: EvidenceLog, appender: EvidenceAppender, writer: ShadowWriter?,
        metrics: any MetricsFactory, logger: Logger, failpoints: Failpoints? = nil
    ) {
        self.primary = primary
        self.shadow = shadow
        self.evidence = evidence
        self.appender = appender
        self.writer = writer
        self.metrics = metrics
        self.logger = logger
        self.failpoints = failpoints
    }

    public func run(repair: Bool, lease: JobLease? = nil) async throws -> VerifierResult {
        try await Traces.span("shadow verification") { span in
            span?.attributes["ballast.verifier.repair"] = repair
            let result = try await runInTrace(repair: repair, lease: lease)
            span?.updateAttributes { attributes in
                attributes["ballast.verifier.checked"] = result.checked
                attributes["ballast.verifier.unexplained"] = result.unexplained
            }
            return result
        }
    }

    private func runInTrace(repair: Bool, lease: JobLease?) async throws -> VerifierResult {
        let started = ContinuousClock.now
        var result = VerifierResult()
        // Writes already committed should reach the shadow (and their failures the evidence log) first.
        await writer?.drain(timeout: .seconds(5))
        try await appender.flush()

        var candidates: [String] = []
        result.checked = try await scan { id, primaryRow, shadowRow in
            if candidates.count < Self.maximumCandidates, ScanRow.differ(primaryRow, shadowRow) { candidates.append(id) }
        }
        if candidates.count == Self.maximumCandidates {
            logger.warning("the verifier holds at most \(Self.maximumCandidates) differences per run; later runs find the rest")
        }
        // Re-check: a row that changed while the scan ran, and whose shadow write has landed since, is fine.
        await writer?.drain(timeout: .seconds(5))
        var found: [Discrepancy] = []
        for chunk in stride(from: 0, to: candidates.count, by: 500).map({ Array(candidates[$0..<min($0 + 500, candidates.count)]) }) {
            try Task.checkCancellation()
            // In this order: the primary, then the outbox, then the shadow. A write still waiting in the outbox
            // (queued here or in another process, held by an injected delay, or left by a process that died and not
            // swept yet) is in flight: the shadow is behind, not wrong. An outbox row is deleted only after its
            // write landed in the shadow or its failure was recorded, so once no row is left for a listing, the
            // shadow read after it shows every write up to the primary version read before it, or a recorded failure
            // explains the difference. (Reading the shadow first, a write landing in between looked like a mismatch.)
            let primaryRows = try await primary.read { sql in try await Self.rows(chunk, primaryTable: true, sql) }
            let inFlight = try await ShadowOutbox.pending(chunk, primary)
            let shadowRows = try await shadow.read { sql in try await Self.rows(chunk, primaryTable: false, sql) }
            for id in chunk {
                guard let discrepancy = Self.compare(id, primaryRows[id], shadowRows[id]) else { continue }
                if inFlight.contains(id) {
                    result.inFlight += 1
                } else {
                    found.append(discrepancy)
                }
            }
        }

        let injected = try await injectedEntities()
        result.injectedFaults = injected.count
        for discrepancy in found {
            switch discrepancy.kind {
            case .missingInShadow: result.missingInShadow += 1
            case .missingInPrimary: result.missingInPrimary += 1
            case .mismatch: result.mismatched += 1
            }
            if injected.contains(discrepancy.entityId) {
                result.expected += 1
                result.detected += 1
            } else {
                result.unexplained += 1
            }
        }
        result.newlyRecorded = try await record(found, injected: injected, lease: lease)
        if repair {
            result.repaired = try await self.repair(found, lease: lease)
        }
        Gauge(label: "shadow_discrepancy_last_check_timestamp", dimensions: [("entity_type", Self.entityType)], factory: metrics)
            .record(Date().timeIntervalSince1970)
        result.durationSeconds = (ContinuousClock.now - started).inSeconds
        logger.info("shadow verifier finished", metadata: [
            "checked": "\(result.checked)", "missingInShadow": "\(result.missingInShadow)",
            "missingInPrimary": "\(result.missingInPrimary)", "mismatched": "\(result.mismatched)",
            "unexplained": "\(result.unexplained)", "repaired": "\(result.repaired)",
        ])
        return result
    }

    // MARK: The scan

    /// Walks both tables in id order, one batch of each at a time (the two stores read concurrently), calling
    /// `visit` once per id seen in either. Answers how many ids it saw.
    private func scan(_ visit: (String, ScanRow?, ScanRow?) -> Void) async throws -> Int {
        // Both stores on PostgreSQL: each row's fields are hashed by the database and only (id, deleted, hash)
        // travels; otherwise whole rows are read and fingerprinted here (the same comparison, more bytes).
        let hashInDatabase = primary.dialect == .postgres && shadow.dialect == .postgres
        var primaryBatch: [ScanRow] = [], shadowBatch: [ScanRow] = []
        var primaryIndex = 0, shadowIndex = 0
        var primaryDone = false, shadowDone = false
        var seen = 0
        while true {
            // A run cancelled (its lease lost, or the process stopping) stops between batches.
            try Task.checkCancellation()
            let refillPrimary = primaryIndex == primaryBatch.count && !primaryDone
            let refillShadow = shadowIndex == shadowBatch.count && !shadowDone
            if refillPrimary || refillShadow {
                let primaryAfter = primaryBatch.last?.id ?? "", shadowAfter = shadowBatch.last?.id ?? ""
                async let nextPrimary = refillPrimary
                    ? Self.scanBatch(after: primaryAfter, primaryTable: true, primary, hashInDatabase: hashInDatabase) : nil
                async let nextShadow = refillShadow
                    ? Self.scanBatch(after: shadowAfter, primaryTable: false, shadow, hashInDatabase: hashInDatabase) : nil
                if let batch = try await nextPrimary {
                    primaryBatch = batch
                    primaryIndex = 0
                    primaryDone = batch.count < Self.batchSize
                }
                if let batch = try await nextShadow {
                    shadowBatch = batch
                    shadowIndex = 0
                    shadowDone = batch.count < Self.batchSize
                }
            }
            let nextPrimary = primaryIndex < primaryBatch.count ? primaryBatch[primaryIndex] : nil
            let nextShadow = shadowIndex < shadowBatch.count ? shadowBatch[shadowIndex] : nil
            switch (nextPrimary, nextShadow) {
            case (nil, nil):
                return seen
            case (let p?, let s?) where p.id == s.id:
                visit(p.id, p, s)
                primaryIndex += 1
                shadowIndex += 1
            case (let p?, let s?) where p.id.utf8.lexicographicallyPrecedes(s.id.utf8):
                visit(p.id, p, nil)
                primaryIndex += 1
            case (let p?, nil):
                visit(p.id, p, nil)
                primaryIndex += 1
            case (_, let s?):
                visit(s.id, nil, s)
                shadowIndex += 1
            }
            seen += 1
        }
    }

    /// The next batch of (id, deleted, fingerprint) after `id`, in byte order of the id.
    static func scanBatch(
        after id: String, primaryTable: Bool, _ database: Database, hashInDatabase: Bool
    ) async throws -> [ScanRow] {
        if hashInDatabase {
            let values: [TypedValue] = [.text(id), .integer(Int64(batchSize))]
            let query = primaryTable
                ? TypedQuery("""
                    SELECT id, CAST(CASE WHEN deleted_at_micros IS NULL THEN 0 ELSE 1 END AS BIGINT),
                           hashtextextended(concat_ws('|', owner_id, title, price, version, created_at_micros, updated_at_micros), 0)
                    FROM listings WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT $2
                    """, values)
                : TypedQuery("""
                    SELECT id, CAST(deleted AS BIGINT),
                           hashtextextended(concat_ws('|', owner_id, title, price, version, created_at_micros, updated_at_micros), 0)
                    FROM listings WHERE id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT $2
                    """, values)
            if let rows = try await database.typedRows(query, reserving: batchSize, { row in
                ScanRow(id: try row.text(0), deleted: try row.integer(1) != 0, fingerprint: try row.integer(2))
            }) {
                return rows
            }
        }
        return try await database.read { sql in
            try await batch(after: id, primaryTable: primaryTable, dialect: database.dialect, sql)
        }.map { ScanRow(id: $0.id, deleted: $0.deleted, fingerprint: $0.fingerprint) }
    }

    /// The difference between a listing's primary and shadow row, if any. A deleted row and an absent one are
    /// the same state.
    static func compare(_ id: String, _ primary: MirrorRow?, _ shadow: MirrorRow?) -> Discrepancy? {
        let primaryLive = primary.map { !$0.deleted } ?? false
        let shadowLive = shadow.map { !$0.deleted } ?? false
        switch (primaryLive, shadowLive) {
        case (false, false):
            return nil
        case (true, false):
            return Discrepancy(entityId: id, kind: .missingInShadow, fields: [])
        case (false, true):
            // Deleted in the primary but live in the shadow: the delete did not land.
            return primary == nil
                ? Discrepancy(entityId: id, kind: .missingInPrimary, fields: [])
                : Discrepancy(entityId: id, kind: .mismatch, fields: ["deleted"])
        case (true, true):
            let fields = primary!.differingFields(shadow!)
            return fields.isEmpty ? nil : Discrepancy(entityId: id, kind: .mismatch, fields: fields)
        }
    }

    /// The next batch in byte order of the id (both stores must agree on the order the merge walks in, so
    /// PostgreSQL compares with the "C" collation whatever the database's locale).
    static func batch(
        after id: String, primaryTable: Bool, dialect: Database.Dialect, _ sql: any SQLDatabase
    ) async throws -> [MirrorRow] {
        let collate = dialect == .postgres ? #" COLLATE "C""# : ""
        return try await sql.raw("""
            SELECT \(unsafeRaw: MirrorRow.columns(primaryTable)) FROM listings
            WHERE id\(unsafeRaw: collate) > \(bind: id) ORDER BY id\(unsafeRaw: collate) LIMIT \(bind: batchSize)
            """).all(decoding: MirrorRow.self)
    }

    static func rows(_ ids: [String], primaryTable: Bool, _ sql: any SQLDatabase) async throws -> [String: MirrorRow] {
        guard !ids.isEmpty else { return [:] }
        var query: SQLQueryString = "SELECT \(unsafeRaw: MirrorRow.columns(primaryTable)) FROM listings WHERE id IN ("
        for (index, id) in ids.enumerated() { query += index == 0 ? "\(bind: id)" : ", \(bind: id)" }
        query += ")"
        let rows = try await sql.raw(query).all(decoding: MirrorRow.self)
        return Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: Ground truth and records

    /// Listings with an injected shadow-write failure on record (the failure evidence is the ground truth, shared
    /// by every server process).
    private func injectedEntities() async throws -> Set<String> {
        struct Row: Decodable { let entity_id: String }
        let rows = try await primary.read { sql in
            try await sql.raw("""
                SELECT DISTINCT entity_id FROM evidence_records
                WHERE event_type = \(bind: EvidenceType.shadowWriteFailure.rawValue) AND entity_type = \(bind: Self.entityType)
                  AND details LIKE '%"failureType":"injected"%'
                """).all(decoding: Row.self)
        }
        return Set(rows.map(\.entity_id))
    }

    /// Records what is new (a row, one evidence record, metrics), leaves what is still open as it is, and
    /// resolves open ones that are gone. Answers how many were new.
    private func record(_ found: [Discrepancy], injected: Set<String>, lease: JobLease?) async throws -> Int {
        struct Open: Decodable {
            let id: String
            let entity_id: String
            let discrepancy_type: String
            let fields: String
        }
        let foundById = Dictionary(found.map { ($0.entityId, $0) }, uniquingKeysWith: { first, _ in first })
        return try await primary.transaction { sql in
            // A run whose lease was lost (a paused process, a lost store) writes nothing.
            try await lease?.hold(in: sql)
            let open = try await sql.raw("""
                SELECT id, entity_id, discrepancy_type, fields FROM shadow_discrepancies
                WHERE status = 'open' AND entity_type = \(bind: Self.entityType)
                """).all(decoding: Open.self)
            let now = StoredTime.nowMicros()
            var stillOpen: Set<String> = []
            for row in open {
                if let current = foundById[row.entity_id], current.kind.rawValue == row.discrepancy_type,
                   current.fields.joined(separator: ",") == row.fields {
                    stillOpen.insert(row.entity_id)
                    continue
                }
                try await sql.raw("""
                    UPDATE shadow_discrepancies SET status = 'resolved', resolved_at_micros = \(bind: now),
                        resolution = \(bind: foundById[row.entity_id] == nil ? "no longer found" : "superseded")
                    WHERE id = \(bind: row.id)
                    """).run()
            }
            var events: [EvidenceEvent] = []
            for discrepancy in found where !stillOpen.contains(discrepancy.entityId) {
                let expected = injected.contains(discrepancy.entityId)
                try await sql.raw("""
                    INSERT INTO shadow_discrepancies (id, entity_type, entity_id, discrepancy_type, fields, expected, status,
                                                      detected_at_micros)
                    VALUES (\(bind: UUID.random().lowercasedString), \(bind: Self.entityType), \(bind: discrepancy.entityId),
                            \(bind: discrepancy.kind.rawValue), \(bind: discrepancy.fields.joined(separator: ",")),
                            \(bind: expected ? 1 : 0), 'open', \(bind: now))
                    """).run()
                events.append(EvidenceEvent(
                    .shadowWriteDiscrepancy, outcome: .discrepancy,
                    entityType: Self.entityType, entityId: discrepancy.entityId,
                    details: [
                        "discrepancyType": .string(discrepancy.kind.rawValue),
                        "fields": .array(discrepancy.fields.map { .string($0) }),
                        "expected": .bool(expected),
                    ]))
            }
            try await evidence.append(events, in: sql)
            for discrepancy in found where !stillOpen.contains(discrepancy.entityId) {
                Counter(label: "shadow_discrepancies_total",
                        dimensions: [("entity_type", Self.entityType), ("discrepancy_type", discrepancy.kind.rawValue)],
                        factory: metrics).increment()
                if !injected.contains(discrepancy.entityId) {
                    Counter(label: "shadow_unexplained_discrepancies_total", dimensions: [("entity_type", Self.entityType)],
                            factory: metrics).increment()
                }
            }
            return events.count
        }
    }

    /// Makes the shadow match the primary for each discrepancy (the primary's row, whatever the shadow's
    /// version; or no row when the primary has none), then resolves it with SHADOW_WRITE_REPAIRED evidence.
    private func repair(_ found: [Discrepancy], lease: JobLease?) async throws -> Int {
        var repaired = 0
        for chunk in stride(from: 0, to: found.count, by: 200).map({ Array(found[$0..<min($0 + 200, found.count)]) }) {
            try Task.checkCancellation()
            let sources = try await primary.read { sql in try await Self.rows(chunk.map(\.entityId), primaryTable: true, sql) }
            try await failpoints?.pass(Failpoint.repairBeforeOverwrite)
            // The shadow is another store, so its write cannot be fenced in one transaction with the lease: check the
            // lease just before it (a run that lost its lease repairs nothing more; one paused between the check and
            // the write can only rewrite a row with the primary's version or a newer one, never move it back).
            if let lease { try await primary.transaction { sql in try await lease.hold(in: sql) } }
            try await shadow.transaction { sql in
                for discrepancy in chunk {
                    if let row = sources[discrepancy.entityId] {
                        try await row.overwrite(sql)
                    } else {
                        // The primary has no such listing (they are only ever soft-deleted): the shadow's row is an
                        // intruder whatever its version.
                        try await sql.raw("DELETE FROM listings WHERE id = \(bind: discrepancy.entityId)").run()
                    }
                }
            }
            let now = StoredTime.nowMicros()
            try await primary.transaction { sql in
                try await lease?.hold(in: sql)
                for discrepancy in chunk {
                    try await sql.raw("""
                        UPDATE shadow_discrepancies SET status = 'resolved', resolved_at_micros = \(bind: now), resolution = 'repaired'
                        WHERE status = 'open' AND entity_type = \(bind: Self.entityType) AND entity_id = \(bind: discrepancy.entityId)
                        """).run()
                }
                try await evidence.append(chunk.map { discrepancy in
                    EvidenceEvent(
                        .shadowWriteRepaired, outcome: .success,
                        entityType: Self.entityType, entityId: discrepancy.entityId,
                        details: ["discrepancyType": .string(discrepancy.kind.rawValue),
                                  "fields": .array(discrepancy.fields.map { .string($0) })])
                }, in: sql)
            }
            repaired += chunk.count
        }
        return repaired
    }
}

/// What the scan compares per listing: whether it is deleted, and a fingerprint of every other field.
struct ScanRow: Sendable, Equatable {
    let id: String
    let deleted: Bool
    /// A 64-bit hash of every compared field but `deleted` (computed by PostgreSQL when both stores are
    /// PostgreSQL, else here; the two sides of a comparison always hash the same way).
    let fingerprint: Int64

    /// Whether the two sides disagree (deleted and absent being the same state).
    static func differ(_ primary: ScanRow?, _ shadow: ScanRow?) -> Bool {
        let primaryLive = primary.map { !$0.deleted } ?? false
        let shadowLive = shadow.map { !$0.deleted } ?? false
        switch (primaryLive, shadowLive) {
        case (false, false): return false
        case (true, true): return primary!.fingerprint != shadow!.fingerprint
        default: return true
        }
    }
}

/// A listing row as both stores hold it (the primary's `deleted_at_micros` read as a flag).
struct MirrorRow: Decodable, Sendable, Equatable {
    let id: String
    let owner_id: String
    let title: String
    let price: Int64
    let version: Int64
    let created_at_micros: Int64
    let updated_at_micros: Int64
    let deleted_flag: Int64

    var deleted: Bool { deleted_flag != 0 }

    /// FNV-1a over every compared field but `deleted`, written as one string (numbers cannot hold the
    /// separator, so the string is unambiguous).
    var fingerprint: Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(owner_id)|\(title)|\(price)|\(version)|\(created_at_micros)|\(updated_at_micros)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    static func columns(_ primaryTable: Bool) -> String {
        "id, owner_id, title, price, version, created_at_micros, updated_at_micros, "
            + (primaryTable ? "CASE WHEN deleted_at_micros IS NULL THEN 0 ELSE 1 END AS deleted_flag" : "CAST(deleted AS BIGINT) AS deleted_flag")
    }

    /// Names of the fields whose values differ.
    func differingFields(_ other: MirrorRow) -> [String] {
        var fields: [String] = []
        if owner_id != other.owner_id { fields.append("ownerId") }
        if title != other.title { fields.append("title") }
        if price != other.price { fields.append("price") }
        if version != other.version { fields.append("version") }
        if created_at_micros != other.created_at_micros { fields.append("createdAt") }
        if updated_at_micros != other.updated_at_micros { fields.append("updatedAt") }
        return fields
    }

    /// Writes this row into the shadow unless the shadow holds a newer version (repair): a row tampered with at the
    /// same version is fixed, and a write that landed after this row was read is never moved back (SPEC §7).
    func overwrite(_ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros, deleted)
            VALUES (\(bind: id), \(bind: owner_id), \(bind: title), \(bind: price), \(bind: version), \(bind: created_at_micros),
                    \(bind: updated_at_micros), \(bind: deleted ? 1 : 0))
            ON CONFLICT (id) DO UPDATE SET
                owner_id = excluded.owner_id, title = excluded.title, price = excluded.price, version = excluded.version,
                created_at_micros = excluded.created_at_micros, updated_at_micros = excluded.updated_at_micros,
                deleted = excluded.deleted
            WHERE listings.version <= excluded.version
            """).run()
    }
}
