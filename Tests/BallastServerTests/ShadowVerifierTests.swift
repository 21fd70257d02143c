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
    /// Triggers the verifier through the API and answers its result.
    func verify(repair: Bool = false) async throws -> [String: Any] {
        let reply = try await request(.post, "/api/admin/jobs/shadow-discrepancy-verifier/trigger\(repair ? "?repair=true" : "")",
                                      token: TestApp.adminToken)
        guard reply.status == .ok, reply.json["status"] as? String == "succeeded",
              let result = reply.json["result"] as? [String: Any]
        else { throw AppError(.internal, "verifier run failed: \(reply.status) \(reply.body)") }
        return result
    }

    func discrepancies(_ status: String) async throws -> [[String: Any]] {
        let reply = try await request(.get, "/api/admin/discrepancies?status=\(status)&limit=200", token: TestApp.adminToken)
        return reply.json["items"] as? [[String: Any]] ?? []
    }

    func onShadow(_ query: SQLQueryString) async throws {
        try await services.shadow!.transaction { sql in try await sql.raw(query).run() }
    }
}

/// The shadow-write integration suite, part two: the discrepancy verifier finds exactly what the injected
/// faults (and anything else) left behind, records each once, and repairs on request.
@Suite("Shadow verifier", .timeLimit(.minutes(10)))
struct ShadowVerifierTests {
    static func chaos(rate: String, seed: String) -> [String: String] {
        ["CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": rate, "CHAOS_SEED": seed, "CHAOS_SCOPE": "shadow_write_only"]
    }

    /// Creates 150 listings one after another and answers the ids whose shadow write failed (by its evidence).
    static func createAndCollectFailures(_ app: TestApp) async throws -> (all: [String], failed: Set<String>, ordinals: [Int]) {
        let owner = try await app.createUser(name: "owner")
        var ids: [String] = []
        for index in 0..<150 { ids.append(try await app.createListing(token: owner, title: "Listing \(index)", price: 100 + index)) }
        try await app.settleShadow()
        let records = try await app.request(.get, "/api/admin/evidence?eventType=SHADOW_WRITE_FAILURE&limit=200",
                                            token: TestApp.adminToken).json["items"] as? [[String: Any]] ?? []
        let failed = Set(records.compactMap { $0["entityId"] as? String })
        let ordinals = records.compactMap { ($0["details"] as? [String: Any])?["ordinal"] as? Int }.sorted()
        return (ids, failed, ordinals)
    }

    @Test(arguments: TestStores.kinds)
    func atRateZeroPointThreeTheVerifierFindsExactlyTheFailedWritesAndRepairsThem(kind: StoreKind) async throws {
        let seed = "verifier-seed-7"
        let firstOrdinals = Locked<[Int]>([])
        try await TestApp.run(kind, environment: Self.chaos(rate: "0.3", seed: seed), shadow: .fresh) { app in
            let (ids, failed, ordinals) = try await Self.createAndCollectFailures(app)
            firstOrdinals.withLock { $0 = ordinals }
            #expect(failed.count > 20 && failed.count < 80, "about 30% of 150: \(failed.count)")
            #expect(try await app.shadowCount() == Int64(150 - failed.count))

            let result = try await app.verify()
            #expect(result["checked"] as? Int == 150)
            #expect(result["missingInShadow"] as? Int == failed.count)
            #expect(result["missingInPrimary"] as? Int == 0)
            #expect(result["mismatched"] as? Int == 0)
            #expect(result["expected"] as? Int == failed.count)
            #expect(result["unexplained"] as? Int == 0)
            #expect(result["injectedFaults"] as? Int == failed.count)
            #expect(result["detected"] as? Int == failed.count)
            #expect(result["newlyRecorded"] as? Int == failed.count)
            let open = try await app.discrepancies("open")
            #expect(Set(open.compactMap { $0["entityId"] as? String }) == failed)
            #expect(open.allSatisfy { $0["expected"] as? Bool == true && $0["discrepancyType"] as? String == "missing_in_shadow" })
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'SHADOW_WRITE_DISCREPANCY'")
                    == Int64(failed.count))
            #expect(try await app.metric(#"shadow_discrepancies_total{entity_type="listing",discrepancy_type="missing_in_shadow"}"#) == failed.count)
            #expect(try await app.metric(#"shadow_unexplained_discrepancies_total{entity_type="listing"}"#) == 0)
            // The gauge exists from start-up at 0; the check set it to its time.
            let stamp = try await app.request(.get, "/metrics").body.split(separator: "\n")
                .first { $0.hasPrefix(#"shadow_discrepancy_last_check_timestamp{entity_type="listing"}"#) }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect((stamp ?? 0) > 1_000_000_000, "the check recorded when it ran: \(stamp ?? 0)")

            // A second run records nothing new.
            let second = try await app.verify()
            #expect(second["newlyRecorded"] as? Int == 0)
            #expect(second["missingInShadow"] as? Int == failed.count)
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'SHADOW_WRITE_DISCREPANCY'")
                    == Int64(failed.count))

            // Repair: the shadow matches, nothing stays open, and the next run finds nothing.
            let repaired = try await app.verify(repair: true)
            #expect(repaired["repaired"] as? Int == failed.count)
            #expect(try await app.shadowCount() == 150)
            #expect(try await app.discrepancies("open").isEmpty)
            #expect(try await app.discrepancies("resolved").count == failed.count)
            let after = try await app.verify()
            #expect(after["missingInShadow"] as? Int == 0)
            #expect(after["unexplained"] as? Int == 0)
            #expect(ids.count == 150)
            #expect(try await app.request(.get, "/api/admin/evidence/verify", token: TestApp.adminToken).json["valid"] as? Bool == true)
        }
        // The same seed on a fresh pair of stores fails the same ordinals.
        try await TestApp.run(kind, environment: Self.chaos(rate: "0.3", seed: seed), shadow: .fresh) { app in
            let (_, _, ordinals) = try await Self.createAndCollectFailures(app)
            #expect(ordinals == firstOrdinals.withLock { $0 })
        }
    }

