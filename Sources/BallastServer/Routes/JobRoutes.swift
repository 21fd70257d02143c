import BallastCore
import BallastWire
import Commerce
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import Hummingbird
import Operations

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
