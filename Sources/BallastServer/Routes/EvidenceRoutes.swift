import Evidence
import Foundation
import HTTPTypes
import Hummingbird
import Marketplace
import NIOCore

/// `GET /api/admin/evidence` (filtered, paginated, chain order) and `GET /api/admin/evidence/verify`.
struct EvidenceRoutes<Context: BallastRequestContext> {
    let evidence: EvidenceLog

    func register(on router: Router<Context>) {
        router.get("/api/admin/evidence") { request, context in
            _ = try context.requireAdmin()
            let list = try ListQuery(request)
            let query = request.uri.queryParameters
            func text(_ name: String) throws -> String? {
                guard let value = query[Substring(name)].map(String.init), !value.isEmpty else { return nil }
                guard value.count <= 200 else {
                    throw AppError(.validationFailed, "\(name) is too long", details: ["field": .string(name)])
                }
                return value
            }
            let filter = EvidenceLog.Filter(
                eventType: try text("eventType"), entityType: try text("entityType"), entityId: try text("entityId"),
                sinceMicros: try ListQuery.timeParameter(request, "since"))
            let page = try await evidence.list(filter, afterSeq: try list.sequenceCursor(), limit: list.limit)
            return try JSONResponse.make(.ok, Page(items: page.records.map(EvidenceBody.init), nextCursor: page.nextSeq.map { String($0) }))
        }
        router.get("/api/admin/evidence/verify") { request, context in
            _ = try context.requireAdmin()
            var digest: EvidenceDigest?
            if let text = request.uri.queryParameters["digest"].map(String.init), !text.isEmpty {
                guard let parsed = EvidenceDigest(text) else {
                    throw AppError(.validationFailed, "digest must be SEQ:HASH (a positive integer and 64 lower-case hex digits)",
                                   details: ["field": .string("digest")])
                }
                digest = parsed
            }
            let result = try await evidence.verify(digest: digest)
            return try JSONResponse.make(.ok, VerificationBody(result))
        }
    }
}

/// An evidence record as the API (and `ballast evidence export`) shows it.
public struct EvidenceBody: Encodable, Sendable {
    let id: String
    let seq: Int64
    let occurredAt: String
    let controlId: String
    let category: String
    let eventType: String
    let eventOutcome: String
    @Null var entityType: String?
    @Null var entityId: String?
    @Null var requestId: String?
    let details: JSONValue
    let contentHash: String
    let previousHash: String

    public init(_ record: EvidenceRecord) {
        id = record.id.uuidString.lowercased()
        seq = record.seq
        occurredAt = EvidenceTime.rfc3339(micros: record.occurredAtMicros)
        controlId = record.controlId
        category = record.category
        eventType = record.eventType
        eventOutcome = record.eventOutcome
        entityType = record.entityType
        entityId = record.entityId
        requestId = record.requestId
        details = (try? JSONDecoder().decode(JSONValue.self, from: Data(record.details.utf8))) ?? .string(record.details)
        contentHash = record.contentHash
        previousHash = record.previousHash
    }

}

/// `{records, valid, firstInvalidId, …}`.
public struct VerificationBody: Encodable, Sendable {
    let records: Int64
    let valid: Bool
    @Null var firstInvalidId: String?
    @Null var firstInvalidSeq: Int64?
    @Null var failure: String?
    let headSeq: Int64
    let headHash: String

    public init(_ result: EvidenceLog.Verification) {
        records = result.records
        valid = result.valid
        firstInvalidId = result.firstInvalidId
        firstInvalidSeq = result.firstInvalidSeq
        failure = result.failure
        headSeq = result.headSeq
        headHash = result.headHash
    }

}
