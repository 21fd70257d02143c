import BallastConfig
import ChaosKit
import Foundation
import Logging
import Synchronization
import Telemetry
import Testing

/// Collects, per point, the ordinals whose calls failed.
final class FiredOrdinals: Sendable {
    private let fired = Mutex<[String: Set<UInt64>]>([:])
    func add(_ point: FaultPoint, _ ordinal: UInt64) { fired.withLock { $0[point.name, default: []].insert(ordinal) } }
    var byPoint: [String: Set<UInt64>] { fired.withLock { $0 } }
}

func makeInjector(
    seed: String = "seed-1", rate: Double = 0.1, scope: ChaosScope = .reads, enabled: Bool = true,
    environment: AppEnvironment = .test, expiresAt: Date? = nil, latency: Int = 0, metrics: MetricsRegistry = MetricsRegistry()
) -> FaultInjector {
    FaultInjector(
        state: ChaosState(enabled: enabled, failRate: rate, scope: scope, seed: seed, expiresAt: expiresAt,
                          latencyMilliseconds: latency, abortErrorRate: 0.01),
        environment: environment, metrics: metrics.factory, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
}

@Suite("Fault injection", .timeLimit(.minutes(10)))
struct FaultInjectorTests {
    static let points: [FaultPoint] = [.shadowListingCreate, .notifyEmail, .readListing]

    /// 64 tasks hammer three points on an injector; returns the failing ordinals per point.
    static func run(_ injector: FaultInjector, callsPerTask: Int) async -> [String: Set<UInt64>] {
        let fired = FiredOrdinals()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<64 {
                group.addTask {
                    for call in 0..<callsPerTask {
                        let point = points[(task + call) % points.count]
                        if let decision = injector.decide(point), decision.fires { fired.add(point, decision.ordinal) }
                    }
                }
            }
        }
        return fired.byPoint
    }

    @Test func oneSeedGivesTheSameFailuresWhateverTheInterleaving() async {
        let first = await Self.run(makeInjector(seed: "replay-me"), callsPerTask: 300)
        let second = await Self.run(makeInjector(seed: "replay-me"), callsPerTask: 300)
        #expect(first == second)
        #expect(first.keys.count == 3)
        for point in Self.points {
            // The same answer as the pure rule for each ordinal: 64 × 300 / 3 = 6400 calls per point.
            let key = FaultDecider.key(forSeed: "replay-me")
            let expected = Set((1...6400).map(UInt64.init).filter {
                FaultDecider.fires(key: key, pointHash: FaultDecider.pointHash(point.name), ordinal: $0, rate: 0.1)
            })
            #expect(first[point.name] == expected)
        }
    }

    @Test func differentSeedsFailDifferentCalls() async {
        let first = await Self.run(makeInjector(seed: "alpha"), callsPerTask: 300)
        let second = await Self.run(makeInjector(seed: "beta"), callsPerTask: 300)
        for point in Self.points {
            #expect(first[point.name] != second[point.name])
        }
    }

    @Test func theObservedRateMatchesTheConfiguredRate() {
        let injector = makeInjector(seed: "rate", rate: 0.1)
        var failures = 0
        for _ in 0..<100_000 where injector.decide(.shadowListingCreate)?.fires == true { failures += 1 }
        #expect((9_000...11_000).contains(failures), "observed \(failures) of 100000")
    }

    @Test func rateZeroNeverFiresAndRateOneAlwaysDoes() {
        let never = makeInjector(rate: 0)
        let always = makeInjector(rate: 1)
        for _ in 0..<10_000 {
            #expect(never.decide(.notifyPush)?.fires == false)
            #expect(always.decide(.notifyPush)?.fires == true)
        }
    }

    @Test(arguments: [
        (ChaosScope.shadowWriteOnly, [true, false, false]),
        (ChaosScope.allWrites, [true, true, false]),
        (ChaosScope.reads, [true, true, true]),
    ])
    func scopesChooseWhichPointsMayFail(scope: ChaosScope, reachable: [Bool]) {
        let injector = makeInjector(rate: 1, scope: scope)
        for (point, expected) in zip([FaultPoint.shadowListingUpdate, .shippingQuote, .readProduct], reachable) {
            #expect((injector.decide(point)?.fires ?? false) == expected, "\(scope) \(point)")
        }
    }

    @Test func disabledInjectionNeverFiresNorCounts() {
        let injector = makeInjector(rate: 1, enabled: false)
        #expect(injector.decide(.shadowListingCreate) == nil)
    }

    @Test func theKillSwitchActsOnTheNextCall() {
        let injector = makeInjector(rate: 1)
        #expect(injector.decide(.notifyEmail)?.fires == true)
        var off = injector.state
        off.enabled = false
        injector.apply(off)
        #expect(injector.decide(.notifyEmail) == nil)
    }

    @Test func theTimeBoxEndsInjectionByItself() async throws {
        let injector = makeInjector(rate: 1, expiresAt: Date().addingTimeInterval(0.3))
        #expect(injector.decide(.notifyEmail)?.fires == true)
        #expect(!injector.isPastTimeBox)
        try await Task.sleep(for: .milliseconds(400))
        #expect(injector.decide(.notifyEmail) == nil)
        #expect(injector.isPastTimeBox)
        #expect(!injector.state.isLive())
    }

    @Test func productionNeverInjects() {
        let injector = makeInjector(rate: 1, enabled: false, environment: .production)
        var on = injector.state
        on.enabled = true
        injector.apply(on)
        #expect(injector.decide(.shadowListingCreate) == nil)
        #expect(!injector.state.enabled)
    }

    @Test func aStrikeThrowsCountsLogsAndIsRemembered() async throws {
        let metrics = MetricsRegistry()
        let injector = makeInjector(rate: 1, scope: .shadowWriteOnly, metrics: metrics)
        await #expect(throws: InjectedFault(point: "shadow.listing.create", ordinal: 1)) {
            try await injector.strike(.shadowListingCreate, entityId: "listing-1", requestId: "req-1")
        }
        // Out of scope: nothing happens.
        try await injector.strike(.notifyEmail)
        let remembered = injector.injectedFaults()
        #expect(remembered.count == 1)
        #expect(remembered.first?.entityId == "listing-1")
        #expect(remembered.first?.requestId == "req-1")
        #expect(metrics.render().contains(#"chaos_injected_faults_total{entity_type="listing",operation="create"} 1"#))
        #expect(metrics.render().contains("chaos_enabled 1"))
    }

    @Test func withLatencyAFaultIsADelayNotAnError() async throws {
        let injector = makeInjector(rate: 1, latency: 20)
        try await injector.strike(.shippingQuote)
        #expect(injector.injectedFaults().count == 1)
    }
}

