import BallastCore
import BallastWire
import Foundation
import NIOHTTP1
import Synchronization

/// What `ballast chaos run` was asked to do.
public struct RunOptions: Sendable {
    public var target: String
    public var token: String
    public var scenario: ScenarioChoice
    public var concurrency: Int = 16
    /// The whole experiment's time box; `all` shares it between its scenarios.
    public var durationSeconds: Double = 30
    public var seed: String?
    public var failRate: Double = 0.2
    /// At most this many operations per scenario (the time box still applies); nil: as many as fit.
    public var operationLimit: Int?
    /// A request not answered within this many seconds counts as unanswered.
    public var requestTimeoutSeconds: Int64 = 10

    /// What `ballast chaos run` accepts for each option.
    public enum Limits {
        public static let concurrency = 1...512
        public static let durationSeconds: ClosedRange<Double> = 1...86_400
        public static let requestTimeoutSeconds: ClosedRange<Int64> = 1...600
        /// Characters in `--seed`.
        public static let seedLength = 200
    }

    public init(target: String, token: String, scenario: ScenarioChoice) {
        self.target = target
        self.token = token
        self.scenario = scenario
    }
}

/// The scenarios, by the names `--scenario` accepts, in the order `all` runs them.
public enum ScenarioName: String, Sendable, CaseIterable {
    case walletConcurrency = "wallet-concurrency"
    case bank
    case inventoryConcurrency = "inventory-concurrency"
    case adminSafety = "admin-safety"
    case externalServices = "external-services"
    case shadowWrite = "shadow-write"
    case poolExhaustion = "pool-exhaustion"
}

/// What `--scenario` asks for: one scenario, or all of them in order.
public enum ScenarioChoice: Sendable, Equatable, CustomStringConvertible {
    case all
    case one(ScenarioName)

    /// `all` or a scenario's name; nil for anything else.
    public init?(_ text: String) {
        if text == "all" {
            self = .all
        } else if let name = ScenarioName(rawValue: text) {
            self = .one(name)
        } else {
            return nil
        }
    }

    /// What `--scenario` accepts, for help and error messages.
    public static var accepted: String { ScenarioName.allCases.map(\.rawValue).joined(separator: ", ") + " or all" }

    public var scenarios: [ScenarioName] {
        switch self {
        case .all: ScenarioName.allCases
        case .one(let name): [name]
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .one(let name): name.rawValue
        }
    }
}

/// Why a workload stopped before its time was up.
enum StopReason: Sendable, Equatable, CustomStringConvertible {
    /// An operation could not be carried out at all (not an error answer: those are counted).
    case operationFailed(String)
    /// The target's chaos was switched off under the run (its steady-state guard, or an operator), and why.
    case chaosSwitchedOff(String)
    /// Three looks at the target in a row got no healthy answer: the run goes no further.
    case targetSilent
    /// The run was cancelled (Ctrl-C).
    case interrupted

    var description: String {
        switch self {
        case .operationFailed(let why): "an operation failed: \(why)"
        case .chaosSwitchedOff(let why): "the target switched chaos off: \(why)"
        case .targetSilent: "target stopped answering"
        case .interrupted: "interrupted"
        }
    }
}

/// One chaos experiment against a live deployment: safety checks, then each scenario's set-up, workload under
/// fault injection and invariant checks, with the target's chaos settings restored at the end.
public final class ChaosRun: Sendable {
    public typealias Progress = @Sendable (String) -> Void

    let options: RunOptions
    let seed: String
    let api: APIClient
    let timeline = Timeline()
    let progress: Progress
    private let log: Progress
    /// What preflight learned of the target: the chaos settings found at the start (restored after each
    /// scenario) and its clock. Nil until read.
    private let target = Mutex<(chaos: ChaosBody, clock: TargetClock)?>(nil)
    private let windows = Mutex<[FaultWindow]>([])

    /// - Parameters: progress: receives the refreshed progress line; log: receives lines to print as they happen.
    public init(_ options: RunOptions, progress: @escaping Progress = { _ in }, log: @escaping Progress = { _ in }) {
        self.options = options
        seed = options.seed ?? String(format: "%08x", UInt32.random(in: .min ... .max))
        api = APIClient(baseURL: options.target, adminToken: options.token, connections: options.concurrency * 2 + 4,
                        timeoutSeconds: options.requestTimeoutSeconds)
        self.progress = progress
        self.log = log
    }

