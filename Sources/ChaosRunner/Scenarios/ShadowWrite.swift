import BallastCore
import BallastWire
import Foundation
import NIOHTTP1
import Synchronization

/// Listings created, edited, deleted and read while shadow writes fail at the chosen rate. Afterwards the
/// verifier must find exactly the listings whose last shadow write failed, explain each by an injected fault,
/// and every failure must have exactly one evidence record; a repair run leaves nothing open.
final class ShadowWriteScenario: Scenario {
    let scenario = ScenarioName.shadowWrite
    let chaos: ChaosPlan? = ChaosPlan(scope: "shadow_write_only")

    private struct Latest: Sendable {
        var version: Int64
        var requestId: String
        var deleted: Bool
    }

    private struct State: Sendable {
        var owner: Member?
        var listings: [String] = []
        /// The newest acknowledged write of each listing (by version) and the request that made it.
        var latest: [String: Latest] = [:]
        var unknownWrites = 0
        /// Successes whose body is not the documented listing, and why (their effect is unknown too).
        var unreadable: [String] = []
        var failuresBefore = 0.0
        var injectedBefore = 0.0
    }

    private let state = Mutex(State())

    func prepare(_ context: ScenarioContext) async throws {
        let health = try await context.api.expect("read /health", .GET, "/health", as: HealthReport.self, token: .some(nil))
        if health.checks.shadow == "disabled" {
            throw UnexpectedReply(step: "shadow-write needs a shadow store (the target runs with SHADOW_DATABASE_URL=none)",
                                  status: 200, body: "")
        }
        let owner = try await context.createMember("shadow-owner")
        let (failures, injected) = Self.counts(try await context.api.metrics())
        state.withLock {
            $0.owner = owner
            $0.failuresBefore = failures
            $0.injectedBefore = injected
        }
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let (owner, listings) = state.withLock { ($0.owner!, $0.listings) }
        let roll = Double.random(in: 0..<1, using: &random)
        let requestId = context.key(&random, "chaos-shadow-")
        let price = Int64.random(in: 100...100_000, using: &random)
        if roll < 0.45 || listings.isEmpty {
            let reply = try await context.call(.POST, "/api/listings", token: owner.token,
                                               body: ["title": .string("chaos \(number)"), "price": .integer(price)],
                                               headers: ["X-Request-Id": requestId])
            remember(reply, requestId)
            return
        }
        let listing = listings[Int.random(in: 0..<listings.count, using: &random)]
        if roll < 0.8 {
            let reply = try await context.call(.PATCH, "/api/listings/\(listing)", token: owner.token, body: ["price": .integer(price)],
                                               headers: ["X-Request-Id": requestId], refusals: ["404"])
            remember(reply, requestId)
        } else if roll < 0.9 {
            let reply = try await context.call(.DELETE, "/api/listings/\(listing)", token: owner.token,
                                               headers: ["X-Request-Id": requestId], refusals: ["404"])
            remember(reply, requestId)
        } else {
            try await context.call(.GET, "/api/listings/\(listing)", token: owner.token, refusals: ["404"])
        }
    }

    private func remember(_ reply: Reply?, _ requestId: String) {
        state.withLock { state in
            guard let reply else { return state.unknownWrites += 1 }
            guard reply.isSuccess else { return }
            let listing: ListingBody
            do {
                listing = try reply.read(ListingBody.self)
            } catch {
                // It breaks the API's contract (its own check fails), and changed something unknown.
                state.unknownWrites += 1
                state.unreadable.append("a listing write answered \(reply.status) with a body that is not a listing: \(WireJSON.describe(error))")
                return
            }
            let id = listing.id
            if state.latest[id] == nil { state.listings.append(id) }
            if (state.latest[id]?.version ?? .min) < listing.version {
                state.latest[id] = Latest(version: listing.version, requestId: requestId, deleted: listing.deletedAt != nil)
            }
        }
    }

    /// Shadow-write failures and faults injected into shadow writes of listings, as the target counts them.
    private static func counts(_ metrics: String) -> (failures: Double, injected: Double) {
        (APIClient.sum(metrics, "shadow_write_failures_total", labels: ["entity_type": "listing"]),
         APIClient.sum(metrics, "chaos_injected_faults_total", labels: ["entity_type": "listing"]))
    }

    /// Discrepancies (open or resolved) on `ours` and their SHADOW_WRITE_DISCREPANCY records, per listing. A verifier
    /// run writes both in one transaction, so the records are read before and after the discrepancies: equal
    /// reads mean no run came in between.
    private func discrepancyEvidence(_ context: ScenarioContext, _ ours: Set<String>) async throws
        -> (found: [String: Int], recorded: [String: Int])
    {
        func perListing(_ entityIds: [String?]) -> [String: Int] {
            var counts: [String: Int] = [:]
            for case let id? in entityIds where ours.contains(id) { counts[id, default: 0] += 1 }
            return counts
        }
        let recordsPath = "/api/admin/evidence?eventType=SHADOW_WRITE_DISCREPANCY&entityType=listing&since=\(APITime.since(context.startedAt))"
        for _ in 0..<5 {
            let before = perListing(try await context.api.all("read discrepancy evidence", recordsPath, of: EvidenceBody.self).map(\.entityId))
            // Newest first: the walk ends at the first page reaching back past the scenario's start.
            let found = perListing(try await context.api.all("read discrepancies", "/api/admin/discrepancies", of: DiscrepancyBody.self) {
                $0.detectedAt < context.startedAt
            }.map(\.entityId))
            let after = perListing(try await context.api.all("read discrepancy evidence", recordsPath, of: EvidenceBody.self).map(\.entityId))
            if before == after { return (found, after) }
        }
        throw UnexpectedReply(step: "read discrepancies and their evidence at one moment", status: 200,
                              body: "verifier runs kept adding records while they were read")
    }

