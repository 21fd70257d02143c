import BallastCore
import Commerce
import Foundation
import SQLKit
import Storage

/// A discrepancy as the verifier recorded it.
public struct DiscrepancyRecord: Sendable, Equatable {
    public let id: String
    public let entityType: String
    public let entityId: String
    public let discrepancyType: String
    public let fields: [String]
    public let expected: Bool
    public let status: String
    public let detectedAt: Date
    public let resolvedAt: Date?
    public let resolution: String?
}

/// Reads the verifier's discrepancy table for `GET /api/admin/discrepancies`.
public struct Discrepancies: Sendable {
    public enum Status: String, Sendable, CaseIterable {
        case open, resolved
    }

    let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Newest first, after the cursor (`MICROS_ID` of the last one seen).
    public func list(status: Status?, after cursor: (micros: Int64, id: String)?, limit: Int) async throws
        -> (records: [DiscrepancyRecord], next: String?)
    {
        struct Row: Decodable {
            let id: String
            let entity_type: String
            let entity_id: String
            let discrepancy_type: String
            let fields: String
            let expected: Int64
            let status: String
            let detected_at_micros: Int64
            let resolved_at_micros: Int64?
            let resolution: String?
        }
        let rows = try await database.read { sql in
            var query: SQLQueryString = """
                SELECT id, entity_type, entity_id, discrepancy_type, fields, CAST(expected AS BIGINT) AS expected, status,
                       detected_at_micros, resolved_at_micros, resolution
                FROM shadow_discrepancies WHERE 1 = 1
                """
            if let status { query += " AND status = \(bind: status.rawValue)" }
            if let cursor {
                query += """
                     AND (detected_at_micros < \(bind: cursor.micros)
                          OR (detected_at_micros = \(bind: cursor.micros) AND id < \(bind: cursor.id)))
                    """
            }
            query += " ORDER BY detected_at_micros DESC, id DESC LIMIT \(bind: limit + 1)"
            return try await sql.raw(query).all(decoding: Row.self)
        }
        let records = rows.prefix(limit).map { row in
            DiscrepancyRecord(
                id: row.id, entityType: row.entity_type, entityId: row.entity_id, discrepancyType: row.discrepancy_type,
                fields: row.fields.isEmpty ? [] : row.fields.split(separator: ",").map(String.init), expected: row.expected == 1,
                status: row.status, detectedAt: StoredTime.date(fromMicros: row.detected_at_micros),
                resolvedAt: row.resolved_at_micros.map(StoredTime.date(fromMicros:)), resolution: row.resolution)
        }
        let next = rows.count > limit ? "\(rows[limit - 1].detected_at_micros)_\(rows[limit - 1].id)" : nil
        return (records, next)
    }
}

extension VerifierResult {
    /// The result as the trigger endpoint answers it.
    public var json: JSONValue {
        .object([
            "checked": .integer(Int64(checked)), "missingInShadow": .integer(Int64(missingInShadow)),
            "missingInPrimary": .integer(Int64(missingInPrimary)), "mismatched": .integer(Int64(mismatched)),
            "expected": .integer(Int64(expected)), "unexplained": .integer(Int64(unexplained)),
            "injectedFaults": .integer(Int64(injectedFaults)), "detected": .integer(Int64(detected)),
            "repaired": .integer(Int64(repaired)), "newlyRecorded": .integer(Int64(newlyRecorded)),
            "inFlight": .integer(Int64(inFlight)),
            "durationSeconds": .number(durationSeconds),
        ])
    }
}