    /// Runs the experiment. Cancelling the task (Ctrl-C) stops the workload, restores the chaos settings and
    /// answers an interrupted report.
    public func run() async -> RunReport {
        let report = await execute()
        let api = self.api
        await Task.detached { await api.shutdown() }.value
        return report
    }

    /// Seconds taken off a scenario's start for `since=` filters: the target's clock is known to about a second.
    static let clockMargin: TimeInterval = 2

    private func execute() async -> RunReport {
        var report = RunReport(
            target: options.target, seed: seed, concurrency: options.concurrency, durationSeconds: options.durationSeconds,
            failRate: options.failRate, startedAt: Date(), finishedAt: Date(), outcome: .passed, scenarios: [], timeline: [],
            faultWindows: [])
        do {
            try await preflight(&report)
        } catch {
            report.outcome = .refused
            report.message = "\(error)"
            report.finishedAt = Date()
            return report
        }
        let names = options.scenario.scenarios
        let share = options.durationSeconds / Double(names.count)
        let runTag = String(seed.prefix(8)) + "-" + String(UInt32.random(in: .min ... .max), radix: 36)
        log("chaos run against \(options.target) (\(report.environment ?? "?"), version \(report.targetVersion ?? "?")): "
            + "scenario \(options.scenario), seed \(seed), concurrency \(options.concurrency), \(Int(options.durationSeconds)) s, fail rate \(options.failRate)")
        let clock = target.withLock { $0?.clock } ?? TargetClock()
        var targetSilent = false
        for name in names {
            if Task.isCancelled { break }
            let scenario = Self.make(name)
            let context = ScenarioContext(api: api, scenario: name.rawValue, seed: seed, runTag: runTag, concurrency: options.concurrency,
                                          failRate: options.failRate, timeline: timeline,
                                          startedAt: clock.now.addingTimeInterval(-Self.clockMargin))
            let (result, stop) = await runScenario(scenario, context, seconds: share)
            report.scenarios.append(result)
            // A silent target ends the run: no further scenarios, and no final checks it could not answer.
            targetSilent = stop == .targetSilent
            if targetSilent { break }
        }
        if !Task.isCancelled, !targetSilent {
            report.scenarios.append(await finalChecks())
        }
        report.timeline = timeline.points
        report.faultWindows = windows.withLock { $0 }
        report.finishedAt = Date()
        report.chaosRestored = restoredEverywhere.withLock { $0 }
        report.outcome = Self.outcome(report, cancelled: Task.isCancelled)
        if report.chaosRestored == false {
            report.message = "the chaos settings could not be restored; the time box set with them switches injection off by itself"
        }
        return report
    }

    private let restoredEverywhere = Mutex<Bool?>(nil)

    static func outcome(_ report: RunReport, cancelled: Bool) -> RunReport.Outcome {
        if cancelled { return .interrupted }
        if report.checks.contains(where: { $0.status == .failed }) { return .failed }
        if report.checks.contains(where: { $0.status == .inconclusive })
            || report.scenarios.contains(where: { $0.stoppedEarly != nil || $0.error != nil }) {
            return .incomplete
        }
        return .passed
    }

    static func make(_ name: ScenarioName) -> any Scenario {
        switch name {
        case .walletConcurrency: WalletConcurrencyScenario()
        case .bank: BankScenario()
        case .inventoryConcurrency: InventoryConcurrencyScenario()
        case .adminSafety: AdminSafetyScenario()
        case .externalServices: ExternalServicesScenario()
        case .shadowWrite: ShadowWriteScenario()
        case .poolExhaustion: PoolExhaustionScenario()
        }
    }

