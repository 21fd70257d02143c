import BallastTestSupport
import ChaosRunner
import Foundation
import Testing

/// `ballast chaos run`'s scenarios against a whole app on a real socket, on each store: every scenario sets up,
/// runs under its faults, checks its invariants through the API, and leaves the chaos settings as it found them.
@Suite("Chaos runner", .serialized, .timeLimit(.minutes(10)))
struct ChaosRunnerTests {
    static let environment = ["APP_ENV": "staging", "MIGRATE_ON_START": "true"]

    @Test(arguments: TestStores.kinds, ScenarioName.allCases)
    func scenarioHoldsItsInvariants(kind: StoreKind, scenario: ScenarioName) async throws {
        try await TestApp.run(kind, environment: Self.environment, shadow: .fresh, live: true) { app in
            let port = try #require(app.port)
            let before = try await app.request(.get, "/api/admin/chaos", token: TestApp.adminToken)
            var options = RunOptions(target: "http://127.0.0.1:\(port)", token: TestApp.adminToken, scenario: .one(scenario))
            // A fixed number of operations (the time box only as a bound), so a loaded machine runs the same workload.
            options.concurrency = 8
            options.durationSeconds = 240
            options.operationLimit = 150
            options.seed = "test-\(scenario.rawValue)"
            options.failRate = 0.3
            // Outcomes are checked here, not latency: on a loaded machine a request may wait its turn for long.
            options.requestTimeoutSeconds = 60
            let report = await ChaosRun(options).run()

            let failed = report.checks.filter { $0.status != .passed }
            #expect(failed.isEmpty, "\(failed.map { "\($0.invariant) \($0.name): \($0.detail ?? "")" })")
            #expect(report.outcome == .passed, "\(report.scenarioSummary) \(report.message ?? "")")
            #expect(report.exitCode == 0)
            let run = try #require(report.scenarios.first { $0.name == scenario.rawValue })
            #expect(run.operations >= 100, "the workload ran: \(run.operations) requests")
            #expect(run.stoppedEarly == nil)
            #expect(run.errors == 0)
            #expect(run.checks.count >= 3)
            if scenario == .shadowWrite {
                // Faults at rate 0.3 leave discrepancies, so the evidence comparison had something to compare.
                let evidence = run.checks.first { $0.name == "one evidence record per discrepancy found" }
                #expect((evidence?.figures.first { $0.name == "discrepancies" }?.value.int ?? 0) > 0)
            }
            // Every check of the target itself ran too: the evidence chain and the server's own auditor.
            #expect(report.checks.filter { $0.scenario == "target" }.map(\.invariant) == ["I7", "I1-I3"])
            if run.chaos != nil {
                #expect(run.faultsInjected > 0, "faults were injected at rate 0.3")
                #expect(report.faultWindows.map(\.scenario) == [scenario.rawValue])
                #expect(report.chaosRestored == true)
            }
            // The chaos settings are back as they were (only the version and the reason moved on).
            let after = try await app.request(.get, "/api/admin/chaos", token: TestApp.adminToken)
            for field in ["enabled", "failRate", "scope", "seed", "latencyMilliseconds"] {
                #expect("\(after.json[field] ?? "nil")" == "\(before.json[field] ?? "nil")", "chaos \(field) restored")
            }
            // The reports are written from the same figures.
            let json = try JSONSerialization.jsonObject(with: try report.jsonData()) as? [String: Any]
            #expect((json?["scenarios"] as? [Any])?.count == 2)
            let html = HTMLReport.render(report)
            #expect(html.contains("<svg") && html.contains(scenario.rawValue) && !html.contains("<script") && !html.contains("http-equiv"))
        }
    }

