import BallastCore
import Evidence
import Foundation
import SQLKit
import Storage

/// The evidence log on the primary store: one hash chain, appended by any number of tasks and processes.
///
/// Appends serialize on the chain head: a transaction-scoped advisory lock on PostgreSQL, the write lock of
/// `BEGIN IMMEDIATE` on SQLite. Inside that, the head is read, the records sealed and inserted, so `seq` has no
/// gaps and every `previousHash` is the hash before it. `seq` is unique, so even a bug could not fork the chain.
public struct EvidenceLog: Sendable {
    /// The advisory-lock key that serializes appenders on PostgreSQL ("ballast-evidence").
    static let chainLockKey: Int64 = 0x6261_6C6C_6173_7402
    public static let verifyBatchSize = 2000

    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Appends inside the caller's transaction (`sql` must be the transaction's connection): the record commits
    /// or rolls back with the change it describes. An event whose ``EvidenceEvent/key`` is already in the log (or
    /// earlier in `events`) is left out: appends are idempotent by key. Answers the records written.
    @discardableResult
    public func append(_ events: [EvidenceEvent], in sql: Transaction) async throws -> [EvidenceRecord] {
        guard !events.isEmpty else { return [] }
        if database.dialect == .postgres {
            try await sql.raw("SELECT pg_advisory_xact_lock(\(bind: Self.chainLockKey))").run()
        }
        // Under the chain's lock, so no other append can add a key between this look and the insert.
        let events = try await Self.withoutRecordedKeys(events, sql)
        guard !events.isEmpty else { return [] }
        let head = try await sql.raw("SELECT seq, content_hash FROM evidence_records ORDER BY seq DESC LIMIT 1")
            .first(decoding: HeadRow.self)
        var previousSeq = head?.seq ?? 0
        var previousHash = head?.content_hash ?? EvidenceRecord.genesisHash
        let now = StoredTime.nowMicros()
        var records: [EvidenceRecord] = []
        records.reserveCapacity(events.count)
        for event in events {
            let record = EvidenceHasher.seal(event, occurredAtMicros: now, previousSeq: previousSeq, previousHash: previousHash)
            records.append(record)
            previousSeq = record.seq
            previousHash = record.contentHash
        }
        // A multi-row insert per 200 records: few round trips, well under every bind limit.
        for chunk in stride(from: 0, to: records.count, by: 200).map({ records[$0..<min($0 + 200, records.count)] }) {
            var insert = sql.insert(into: "evidence_records").columns(
                "id", "seq", "occurred_at_micros", "control_id", "category", "event_type", "event_outcome",
                "entity_type", "entity_id", "request_id", "details", "previous_hash", "content_hash", "event_key")
            for (offset, record) in chunk.enumerated() {
                insert = insert.values(
                    SQLBind(record.id.lowercasedString), SQLBind(record.seq), SQLBind(record.occurredAtMicros),
                    SQLBind(record.controlId), SQLBind(record.category), SQLBind(record.eventType),
                    SQLBind(record.eventOutcome), SQLBind(record.entityType), SQLBind(record.entityId),
                    SQLBind(record.requestId), SQLBind(record.details), SQLBind(record.previousHash),
                    SQLBind(record.contentHash), SQLBind(events[chunk.startIndex + offset].key))
            }
            try await insert.run()
        }
        return records
    }

    /// `events` without those whose key is already in the log or repeats an earlier one's.
    static func withoutRecordedKeys(_ events: [EvidenceEvent], _ sql: any SQLDatabase) async throws -> [EvidenceEvent] {
        let keys = events.compactMap(\.key)
        guard !keys.isEmpty else { return events }
        var recorded: Set<String> = []
        struct KeyRow: Decodable { let event_key: String }
        for chunk in stride(from: 0, to: keys.count, by: 500).map({ keys[$0..<min($0 + 500, keys.count)] }) {
            var query: SQLQueryString = "SELECT event_key FROM evidence_records WHERE event_key IN ("
            for (index, key) in chunk.enumerated() { query += index == 0 ? "\(bind: key)" : ", \(bind: key)" }
            query += ")"
            recorded.formUnion(try await sql.raw(query).all(decoding: KeyRow.self).map(\.event_key))
        }
        return events.filter { event in
            guard let key = event.key else { return true }
            return recorded.insert(key).inserted
        }
    }

    /// Appends in a transaction of its own.
    @discardableResult
    public func append(_ events: [EvidenceEvent]) async throws -> [EvidenceRecord] {
        try await database.transaction { sql in try await append(events, in: sql) }
    }

    @discardableResult
    /// One event in a transaction of its own; nil when its key was already recorded.
    public func append(_ event: EvidenceEvent) async throws -> EvidenceRecord? {
        try await append([event]).first
    }

    /// What `GET /api/admin/evidence` filters on.
    public struct Filter: Sendable, Equatable {
        public var eventType: String?
        public var entityType: String?
        public var entityId: String?
        public var sinceMicros: Int64?

        public init(eventType: String? = nil, entityType: String? = nil, entityId: String? = nil, sinceMicros: Int64? = nil) {
            self.eventType = eventType
            self.entityType = entityType
            self.entityId = entityId
            self.sinceMicros = sinceMicros
        }
    }

    /// Records matching `filter` in chain order, after `afterSeq`, at most `limit`; plus the seq to continue
    /// from when there are more.
    public func list(_ filter: Filter, afterSeq: Int64 = 0, limit: Int) async throws -> (records: [EvidenceRecord], nextSeq: Int64?) {
        precondition((1...1000).contains(limit), "page sizes are bounded")
        let rows = try await database.read { sql in
            var select = sql.select().columns(Self.columns.map { SQLColumn($0) }).from("evidence_records")
                .where("seq", .greaterThan, SQLBind(afterSeq))
            if let eventType = filter.eventType { select = select.where("event_type", .equal, SQLBind(eventType)) }
            if let entityType = filter.entityType { select = select.where("entity_type", .equal, SQLBind(entityType)) }
            if let entityId = filter.entityId { select = select.where("entity_id", .equal, SQLBind(entityId)) }
            if let since = filter.sinceMicros { select = select.where("occurred_at_micros", .greaterThanOrEqual, SQLBind(since)) }
            return try await select.orderBy("seq").limit(limit + 1).all().map(EvidenceRow.init(row:))
        }
        let records = try rows.prefix(limit).map { try $0.record() }
        return (records, rows.count > limit ? records.last?.seq : nil)
    }

    /// The newest record's seq and hash: the digest to keep outside the database. `nil` for an empty log.
    public func head() async throws -> EvidenceDigest? {
        try await database.read { sql in
            try await sql.raw("SELECT seq, content_hash FROM evidence_records ORDER BY seq DESC LIMIT 1")
                .first(decoding: HeadRow.self)
        }.map { EvidenceDigest(seq: $0.seq, hash: $0.content_hash) }
    }

    /// The outcome of recomputing the chain.
    public struct Verification: Sendable, Equatable {
        public let records: Int64
        public let valid: Bool
        public let firstInvalidId: String?
        public let firstInvalidSeq: Int64?
        public let failure: String?
        public let headSeq: Int64
        public let headHash: String
    }

    /// Recomputes the whole chain in seq order, in batches. With `digest`, also proves that the record at the
    /// digest's seq still has the digest's hash (nothing up to it was rewritten since the digest was taken).
    public func verify(digest: EvidenceDigest? = nil) async throws -> Verification {
        var verifier = ChainVerifier()
        var afterSeq: Int64 = 0
        var pinned: EvidenceRecord?
        while verifier.isValid {
            let batch = try await batch(after: afterSeq)
            if batch.isEmpty { break }
            for record in batch {
                if record.seq == digest?.seq { pinned = record }
                if !verifier.check(record) { break }
            }
            afterSeq = batch.last!.seq
            if batch.count < Self.verifyBatchSize { break }
        }
        if let digest, verifier.isValid {
            verifier.checkDigest(seq: digest.seq, hash: digest.hash, record: pinned)
        }
        return Verification(
            records: verifier.records, valid: verifier.isValid, firstInvalidId: verifier.firstInvalid?.id,
            firstInvalidSeq: verifier.firstInvalid?.seq, failure: verifier.firstInvalid?.failure.rawValue,
            headSeq: verifier.headSeq, headHash: verifier.headHash)
    }

    /// The next `verifyBatchSize` records after `afterSeq`, in seq order: decoded with the PostgreSQL driver's
    /// typed rows where available (several times faster than the generic row layer), else column by column.
    func batch(after afterSeq: Int64) async throws -> [EvidenceRecord] {
        let limit = Self.verifyBatchSize
        // The columns of ``columns``, in its order (checked: the text cannot be built from it, being static).
        let query = TypedQuery("""
            SELECT id, seq, occurred_at_micros, control_id, category, event_type, event_outcome, entity_type, entity_id, request_id, details, previous_hash, content_hash
            FROM evidence_records WHERE seq > $1 ORDER BY seq LIMIT $2
            """, [.integer(afterSeq), .integer(Int64(limit))])
        assert(query.sql.contains("SELECT \(Self.columns.joined(separator: ", "))\n"))
        if let records = try await database.typedRows(query, reserving: limit, { row in
            EvidenceRecord(
                id: UUID(uuidString: try row.text(0)) ?? EvidenceRow.unreadableID, seq: try row.integer(1),
                occurredAtMicros: try row.integer(2), controlId: try row.text(3), category: try row.text(4),
                eventType: try row.text(5), eventOutcome: try row.text(6), entityType: try row.optionalText(7),
                entityId: try row.optionalText(8), requestId: try row.optionalText(9), details: try row.text(10),
                previousHash: try row.text(11), contentHash: try row.text(12))
        }) {
            return records
        }
        return try await database.read { sql in
            try await sql.select().columns(Self.columns.map { SQLColumn($0) }).from("evidence_records")
                .where("seq", .greaterThan, SQLBind(afterSeq)).orderBy("seq").limit(limit)
                .all().map { try EvidenceRow(row: $0).record() }
        }
    }

    static let columns = [
        "id", "seq", "occurred_at_micros", "control_id", "category", "event_type", "event_outcome", "entity_type",
        "entity_id", "request_id", "details", "previous_hash", "content_hash",
    ]
}

