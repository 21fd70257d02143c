import BallastServer
import BallastTestSupport
import DomainValues
import Foundation
import HTTPTypes
import Commerce
import SQLKit
import Storage
import Testing

extension TestApp {
    func createListing(token: String, title: String = "Lamp", price: Int = 2500) async throws -> String {
        let reply = try await request(.post, "/api/listings", token: token, body: #"{"title":"\#(title)","price":\#(price)}"#)
        guard reply.status == .created, let id = reply.json["id"] as? String else {
            throw AppError(.internal, "could not create a listing: \(reply.status) \(reply.body)")
        }
        return id
    }

    /// Waits for the shadow queue to be applied and queued evidence to be written.
    func settleShadow() async throws {
        await services.shadowWriter?.drain()
        try await services.evidenceAppender.flush()
    }

    func shadowCount(_ query: SQLQueryString = "SELECT count(*) AS n FROM listings WHERE deleted = 0") async throws -> Int64 {
        try await services.shadow!.read { sql in try await sql.raw(query).first()!.decode(column: "n", as: Int64.self) }
    }

    /// The value of one Prometheus series, written `name{a="x",b="y"}` in any label order (0 when absent).
    func metric(_ series: String) async throws -> Int {
        func parse(_ text: Substring) -> (String, Set<Substring>) {
            guard let brace = text.firstIndex(of: "{") else { return (String(text), []) }
            let labels = text[text.index(after: brace)..<(text.lastIndex(of: "}") ?? text.endIndex)]
            return (String(text[..<brace]), Set(labels.split(separator: ",")))
        }
        let wanted = parse(Substring(series))
        let body = try await request(.get, "/metrics").body
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let found = parse(line[..<space])
            if found.0 == wanted.0, found.1 == wanted.1 { return Int(Double(line[line.index(after: space)...]) ?? 0) }
        }
        return 0
    }

    func failureEvidenceCount() async throws -> Int64 {
        try await integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'SHADOW_WRITE_FAILURE'")
    }
}

/// The shadow-write integration suite, part one: the writer. Primary writes never wait for or fail because of
/// the shadow; every shadow failure is one log line, one metric count and one evidence record.
@Suite("Shadow writes", .timeLimit(.minutes(10)))
struct ShadowWriteTests {
    static let chaosAtRateOne = [
        "CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "1", "CHAOS_SEED": "shadow-suite", "CHAOS_SCOPE": "shadow_write_only",
    ]

    @Test(arguments: TestStores.kinds)
    func listingsAreMirroredWithTheirVersions(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            let listing = try await app.createListing(token: owner, title: "Desk", price: 9900)
            let edited = try await app.request(.patch, "/api/listings/\(listing)", token: owner, body: #"{"price":8800}"#)
            #expect(edited.json["version"] as? Int == 2)
            #expect(edited.json["title"] as? String == "Desk")
            let gone = try await app.createListing(token: owner, title: "Chair")
            let deleted = try await app.request(.delete, "/api/listings/\(gone)", token: owner)
            #expect(deleted.status == .ok)
            #expect(deleted.json["deletedAt"] as? String != nil)
            #expect(try await app.request(.get, "/api/listings/\(gone)", token: owner).status == .notFound)
            #expect(try await app.request(.delete, "/api/listings/\(gone)", token: owner).status == .notFound)
            // Another member may read but not change it.
            let other = try await app.createUser(name: "other")
            #expect(try await app.request(.get, "/api/listings/\(listing)", token: other).json["price"] as? Int == 8800)
            #expect(try await app.request(.patch, "/api/listings/\(listing)", token: other, body: #"{"price":1}"#).status == .notFound)
            #expect(try await app.request(.delete, "/api/listings/\(listing)", token: other).status == .notFound)
            for body in [#"{"title":"","price":5}"#, #"{"title":"x","price":0}"#, #"{"title":"x","price":1.5}"#, #"{"price":5}"#] {
                #expect(try await app.request(.post, "/api/listings", token: owner, body: body).status == .unprocessableContent, "\(body)")
            }
            #expect(try await app.request(.patch, "/api/listings/\(listing)", token: owner, body: #"{"owner":"x"}"#).status == .unprocessableContent)

            try await app.settleShadow()
            #expect(try await app.shadowCount("SELECT price AS n FROM listings WHERE id = '\(unsafeRaw: listing)'") == 8800)
            #expect(try await app.shadowCount("SELECT version AS n FROM listings WHERE id = '\(unsafeRaw: listing)'") == 2)
            #expect(try await app.shadowCount("SELECT deleted AS n FROM listings WHERE id = '\(unsafeRaw: gone)'") == 1)
            #expect(try await app.shadowCount("SELECT version AS n FROM listings WHERE id = '\(unsafeRaw: gone)'") == 2)
            #expect(try await app.metric(#"shadow_write_successes_total{entity_type="listing",operation="create"}"#) == 2)
            #expect(try await app.metric(#"shadow_write_successes_total{entity_type="listing",operation="update"}"#) == 1)
            #expect(try await app.metric(#"shadow_write_successes_total{entity_type="listing",operation="delete"}"#) == 1)
            #expect(try await app.failureEvidenceCount() == 0)
            let page = try await app.request(.get, "/api/listings?limit=1", token: owner)
            #expect((page.json["items"] as? [[String: Any]])?.first?["id"] as? String == listing)
            #expect(page.json["nextCursor"] is NSNull)
        }
    }