    private func verify(_ context: ScenarioContext, repair: Bool) async throws -> JobRunBody {
        try await context.api.triggerJob("shadow-discrepancy-verifier", query: repair ? "?repair=true" : "")
    }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        let snapshot = state.withLock { $0 }
        let ours = Set(snapshot.listings)
        let run = try await verify(context, repair: false)
        let result = run.result

        // Every shadow-write failure since the start: one record each, and one count each.
        let records = try await context.api.all(
            "read shadow failure evidence",
            "/api/admin/evidence?eventType=SHADOW_WRITE_FAILURE&entityType=listing&since=\(APITime.since(context.startedAt))",
            of: EvidenceBody.self)
        let counted = Self.counts(try await context.api.metrics())
        let failures = counted.failures - snapshot.failuresBefore
        let injected = counted.injected - snapshot.injectedBefore
        let ourRecords = records.filter { ours.contains($0.entityId ?? "") }
        let injectedRecords = records.filter { $0.details["failureType"]?.string == "injected" }.count
        var checks = [Check(
            scenario: name, invariant: "I7", name: "one evidence record per shadow-write failure",
            holds: Int(figure: failures) == records.count && Int(figure: injected) == injectedRecords,
            figures: [Figure("failures counted", Int(figure: failures)), Figure("records", records.count),
                      Figure("faults injected", Int(figure: injected)), Figure("records of injected", injectedRecords),
                      Figure("on this run's listings", ourRecords.count)],
            detail: "the target counted \(Int(figure: failures)) failures (\(Int(figure: injected)) injected) but holds \(records.count) records (\(injectedRecords) injected)")]

        // The discrepancies are exactly the listings whose newest acknowledged write failed to reach the shadow.
        var failedRequests: [String: String] = [:]
        for record in ourRecords {
            if let request = record.requestId { failedRequests[request] = record.details["failureType"]?.string ?? "?" }
        }
        // A failed delete may leave the shadow without the row at all (its create failed too), which matches a
        // deleted primary row: such listings may or may not show up.
        let lastFailed = snapshot.latest.filter { failedRequests[$0.value.requestId] != nil }
        let shouldDiffer = Set(lastFailed.filter { !$0.value.deleted }.keys)
        let mayDiffer = Set(lastFailed.filter { $0.value.deleted }.keys)
        let open = try await context.api.all("read discrepancies", "/api/admin/discrepancies?status=open", of: DiscrepancyBody.self)
            .filter { ours.contains($0.entityId) }
        let found = Set(open.map(\.entityId))
        let unexplained = open.filter { !$0.expected }
        let missed = shouldDiffer.subtracting(found)
        let extra = found.subtracting(shouldDiffer).subtracting(mayDiffer)
        var detail: [String] = []
        detail += missed.prefix(3).map { "listing \($0): its last write failed in the shadow but no discrepancy was found" }
        detail += extra.prefix(3).map { "listing \($0): a discrepancy although its last write reached the shadow" }
        detail += unexplained.prefix(3).map { "listing \($0.entityId): \($0.discrepancyType) not explained by an injected fault" }
        checks.append(Check(
            scenario: name, invariant: "I7", name: "verifier finds exactly the failed writes, all explained",
            holds: missed.isEmpty && extra.isEmpty && unexplained.isEmpty,
            figures: [Figure("listings", ours.count), Figure("last write failed", lastFailed.count), Figure("of them deletes", mayDiffer.count),
                      Figure("found", found.count),
                      Figure("unexplained", unexplained.count), Figure("verifier unexplained (all)", result["unexplained"] ?? .null)],
            detail: detail.joined(separator: "; "), undecided: snapshot.unknownWrites > 0 && unexplained.isEmpty))

        // Every discrepancy found on this run's listings (by this check's run or a scheduled one) has one record.
        let evidence = try await discrepancyEvidence(context, ours)
        let uneven = ours.filter { evidence.found[$0, default: 0] != evidence.recorded[$0, default: 0] }
        checks.append(Check(
            scenario: name, invariant: "I7", name: "one evidence record per discrepancy found",
            holds: uneven.isEmpty,
            figures: [Figure("discrepancies", evidence.found.values.reduce(0, +)), Figure("records", evidence.recorded.values.reduce(0, +)),
                      Figure("listings off", uneven.count)],
            detail: uneven.prefix(5).map { "listing \($0): \(evidence.found[$0, default: 0]) discrepancies, \(evidence.recorded[$0, default: 0]) records" }
                .joined(separator: "; ")))

        // Repair, then a clean run: nothing of ours left open.
        let repaired = try await verify(context, repair: true)
        _ = try await verify(context, repair: false)
        let left = try await context.api.all("read discrepancies", "/api/admin/discrepancies?status=open", of: DiscrepancyBody.self)
            .filter { ours.contains($0.entityId) }
        checks.append(Check(
            scenario: name, invariant: "I7", name: "repair leaves the shadow equal to the primary", holds: left.isEmpty,
            figures: [Figure("repaired", repaired.result["repaired"] ?? .null), Figure("still open", left.count)],
            detail: left.prefix(5).map { "listing \($0.entityId) still \($0.discrepancyType)" }
                .joined(separator: "; ")))
        checks.append(Check.readable(snapshot.unreadable, scenario: name))
        return checks
    }
}