    /// Refuses production and a token that is not an admin's; reads the chaos settings to restore later.
    private func preflight(_ report: inout RunReport) async throws {
        let health: Reply
        let sentAt = Date()
        do {
            health = try await api.send(.GET, "/health", token: .some(nil))
        } catch {
            throw RunRefused("the target did not answer GET /health: \(error)")
        }
        guard let body = health.decode(HealthReport.self) else {
            throw RunRefused("GET /health at the target answered \(health.status) without a health report; is it a Ballast server?")
        }
        let environment = body.environment
        report.environment = environment
        report.targetVersion = body.version
        guard environment != "production" else {
            throw RunRefused("the target says it is production (APP_ENV=production); chaos experiments run only against staging, test or development")
        }
        guard health.status == 200 else { throw RunRefused("the target is not healthy: GET /health answered \(health.status)") }
        let chaos = try await api.send(.GET, "/api/admin/chaos")
        guard chaos.status == 200 else {
            throw RunRefused([401, 403].contains(chaos.status)
                ? "GET /api/admin/chaos answered \(chaos.status): the token must be an admin's"
                : "GET /api/admin/chaos answered \(chaos.status), so the settings to restore are unknown")
        }
        let settings: ChaosBody
        do {
            settings = try chaos.read(ChaosBody.self)
        } catch {
            throw RunRefused("GET /api/admin/chaos answered settings this runner cannot read (\(WireJSON.describe(error))), so it could not restore them")
        }
        target.withLock { $0 = (settings, TargetClock(health, sentAt: sentAt)) }
    }

    /// Set-up, workload (with chaos when the scenario needs it), restore, checks.
    private func runScenario(
        _ scenario: any Scenario, _ context: ScenarioContext, seconds: Double
    ) async -> (ScenarioReport, StopReason?) {
        let name = scenario.name
        let start = timeline.elapsedSeconds
        var stoppedEarly: StopReason?
        var failure: String?
        var checks: [Check] = []
        var window: FaultWindow?
        var faultsInjected = 0.0
        /// Closes the fault window (once) and puts the previous chaos settings back.
        func closeChaos() async {
            guard var open = window, open.endSecond == open.startSecond else { return }
            open.endSecond = max(timeline.elapsedSeconds, open.startSecond + 0.001)
            window = open
            windows.withLock { $0.append(open) }
            await restoreChaos()
        }
        do {
            try await scenario.prepare(context)
            let faultsBefore = (try? await api.metricSum("chaos_injected_faults_total")) ?? 0
            if let plan = scenario.chaos {
                window = try await enableChaos(plan, scenario: name, seconds: seconds)
            }
            stoppedEarly = await workload(scenario, context, seconds: seconds, chaosOn: window != nil)
            await closeChaos()
            faultsInjected = ((try? await api.metricSum("chaos_injected_faults_total")) ?? faultsBefore) - faultsBefore
            if !Task.isCancelled, stoppedEarly != .targetSilent {
                checks = try await Self.uncancelled { try await scenario.check(context) }
                checks.append(serverErrorsCheck(name))
            }
        } catch {
            await closeChaos()
            failure = Task.isCancelled ? "interrupted" : "\(error)"
        }
        progress("")
        let totals = timeline.totals(name)
        let end = timeline.elapsedSeconds
        let report = ScenarioReport(
            name: name, startSecond: start, endSecond: end, plannedSeconds: seconds, stoppedEarly: stoppedEarly?.description,
            error: failure,
            operations: totals.operations, succeeded: totals.ok, refused: totals.refused, errors: totals.errors,
            noAnswer: totals.noAnswer, statusCounts: totals.statusCounts,
            operationsPerSecond: Double(totals.operations) / max(0.001, end - start),
            p50Milliseconds: totals.latencies.percentileMilliseconds(0.5), p95Milliseconds: totals.latencies.percentileMilliseconds(0.95),
            p99Milliseconds: totals.latencies.percentileMilliseconds(0.99), faultsInjected: Int(figure: faultsInjected),
            chaos: window, figures: [], checks: checks)
        log(report.name + ": " + (stoppedEarly.map { "stopped early: \($0)" } ?? failure.map { "could not finish: \($0)" } ?? "done")
            + String(format: " (%d requests, %d errors)", report.operations, report.errors))
        return (report, stoppedEarly)
    }