    @Test(arguments: TestStores.kinds)
    func atRateOneEveryShadowWriteFailsAndEveryPrimaryWriteSucceeds(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: Self.chaosAtRateOne, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            var ids: [String] = []
            for index in 0..<10 { ids.append(try await app.createListing(token: owner, title: "Item \(index)")) }
            for id in ids.prefix(5) {
                #expect(try await app.request(.patch, "/api/listings/\(id)", token: owner, body: #"{"title":"Renamed"}"#).status == .ok)
            }
            for id in ids.suffix(3) {
                #expect(try await app.request(.delete, "/api/listings/\(id)", token: owner).status == .ok)
            }
            try await app.settleShadow()
            #expect(try await app.integer("SELECT count(*) AS n FROM listings") == 10)
            #expect(try await app.integer("SELECT count(*) AS n FROM listings WHERE deleted_at_micros IS NOT NULL") == 3)
            #expect(try await app.shadowCount("SELECT count(*) AS n FROM listings") == 0)
            // 18 failures: 18 evidence records, 18 counts, 18 log lines.
            #expect(try await app.failureEvidenceCount() == 18)
            #expect(try await app.metric(#"shadow_write_failures_total{entity_type="listing",failure_type="injected",operation="create"}"#) == 10)
            #expect(try await app.metric(#"shadow_write_failures_total{entity_type="listing",failure_type="injected",operation="update"}"#) == 5)
            #expect(try await app.metric(#"shadow_write_failures_total{entity_type="listing",failure_type="injected",operation="delete"}"#) == 3)
            #expect(try await app.metric(#"chaos_injected_faults_total{entity_type="listing",operation="create"}"#) == 10)
            #expect(app.logSink.lines.filter { $0.contains(#""message":"shadow write failed""#) }.count == 18)
            let record = try #require(try await app.request(
                .get, "/api/admin/evidence?eventType=SHADOW_WRITE_FAILURE&entityId=\(ids[0])", token: TestApp.adminToken
            ).json["items"] as? [[String: Any]])
            #expect(record.count == 2, "create and update of the first listing")
            let details = try #require(record.first?["details"] as? [String: Any])
            #expect(details["failureType"] as? String == "injected")
            #expect(details["point"] as? String == "shadow.listing.create")
            #expect(details["ordinal"] as? Int == 1)
            #expect(record.first?["controlId"] as? String == "CC-7.2")
            #expect(record.first?["requestId"] as? String != nil)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aSlowShadowNeverHoldsTheResponse(kind: StoreKind) async throws {
        var environment = Self.chaosAtRateOne
        environment["CHAOS_LATENCY_MS"] = "4000"
        try await TestApp.run(kind, environment: environment, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            let listing = try await app.createListing(token: owner)
            // Answered while the shadow write is still held by its delay (4 s; the issue asks for 2 s, longer here
            // so a loaded machine cannot reach the next line after the delay is over).
            #expect(try await app.shadowCount() == 0)
            #expect(try await app.integer("SELECT count(*) AS n FROM listings WHERE id = \(bind: listing)") == 1)
            try await app.settleShadow()
            #expect(try await app.shadowCount() == 1)
            #expect(try await app.failureEvidenceCount() == 0)
            #expect(try await app.metric(#"chaos_injected_faults_total{entity_type="listing",operation="create"}"#) == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func anUnreachableShadowLeavesThePrimaryFineAndHealthDegraded(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .unreachable) { app in
            let health = try await app.request(.get, "/health")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "degraded")
            #expect((health.json["checks"] as? [String: Any])?["shadow"] as? String == "down")
            let owner = try await app.createUser(name: "owner")
            let listing = try await app.createListing(token: owner)
            #expect(try await app.request(.get, "/api/listings/\(listing)", token: owner).status == .ok)
            try await app.settleShadow()
            #expect(try await app.failureEvidenceCount() == 1)
            let failed = try await app.metric(#"shadow_write_failures_total{entity_type="listing",failure_type="error",operation="create"}"#)
                + app.metric(#"shadow_write_failures_total{entity_type="listing",failure_type="timeout",operation="create"}"#)
            #expect(failed == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aFullQueueDropsAndCountsWhatItCannotKeep(kind: StoreKind) async throws {
        // The workers start only after the writes, so the queue (2) fills deterministically.
        try await TestApp.run(kind, environment: ["SHADOW_QUEUE_CAPACITY": "2"], shadow: .fresh, startShadowWorkers: false) { app in
            let owner = try await app.createUser(name: "owner")
            for index in 0..<10 { _ = try await app.createListing(token: owner, title: "Item \(index)") }
            #expect(app.services.shadowWriter?.pending == 2)
            app.startShadowWorkers()
            try await app.settleShadow()
            #expect(try await app.metric(#"shadow_write_failures_total{entity_type="listing",failure_type="dropped",operation="create"}"#) == 8)
            #expect(try await app.shadowCount() == 2)
            #expect(try await app.failureEvidenceCount() == 8)
            #expect(app.logSink.lines.filter { $0.contains(#""failureType":"dropped""#) }.count == 8)
        }
    }
}