    @Test(arguments: TestStores.kinds)
    func rowsChangedBehindThePrimarysBackAreUnexplained(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            let kept = try await app.createListing(token: owner, title: "Kept", price: 500)
            let tampered = try await app.createListing(token: owner, title: "Tampered", price: 700)
            try await app.settleShadow()
            // A row only the shadow has, and a field changed in the shadow alone.
            let stray = UUID().uuidString.lowercased()
            try await app.onShadow("""
                INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros, deleted)
                VALUES (\(bind: stray), 'nobody', 'Stray', 1, 1, 1, 1, 0)
                """)
            try await app.onShadow("UPDATE listings SET price = 1 WHERE id = \(bind: tampered)")

            let result = try await app.verify()
            #expect(result["checked"] as? Int == 3)
            #expect(result["missingInPrimary"] as? Int == 1)
            #expect(result["mismatched"] as? Int == 1)
            #expect(result["unexplained"] as? Int == 2)
            #expect(result["expected"] as? Int == 0)
            let open = try await app.discrepancies("open")
            let mismatch = try #require(open.first { $0["entityId"] as? String == tampered })
            #expect(mismatch["discrepancyType"] as? String == "mismatch")
            #expect(mismatch["fields"] as? [String] == ["price"])
            #expect(open.first { $0["entityId"] as? String == stray }?["discrepancyType"] as? String == "missing_in_primary")
            #expect(try await app.metric(#"shadow_unexplained_discrepancies_total{entity_type="listing"}"#) == 2)
            #expect(!open.contains { $0["entityId"] as? String == kept })

            _ = try await app.verify(repair: true)
            #expect(try await app.shadowCount("SELECT price AS n FROM listings WHERE id = '\(unsafeRaw: tampered)'") == 700)
            #expect(try await app.shadowCount("SELECT count(*) AS n FROM listings WHERE id = '\(unsafeRaw: stray)'") == 0)
            #expect(try await app.discrepancies("open").isEmpty)
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'SHADOW_WRITE_REPAIRED'") == 2)
        }
    }

    @Test(arguments: TestStores.kinds)
    func writesLostWhileTheShadowWasBrokenAreFoundLater(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            try await app.onShadow("ALTER TABLE listings RENAME TO listings_away")
            let lost = try await app.createListing(token: owner, title: "Lost")
            try await app.settleShadow()
            #expect(try await app.failureEvidenceCount() == 1)
            #expect(try await app.metric(#"shadow_write_failures_total{entity_type="listing",operation="create",failure_type="error"}"#) == 1)
            try await app.onShadow("ALTER TABLE listings_away RENAME TO listings")
            let result = try await app.verify()
            #expect(result["missingInShadow"] as? Int == 1)
            #expect(result["unexplained"] as? Int == 1, "a real failure, not an injected one")
            #expect(try await app.discrepancies("open").first?["entityId"] as? String == lost)
        }
    }

    @Test(arguments: TestStores.kinds)
    func writesDroppedFromAFullQueueAreFoundByTheVerifier(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: ["SHADOW_QUEUE_CAPACITY": "1"], shadow: .fresh, startShadowWorkers: false) { app in
            let owner = try await app.createUser(name: "owner")
            for index in 0..<8 { _ = try await app.createListing(token: owner, title: "Item \(index)") }
            app.startShadowWorkers()
            try await app.settleShadow()
            #expect(try await app.metric(#"shadow_write_failures_total{entity_type="listing",operation="create",failure_type="dropped"}"#) == 7)
            let result = try await app.verify()
            #expect(result["missingInShadow"] as? Int == 7)
            #expect(result["unexplained"] as? Int == 7, "a drop is a real loss, not an injected fault")
        }
    }
}