    /// I6/I10: the workload saw no 5xx and no answer it did not expect.
    private func serverErrorsCheck(_ name: String) -> Check {
        let totals = timeline.totals(name)
        let serverErrors = totals.statusCounts.filter { $0.key.hasPrefix("5") }.values.reduce(0, +)
        return Check(
            scenario: name, invariant: "I6/I10", name: "no 5xx, no unexpected answer", holds: totals.errors == 0,
            figures: [Figure("requests", totals.operations), Figure("5xx", serverErrors), Figure("no answer", totals.noAnswer),
                      Figure("unexpected", totals.errors - serverErrors - totals.noAnswer)],
            detail: "statuses: " + totals.statusCounts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))
    }

    /// Switches injection on for the scenario, with its own time box as a safety net should the runner die.
    private func enableChaos(_ plan: ChaosPlan, scenario: String, seconds: Double) async throws -> FaultWindow {
        let chaosSeed = "\(seed)-\(scenario)"
        _ = try await api.expect("switch chaos on", .PUT, "/api/admin/chaos", body: [
            "enabled": true, "failRate": .number(options.failRate), "scope": .string(plan.scope), "seed": .string(chaosSeed),
            "latencyMilliseconds": 0, "durationSeconds": .integer(Int64(seconds.rounded(.up)) + 60),
            "reason": .string("chaos run \(seed): scenario \(scenario)"),
        ])
        let now = timeline.elapsedSeconds
        return FaultWindow(scenario: scenario, scope: plan.scope, failRate: options.failRate, seed: chaosSeed, startSecond: now, endSecond: now)
    }

    /// Puts back the settings found at the start. Runs even when the run was cancelled.
    private func restoreChaos() async {
        guard let (previous, clock) = target.withLock({ $0 }) else { return }
        var body: [String: JSONValue] = [
            "enabled": .bool(previous.enabled), "failRate": .number(previous.failRate), "scope": .string(previous.scope),
            "latencyMilliseconds": .integer(Int64(previous.latencyMilliseconds)),
            "reason": .string("chaos run \(seed) finished: previous settings restored"),
            "seed": .string(previous.seed),
        ]
        // A time box found at the start keeps its end: what is left of it now, or off if it ended meanwhile.
        body["durationSeconds"] = .null
        if let expiresAt = previous.expiresAt {
            let remaining = Int64(expiresAt.timeIntervalSince(clock.now).rounded(.up))
            if remaining >= 1 { body["durationSeconds"] = .integer(remaining) } else { body["enabled"] = false }
        }
        let api = self.api, settings = JSONValue.object(body)
        let restored = (try? await Self.uncancelled {
            for attempt in 0..<5 {
                if attempt > 0 { try? await Task.sleep(for: .milliseconds(500)) }
                if let reply = try? await api.send(.PUT, "/api/admin/chaos", body: settings), reply.isSuccess { return true }
            }
            return false
        }) ?? false
        restoredEverywhere.withLock { $0 = ($0 ?? true) && restored }
        if !restored { log("could not restore the chaos settings; injection switches itself off at the end of its time box") }
    }

    /// The workload: `concurrency` workers taking operation numbers in turn until time is up, beside a monitor that
    /// stops them when the target's guard switches chaos off or the target stops answering. Answers why it
    /// stopped early, or nil.
    private func workload(_ scenario: any Scenario, _ context: ScenarioContext, seconds: Double, chaosOn: Bool) async -> StopReason? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let shared = WorkloadState()
        let seed = self.seed
        let name = scenario.name
        let scenarioStart = timeline.elapsedSeconds
        let operationLimit = options.operationLimit
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<options.concurrency {
                group.addTask {
                    defer { shared.workerDone() }
                    while ContinuousClock.now < deadline, shared.stopReason == nil, !Task.isCancelled {
                        let number = shared.nextNumber()
                        if let limit = operationLimit, number >= limit { return }
                        var random = SeededRandom(seed, name, String(number))
                        do {
                            try await scenario.operation(number, &random, context)
                        } catch {
                            if !Task.isCancelled { shared.stop(.operationFailed("\(error)")) }
                            return
                        }
                    }
                }
            }
            group.addTask { [self] in
                var silentChecks = 0
                var lastFaults = (try? await api.metricSum("chaos_injected_faults_total")) ?? 0
                var lastDraw = ContinuousClock.now - .seconds(1)
                while ContinuousClock.now < deadline, shared.stopReason == nil, !Task.isCancelled,
                      shared.workersDone < options.concurrency {
                    if ContinuousClock.now - lastDraw >= .seconds(1) {
                        lastDraw = ContinuousClock.now
                        let reason = await monitor(chaosOn: chaosOn, silentChecks: &silentChecks, lastFaults: &lastFaults)
                        if let reason { shared.stop(reason) }
                    }
                    drawProgress(name, since: scenarioStart, seconds: seconds)
                    try? await Task.sleep(for: .milliseconds(250))
                }
                drawProgress(name, since: scenarioStart, seconds: seconds)
            }
            await group.waitForAll()
        }
        if Task.isCancelled { return .interrupted }
        return shared.stopReason
    }

    /// One look at the target: is it answering, has chaos been switched off under us, how many faults so far.
    private func monitor(chaosOn: Bool, silentChecks: inout Int, lastFaults: inout Double) async -> StopReason? {
        // Any answer counts: a target whose pool is saturated answers /health 503 ("database down" within its 2 s)
        // while it goes on serving, and that is what a scenario may be testing. Silent is no answer at all.
        guard let reply = try? await api.send(.GET, "/health", token: .some(nil), timeout: .seconds(3)) else {
            silentChecks += 1
            return silentChecks >= 3 ? .targetSilent : nil
        }
        silentChecks = 0
        if let faults = try? await api.metricSum("chaos_injected_faults_total") {
            timeline.recordFaults(faults - lastFaults)
            lastFaults = faults
        }
        guard chaosOn, let chaos = reply.decode(HealthReport.self)?.chaos else { return nil }
        if !chaos.enabled {
            return .chaosSwitchedOff(chaos.reason ?? "no reason given")
        }
        return nil
    }

    private func drawProgress(_ name: String, since start: Double, seconds: Double) {
        let totals = timeline.totals(name)
        let faults = Int(figure: timeline.faultsTotal)
        progress(name + String(format: " %5.1f/%.0f s  ops %d  errors %d  p50 %.1f ms  p99 %.1f ms  faults %d",
                        timeline.elapsedSeconds - start, seconds, totals.operations, totals.errors,
                        totals.latencies.percentileMilliseconds(0.5), totals.latencies.percentileMilliseconds(0.99), faults))
    }

    /// Checks of the whole target at the end: the evidence chain verifies and the server's own invariant auditor
    /// finds nothing.
    private func finalChecks() async -> ScenarioReport {
        let start = timeline.elapsedSeconds
        var checks: [Check] = []
        var failure: String?
        do {
            let chain = try await api.expect("verify the evidence chain", .GET, "/api/admin/evidence/verify",
                                             as: VerificationBody.self)
            checks.append(Check(
                scenario: "target", invariant: "I7", name: "evidence hash chain verifies", holds: chain.valid,
                figures: [Figure("records", chain.records), Figure("first invalid", chain.firstInvalidId.map(JSONValue.string) ?? .null)],
                detail: "the chain breaks at record \(chain.firstInvalidId ?? "?")"))
            let audit = try await api.triggerJob("ledger-invariant-auditor")
            let result = audit.result
            let violations = result["violations"]?.int ?? -1
            checks.append(Check(
                scenario: "target", invariant: "I1-I3", name: "the server's invariant auditor finds nothing", holds: violations == 0,
                figures: [Figure("violations", violations), Figure("wallets", result["walletsChecked"] ?? .null),
                          Figure("products", result["productsChecked"] ?? .null)],
                detail: "the auditor reported: \(result.text.prefix(300))"))
        } catch {
            failure = "\(error)"
        }
        let end = timeline.elapsedSeconds
        return ScenarioReport(
            name: "target", startSecond: start, endSecond: end, plannedSeconds: 0, stoppedEarly: nil, error: failure, operations: 0,
            succeeded: 0, refused: 0, errors: 0, noAnswer: 0, statusCounts: [:], operationsPerSecond: 0, p50Milliseconds: 0,
            p95Milliseconds: 0, p99Milliseconds: 0, faultsInjected: 0, chaos: nil, figures: [], checks: checks)
    }

    /// Runs `body` in a task that does not inherit cancellation (checks and restores finish after Ctrl-C).
    static func uncancelled<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task.detached { try await body() }.value
    }
}

/// The workload's shared counters: the next operation number and why it stopped early.
final class WorkloadState: Sendable {
    private let next = Mutex(0)
    private let reason = Mutex<StopReason?>(nil)
    private let done = Mutex(0)

    /// Workers that have finished (time up, operation limit reached, or stopped).
    var workersDone: Int { done.withLock { $0 } }
    func workerDone() { done.withLock { $0 += 1 } }

    func nextNumber() -> Int { next.withLock { value in defer { value += 1 }; return value } }
    var stopReason: StopReason? { reason.withLock { $0 } }
    /// Keeps the first reason given.
    func stop(_ why: StopReason) { reason.withLock { $0 = $0 ?? why } }
}

/// The run was refused before anything ran (production target, not an admin token, target not answering).
struct RunRefused: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
