import BallastConfig
import BallastServer
import BallastTestSupport
import ChaosKit
import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Commerce
import NIOCore
import Storage
import Testing

@Suite("Chaos control and evidence over HTTP", .timeLimit(.minutes(10)))
struct ChaosAndEvidenceTests {
    func chaosEvidence(_ app: TestApp) async throws -> [[String: Any]] {
        let reply = try await app.request(.get, "/api/admin/evidence?eventType=CHAOS_CONFIG_CHANGED&limit=200", token: TestApp.adminToken)
        return reply.json["items"] as? [[String: Any]] ?? []
    }

    @Test(arguments: TestStores.kinds)
    func onlyAdminsReachChaosAndEvidence(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let member = try await app.createUser()
            for (method, path) in [(HTTPRequest.Method.get, "/api/admin/chaos"), (.put, "/api/admin/chaos"),
                                   (.get, "/api/admin/evidence"), (.get, "/api/admin/evidence/verify")] {
                let reply = try await app.request(method, path, token: member, body: method == .put ? #"{"enabled":true}"# : nil)
                #expect(reply.status == .forbidden, "\(method) \(path)")
            }
            #expect(app.services.injector.state.enabled == false)
        }
    }

    @Test(arguments: TestStores.kinds)
    func theKillSwitchWorksAtOnceAndLeavesEvidence(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let on = try await app.request(
                .put, "/api/admin/chaos", token: TestApp.adminToken,
                body: #"{"enabled":true,"failRate":1,"scope":"all_writes","seed":"game-day-1","reason":"drill"}"#)
            #expect(on.status == .ok, "\(on.body)")
            #expect(on.json["enabled"] as? Bool == true)
            #expect(on.json["seed"] as? String == "game-day-1")
            #expect(app.services.injector.decide(.notifyEmail)?.fires == true)
            let health = try await app.request(.get, "/health").json["chaos"] as? [String: Any]
            #expect(health?["enabled"] as? Bool == true)
            #expect(health?["seed"] as? String == "game-day-1")
            #expect(try await app.request(.get, "/metrics").body.contains("chaos_enabled 1"))

            let off = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"enabled":false}"#)
            #expect(off.json["enabled"] as? Bool == false)
            #expect(app.services.injector.decide(.notifyEmail) == nil, "no call after the switch is injected")
            #expect(try await app.request(.get, "/metrics").body.contains("chaos_enabled 0"))

            let records = try await chaosEvidence(app)
            #expect(records.count == 2)
            let first = try #require(records.first)
            #expect(first["controlId"] as? String == "CC-7.2")
            #expect(first["category"] as? String == "ProcessingIntegrity")
            let details = try #require(first["details"] as? [String: Any])
            let admin = try #require(try await app.services.users.authenticate(token: TestApp.adminToken))
            #expect(details["actor"] as? String == admin.id.description)
            #expect((details["before"] as? [String: Any])?["enabled"] as? Bool == false)
            #expect((details["after"] as? [String: Any])?["enabled"] as? Bool == true)
            #expect((details["after"] as? [String: Any])?["failRatePpm"] as? Int == 1_000_000)
            #expect(details["reason"] as? String == "drill")
            #expect(first["requestId"] as? String != nil)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aTimeBoxSwitchesInjectionOffWithoutARestart(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let on = try await app.request(
                .put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"enabled":true,"failRate":1,"durationSeconds":3}"#)
            // The answer shows the time left in the box, which a slow request has already eaten into.
            #expect((1...3).contains(on.json["durationSeconds"] as? Int ?? 0))
            let expiresAt = try #require(app.services.injector.state.expiresAt)
            // Generous box (3 s) so a loaded machine still sees it open; then wait until just after it closes.
            #expect(app.services.injector.decide(.shadowListingCreate)?.fires == true)
            try await Task.sleep(for: .milliseconds(max(0, Int(expiresAt.timeIntervalSinceNow * 1000)) + 300))
            #expect(app.services.injector.decide(.shadowListingCreate) == nil, "the box closes by itself")
            #expect((try await app.request(.get, "/health").json["chaos"] as? [String: Any])?["enabled"] as? Bool == false)