struct HeadRow: Decodable {
    let seq: Int64
    let content_hash: String
}

/// An `evidence_records` row as stored.
struct EvidenceRow {
    let id: String
    let seq: Int64
    let occurred_at_micros: Int64
    let control_id: String
    let category: String
    let event_type: String
    let event_outcome: String
    let entity_type: String?
    let entity_id: String?
    let request_id: String?
    let details: String
    let previous_hash: String
    let content_hash: String

    /// Stands in for an id that is not a UUID, so the record still verifies as a mismatch instead of stopping
    /// the scan.
    static let unreadableID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// Column by column: several times faster than the generic row decoder, which matters to `verify`.
    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        seq = try row.decode(column: "seq", as: Int64.self)
        occurred_at_micros = try row.decode(column: "occurred_at_micros", as: Int64.self)
        control_id = try row.decode(column: "control_id", as: String.self)
        category = try row.decode(column: "category", as: String.self)
        event_type = try row.decode(column: "event_type", as: String.self)
        event_outcome = try row.decode(column: "event_outcome", as: String.self)
        entity_type = try row.decode(column: "entity_type", as: String?.self)
        entity_id = try row.decode(column: "entity_id", as: String?.self)
        request_id = try row.decode(column: "request_id", as: String?.self)
        details = try row.decode(column: "details", as: String.self)
        previous_hash = try row.decode(column: "previous_hash", as: String.self)
        content_hash = try row.decode(column: "content_hash", as: String.self)
    }

    func record() throws -> EvidenceRecord {
        // An unreadable id still verifies as a mismatch instead of stopping the scan.
        EvidenceRecord(
            id: UUID(uuidString: id) ?? Self.unreadableID, seq: seq,
            occurredAtMicros: occurred_at_micros, controlId: control_id, category: category, eventType: event_type,
            eventOutcome: event_outcome, entityType: entity_type, entityId: entity_id, requestId: request_id,
            details: details, previousHash: previous_hash, contentHash: content_hash)
    }
}
