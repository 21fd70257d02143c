import BallastCore
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import Hummingbird
import Marketplace

/// Background jobs and what the verifier found (SPEC §3, §7): admins only.
struct JobRoutes<Context: BallastRequestContext> {
    let runner: JobRunner
    let discrepancies: Discrepancies
    let evidence: EvidenceLog

    func register(on router: Router<Context>) {
        router.get("/api/admin/jobs") { _, context in
            _ = try context.requireAdmin()
            return try JSONResponse.make(.ok, try await runner.statuses().map(JobBody.init))
        }
        router.post("/api/admin/jobs/{name}/trigger") { request, context in
            let caller = try context.requireAdmin()
            let name = context.parameters.get("name") ?? ""
            var parameters = Job.Parameters()
            parameters.repair = try QueryInput(request).bool(JobQuery.repair) ?? false
            let actor = AuditActor(user: caller, requestId: context.requestId)
            let repair = parameters.repair
            let run = try await runner.trigger(name, parameters: parameters) { [evidence] sql in
                try await evidence.append([AdminAction.event(
                    "trigger_job", entityType: "job", entityId: name, by: actor, before: .null,
                    after: ["repair": .bool(repair)])], in: sql)
            }
            return try JSONResponse.make(.ok, JobRunBody(run))
        }
        router.get("/api/admin/discrepancies") { request, context in
            _ = try context.requireAdmin()
            let query = QueryInput(request)
            let list = try ListQuery(query, cursor: ListQuery.timeCursor)
            let status = try query.choice(JobQuery.status, as: Discrepancies.Status.self)
            let page = try await discrepancies.list(status: status, after: list.timeAndIdCursor(), limit: list.limit)
            return try JSONResponse.make(.ok, Page(items: page.records.map(DiscrepancyBody.init), nextCursor: page.next))
        }
    }
}

/// The query parameters of the job endpoints.
enum JobQuery {
    static let repair = Field.optional("repair", .boolean, summary: "verifier: copy the primary's row over the shadow's for what it finds")
    static let status = Field.optional("status", Field.choice(Discrepancies.Status.self))
    static let discrepancies = [status, ListQuery.limit, ListQuery.timeCursor]
}

struct JobBody: Encodable, Sendable {
    let name: String
    let intervalSeconds: Int
    let enabled: Bool
    let running: Bool
    @Null var lastRunAt: Date?
    @Null var lastStatus: String?
    @Null var lastDurationSeconds: Double?
    @Null var nextRunAt: Date?

    init(_ status: JobStatus) {
        name = status.name
        intervalSeconds = status.intervalSeconds
        enabled = status.enabled
        running = status.running
        lastRunAt = status.lastRunAt
        lastStatus = status.lastStatus?.rawValue
        lastDurationSeconds = status.lastDurationSeconds
        nextRunAt = status.nextRunAt
    }
}

struct JobRunBody: Encodable, Sendable {
    let name: String
    let status: String
    let durationSeconds: Double
    let result: JSONValue

    init(_ run: JobRun) {
        name = run.name
        status = run.status.rawValue
        durationSeconds = run.durationSeconds
        result = run.result
    }
}

struct DiscrepancyBody: Encodable, Sendable {
    let id: String
    let entityType: String
    let entityId: String
    let discrepancyType: String
    let fields: [String]
    let expected: Bool
    let status: String
    let detectedAt: Date
    @Null var resolvedAt: Date?
    @Null var resolution: String?

    init(_ record: DiscrepancyRecord) {
        id = record.id
        entityType = record.entityType
        entityId = record.entityId
        discrepancyType = record.discrepancyType
        fields = record.fields
        expected = record.expected
        status = record.status
        detectedAt = record.detectedAt
        resolvedAt = record.resolvedAt
        resolution = record.resolution
    }
}