    @Test(arguments: TestStores.kinds)
    func aTimeBoxedSettingFoundAtTheStartKeepsItsEnd(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: Self.environment, shadow: .fresh, live: true) { app in
            let port = try #require(app.port)
            let set = try await app.request(.put, "/api/admin/chaos", token: TestApp.adminToken,
                                            body: #"{"enabled": true, "failRate": 0.05, "durationSeconds": 600, "seed": "operator"}"#)
            let expiresBefore = try #require(set.json["expiresAt"] as? String)
            var options = RunOptions(target: "http://127.0.0.1:\(port)", token: TestApp.adminToken, scenario: .one(.shadowWrite))
            // At least four seconds pass between reading the settings and restoring them.
            options.concurrency = 4
            options.durationSeconds = 4
            let report = await ChaosRun(options).run()
            #expect(report.outcome == .passed, "\(report.table)")
            let after = try await app.request(.get, "/api/admin/chaos", token: TestApp.adminToken)
            #expect(after.json["enabled"] as? Bool == true)
            #expect(after.json["seed"] as? String == "operator")
            #expect(after.json["failRate"] as? Double == 0.05)
            // The box ends when it was going to end, not 600 s after the restore. The API takes whole seconds and the
            // restore is itself a request, so on a loaded machine the end can move by a second or two, never by minutes.
            let before = try #require(ISO8601DateFormatter.fractional.date(from: expiresBefore))
            let restored = try #require(ISO8601DateFormatter.fractional.date(from: after.json["expiresAt"] as? String ?? ""))
            #expect(abs(restored.timeIntervalSince(before)) < 10, "expiresAt \(expiresBefore) → \(after.json["expiresAt"] ?? "nil")")
        }
    }

    @Test
    func aProductionTargetIsRefusedBeforeAnythingRuns() async throws {
        try await TestApp.run(.sqlite, environment: ["APP_ENV": "production", "MIGRATE_ON_START": "true"], live: true) { app in
            let port = try #require(app.port)
            let report = await ChaosRun(RunOptions(target: "http://127.0.0.1:\(port)", token: TestApp.adminToken, scenario: .all)).run()
            #expect(report.outcome == .refused)
            #expect(report.exitCode == 3)
            #expect(report.message?.contains("production") == true)
            #expect(report.scenarios.isEmpty)
            let users = try await app.request(.get, "/api/admin/evidence?eventType=ADMIN_ACTION", token: TestApp.adminToken)
            #expect((users.json["items"] as? [Any])?.isEmpty == true, "nothing was created")
        }
    }

    @Test
    func aMemberTokenIsRefused() async throws {
        try await TestApp.run(.sqlite, environment: Self.environment, live: true) { app in
            let port = try #require(app.port)
            let member = try await app.createUser()
            let report = await ChaosRun(RunOptions(target: "http://127.0.0.1:\(port)", token: member, scenario: .one(.bank))).run()
            #expect(report.outcome == .refused)
            #expect(report.message?.contains("admin") == true)
        }
    }

    @Test
    func theTargetsClockIsReadFromItsDateHeader() {
        // A target an hour behind this machine: its times are compared on its own clock, not this one's.
        let sentAt = Date(timeIntervalSince1970: 1_795_000_000)
        let clock = TargetClock(dateHeader: "Wed, 18 Nov 2026 10:06:40 GMT", sentAt: sentAt, latencySeconds: 0.2)
        #expect(abs(clock.offset - (1_794_996_400 + 0.5 - (1_795_000_000 + 0.1))) < 0.001)
        #expect(abs(clock.now.timeIntervalSinceNow + 3599.6) < 1)
        #expect(TargetClock(dateHeader: nil, sentAt: sentAt, latencySeconds: 0.2).offset == 0)
        #expect(TargetClock(dateHeader: "yesterday", sentAt: sentAt, latencySeconds: 0.2).offset == 0)
    }

    @Test
    func theSeedFixesTheSequenceOfOperations() {
        func draws(_ parts: String...) -> [UInt64] {
            var random = SeededRandom(parts.joined(separator: "/"))
            return (0..<8).map { _ in random.next() }
        }
        #expect(draws("seed-1", "bank", "17") == draws("seed-1", "bank", "17"))
        #expect(draws("seed-1", "bank", "17") != draws("seed-1", "bank", "18"))
        #expect(draws("seed-1", "bank", "17") != draws("seed-2", "bank", "17"))
        // Fixed values: the generator must not change between releases, or old seeds stop replaying.
        var random = SeededRandom("abc", "bank", "0")
        #expect(random.next() == 16_210_171_663_215_075_964)
    }
}

extension ISO8601DateFormatter {
    /// RFC 3339 with fractional seconds, as the API writes times.
    static var fractional: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