@Suite("Run-time changes", .timeLimit(.minutes(10)))
struct ChaosUpdateTests {
    let base = ChaosState(enabled: false, failRate: 0, scope: .shadowWriteOnly, seed: "s", expiresAt: nil,
                          latencyMilliseconds: 0, abortErrorRate: 0.01, version: 4)

    @Test func anUpdateChangesOnlyWhatItNames() throws {
        let now = Date()
        let next = try ChaosUpdate(enabled: true, failRate: 0.5, durationSeconds: .some(2), reason: "game day")
            .applied(to: base, environment: .staging, now: now)
        #expect(next.enabled && next.failRate == 0.5 && next.scope == .shadowWriteOnly && next.seed == "s")
        #expect(next.expiresAt == now.addingTimeInterval(2))
        #expect(next.version == 5)
        #expect(next.reason == "game day")
        let cleared = try ChaosUpdate(durationSeconds: .some(nil)).applied(to: next, environment: .staging, now: now)
        #expect(cleared.expiresAt == nil)
    }

    @Test func enablingInProductionIsRefused() {
        #expect(throws: ChaosUpdate.Refusal.forbiddenInProduction) {
            try ChaosUpdate(enabled: true).applied(to: base, environment: .production)
        }
    }

    @Test(arguments: [AppEnvironment.staging, .production])
    func theReadScopeIsRefusedOutsideDevelopmentAndTest(environment: AppEnvironment) {
        #expect(throws: ChaosUpdate.Refusal.self) {
            try ChaosUpdate(scope: .reads).applied(to: base, environment: environment)
        }
    }

    @Test func badValuesAreRefusedNamingTheField() {
        let cases: [(ChaosUpdate, String)] = [
            (ChaosUpdate(failRate: 1.5), "failRate"), (ChaosUpdate(failRate: -0.1), "failRate"),
            (ChaosUpdate(failRate: .nan), "failRate"), (ChaosUpdate(seed: ""), "seed"),
            (ChaosUpdate(durationSeconds: .some(0)), "durationSeconds"),
            (ChaosUpdate(latencyMilliseconds: 60_001), "latencyMilliseconds"),
        ]
        for (update, field) in cases {
            do {
                _ = try update.applied(to: base, environment: .test)
                Issue.record("accepted \(update)")
            } catch {
                guard case .invalid(let named, _) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(named == field)
            }
        }
    }
}