            await app.services.chaosMonitor.tick()
            #expect(app.services.injector.state.enabled == false)
            #expect(app.services.injector.state.reason == "time box expired")
            let records = try await chaosEvidence(app)
            #expect(records.count == 2)
            #expect((records.last?["details"] as? [String: Any])?["actor"] as? String == "system")
            await app.services.chaosMonitor.tick()
            #expect(try await chaosEvidence(app).count == 2, "recorded once")
        }
    }

    @Test(arguments: TestStores.kinds)
    func theSteadyStateGuardSwitchesChaosOff(kind: StoreKind) async throws {
        try await TestApp.run(kind, configure: { router in
            router.get("/api/test/fails") { _, _ -> Response in throw AppError(.serviceUnavailable, "down") }
            router.get("/api/test/works") { _, _ in Response(status: .ok) }
        }) { app in
            _ = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"enabled":true,"failRate":0.5}"#)
            for index in 0..<100 {
                _ = try await app.request(.get, index < 5 ? "/api/test/fails" : "/api/test/works", token: TestApp.adminToken)
            }
            await app.services.chaosMonitor.tick()
            let state = app.services.injector.state
            #expect(!state.enabled)
            #expect(state.reason?.contains("steady-state guard") == true)
            let health = try await app.request(.get, "/health").json["chaos"] as? [String: Any]
            #expect((health?["reason"] as? String)?.contains("steady-state guard") == true)
            #expect(try await app.metric("chaos_guard_trips_total") == 1)
            #expect(try await app.metric("chaos_enabled") == 0)
            let records = try await chaosEvidence(app)
            #expect(((records.last?["details"] as? [String: Any])?["reason"] as? String)?.contains("5xx") == true)
        }
    }

    @Test(arguments: TestStores.kinds)
    func badChaosChangesAre422AndChangeNothing(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let cases: [(String, String?)] = [
                (#"{"failRate":1.5}"#, "failRate"), (#"{"failRate":"high"}"#, "failRate"), (#"{"enabled":"yes"}"#, "enabled"),
                (#"{"scope":"everything"}"#, "scope"), (#"{"durationSeconds":0}"#, "durationSeconds"),
                (#"{"durationSeconds":1.5}"#, "durationSeconds"), (#"{"seed":""}"#, "seed"),
                (#"{"latencyMilliseconds":-1}"#, "latencyMilliseconds"), (#"{}"#, nil), (#"{"reason":"only"}"#, nil),
            ]
            for (body, field) in cases {
                let reply = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                if let field { #expect(reply.errorDetails?["field"] as? String == field, "\(body)") }
            }
            #expect(try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: "nope").status == .badRequest)
            #expect(app.services.injector.state.version == 0)
            #expect(try await chaosEvidence(app).isEmpty)
        }
    }

    @Test func enablingChaosInProductionIsRefused() async throws {
        try await TestApp.run(.sqlite, environment: ["APP_ENV": "production"]) { app in
            let reply = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"enabled":true}"#)
            #expect(reply.status == .conflict)
            #expect(reply.errorCode == "forbidden_in_production")
            #expect(app.services.injector.decide(.shadowListingCreate) == nil)
        }
    }

    @Test func theReadScopeIsRefusedInStaging() async throws {
        try await TestApp.run(.sqlite, environment: ["APP_ENV": "staging"]) { app in
            let reply = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"scope":"reads"}"#)
            #expect(reply.status == .unprocessableContent)
            #expect(reply.errorDetails?["field"] as? String == "scope")
        }
    }

    /// Two processes on one store: a change made through one reaches the other within a monitor round.
    @Test(arguments: TestStores.kinds)
    func theKillSwitchReachesEveryProcess(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let config = try AppConfig.load(environment: ["APP_ENV": "test", "SHADOW_DATABASE_URL": "none"])
            let other = AppServices(config: config, primary: app.services.primary, shadow: nil, logger: TestStores.logger)
            _ = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"enabled":true,"failRate":1}"#)
            #expect(other.injector.decide(.shadowListingCreate) == nil)
            await other.chaosMonitor.tick()
            #expect(other.injector.decide(.shadowListingCreate)?.fires == true)
            _ = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"enabled":false}"#)
            await other.chaosMonitor.tick()
            #expect(other.injector.decide(.shadowListingCreate) == nil)
        }
    }

    @Test(arguments: TestStores.kinds)
    func evidenceListsPagesAndVerifies(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            for rate in ["0.1", "0.2", "0.3"] {
                _ = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"failRate":\#(rate)}"#)
            }
            let first = try await app.request(.get, "/api/admin/evidence?limit=2", token: TestApp.adminToken)
            #expect((first.json["items"] as? [[String: Any]])?.map { $0["seq"] as? Int } == [1, 2])
            let cursor = try #require(first.json["nextCursor"] as? String)
            let second = try await app.request(.get, "/api/admin/evidence?limit=2&cursor=\(cursor)", token: TestApp.adminToken)
            #expect((second.json["items"] as? [[String: Any]])?.map { $0["seq"] as? Int } == [3])
            #expect(second.json["nextCursor"] is NSNull)
            let filtered = try await app.request(.get, "/api/admin/evidence?entityType=chaos_config&since=2020-01-01T00:00:00Z", token: TestApp.adminToken)
            #expect((filtered.json["items"] as? [Any])?.count == 3)
            let none = try await app.request(.get, "/api/admin/evidence?eventType=ADMIN_ACTION", token: TestApp.adminToken)
            #expect((none.json["items"] as? [Any])?.count == 0)

            for bad in ["limit=0", "limit=201", "limit=ten", "cursor=-4", "cursor=abc", "since=yesterday"] {
                let reply = try await app.request(.get, "/api/admin/evidence?\(bad)", token: TestApp.adminToken)
                #expect(reply.status == .unprocessableContent, "\(bad)")
            }

            let verify = try await app.request(.get, "/api/admin/evidence/verify", token: TestApp.adminToken)
            #expect(verify.json["valid"] as? Bool == true)
            #expect(verify.json["records"] as? Int == 3)
            #expect(verify.json["firstInvalidId"] is NSNull)
            let headHash = try #require(verify.json["headHash"] as? String)
            let pinned = try await app.request(.get, "/api/admin/evidence/verify?digest=3:\(headHash)", token: TestApp.adminToken)
            #expect(pinned.json["valid"] as? Bool == true)
            let wrong = String(repeating: "0", count: 64)
            let mismatch = try await app.request(.get, "/api/admin/evidence/verify?digest=2:\(wrong)", token: TestApp.adminToken)
            #expect(mismatch.json["valid"] as? Bool == false)
            #expect(try await app.request(.get, "/api/admin/evidence/verify?digest=junk", token: TestApp.adminToken).status
                    == .unprocessableContent)
            #expect(try await app.metric(#"evidence_chain_verifications_total{result="valid"}"#) == 2)
            #expect(try await app.metric(#"evidence_chain_verifications_total{result="invalid"}"#) == 1)
        }
    }
}
