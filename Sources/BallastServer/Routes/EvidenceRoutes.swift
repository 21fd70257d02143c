import BallastCore
import BallastWire
import Commerce
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore

/// `GET /api/admin/evidence` (filtered, paginated, chain order) and `GET /api/admin/evidence/verify`.
struct EvidenceRoutes<Context: BallastRequestContext> {
    let evidence: EvidenceLog
    /// Where each verification's result is counted (`evidence_chain_verifications_total{result}`).
    let metrics: any MetricsFactory

    func register(on router: Router<Context>) {
        router.get("/api/admin/evidence") { request, context in
            _ = try context.requireAdmin()
            let query = QueryInput(request)
            let list = try ListQuery(query, cursor: ListQuery.sequenceCursor)
            let filter = EvidenceLog.Filter(
                eventType: try query.text(EvidenceQuery.eventType), entityType: try query.text(EvidenceQuery.entityType),
                entityId: try query.text(EvidenceQuery.entityId), sinceMicros: try query.micros(EvidenceQuery.since))
            let page = try await evidence.list(filter, afterSeq: list.sequenceCursor() ?? 0, limit: list.limit)
            return try JSONResponse.make(.ok, Page(items: page.records.map(EvidenceBody.init), nextCursor: page.nextSeq.map { String($0) }))
        }
        router.get("/api/admin/evidence/verify") { request, context in
            _ = try context.requireAdmin()
            let digest = try QueryInput(request).text(EvidenceQuery.digest).flatMap(EvidenceDigest.init)
            let result = try await evidence.verify(digest: digest)
            Counter(label: "evidence_chain_verifications_total", dimensions: [("result", result.valid ? "valid" : "invalid")],
                    factory: metrics).increment()
            return try JSONResponse.make(.ok, VerificationBody(result))
        }
    }

}

/// The query parameters of the evidence endpoints.
enum EvidenceQuery {
    static let eventType = Field.optional("eventType", .text(.printable(max: 200)))
    static let entityType = Field.optional("entityType", .text(.printable(max: 200)))
    static let entityId = Field.optional("entityId", .text(.printable(max: 200)))
    static let since = Field.optional("since", .dateTime, summary: "records that occurred at or after this time")
    static let digest = Field.optional("digest", .text(TextFormat.evidenceDigest.rule(maxScalars: 83)),
                                       summary: "SEQ:HASH from `ballast evidence digest`")
    static let list = [eventType, entityType, entityId, since, ListQuery.limit, ListQuery.sequenceCursor]
}