@Suite("Steady-state guard and failpoints", .timeLimit(.minutes(10)))
struct GuardAndFailpointTests {
    @Test func theGuardNeedsEnoughRequestsAndMoreThanTheAbortRate() {
        let now = Date()
        let steady = SteadyStateGuard()
        for _ in 0..<99 { steady.record(serverError: true, at: now) }
        #expect(steady.tripReason(abortErrorRate: 0.01, at: now) == nil, "99 requests are too few to judge")

        let exactlyAtRate = SteadyStateGuard()
        for index in 0..<100 { exactlyAtRate.record(serverError: index == 0, at: now) }
        #expect(exactlyAtRate.tripReason(abortErrorRate: 0.01, at: now) == nil, "1% is not more than 1%")

        let over = SteadyStateGuard()
        for index in 0..<100 { over.record(serverError: index < 2, at: now) }
        let reason = over.tripReason(abortErrorRate: 0.01, at: now)
        #expect(reason?.contains("2 of 100") == true)
    }

    @Test func theGuardForgetsRequestsOlderThanAMinute() {
        let start = Date()
        let steady = SteadyStateGuard()
        for _ in 0..<200 { steady.record(serverError: true, at: start) }
        #expect(steady.window(at: start).total == 200)
        #expect(steady.window(at: start.addingTimeInterval(61)).total == 0)
        #expect(steady.tripReason(abortErrorRate: 0.01, at: start.addingTimeInterval(61)) == nil)
    }

    @Test func failpointsFireAsArmed() throws {
        let failpoints = Failpoints(environment: .test)
        try failpoints.hit("wallet.debit.after_balance_update")
        try failpoints.arm("wallet.debit.after_balance_update", .once)
        #expect(throws: Failpoints.Triggered(name: "wallet.debit.after_balance_update")) {
            try failpoints.hit("wallet.debit.after_balance_update")
        }
        try failpoints.hit("wallet.debit.after_balance_update")
        try failpoints.arm("order.after_stock", .always)
        for _ in 0..<3 { #expect(throws: Failpoints.Triggered.self) { try failpoints.hit("order.after_stock") } }
        try failpoints.hit("other.point")
        failpoints.disarm("order.after_stock")
        try failpoints.hit("order.after_stock")
    }

    @Test(arguments: [AppEnvironment.development, .staging, .production])
    func failpointsCannotBeArmedOutsideTests(environment: AppEnvironment) {
        let failpoints = Failpoints(environment: environment)
        #expect(throws: Failpoints.ArmingForbidden.self) { try failpoints.arm("anything") }
    }
}
