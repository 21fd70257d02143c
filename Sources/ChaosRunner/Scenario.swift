import BallastCore
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The fault injection a scenario runs under (PUT /api/admin/chaos while its workload runs).
public struct ChaosPlan: Sendable {
    public let scope: String
    public init(scope: String) { self.scope = scope }
}

/// One experiment: it creates what it needs through the API, runs operations chosen by the seed, then checks
/// its invariants through the API. Scenario objects hold what their clients were told, to compare at the end.
protocol Scenario: AnyObject, Sendable {
    var scenario: ScenarioName { get }
    /// The fault injection it needs, or nil.
    var chaos: ChaosPlan? { get }
    /// Creates its users, wallets, products or listings.
    func prepare(_ context: ScenarioContext) async throws
    /// Operation number `number` of the workload; `random` is seeded by (seed, scenario, number).
    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws
    /// Checks its invariants once the workload is over and fault injection is back as it was.
    func check(_ context: ScenarioContext) async throws -> [Check]
}

extension Scenario {
    /// Its name, as reports and checks show it.
    var name: String { scenario.rawValue }
}

/// A deterministic generator (SplitMix64): the same seed gives the same numbers on every machine.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(_ parts: String...) {
        // FNV-1a over the parts: stable across processes, unlike `Hasher`.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parts.joined(separator: "/").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        state = hash
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var value = state
        value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
        value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
        return value ^ (value >> 31)
    }

    /// True with probability `probability`.
    public mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }

    /// A key derived from the generator (idempotency keys, request ids).
    public mutating func token(_ prefix: String) -> String { prefix + String(next(), radix: 36) + String(next(), radix: 36) }
}

/// What a scenario works with: the client, the run's seed and tag, and the timeline it records into.
struct ScenarioContext: Sendable {
    let api: APIClient
    let scenario: String
    let seed: String
    /// Unique to this run, in names and SKUs so that runs never collide on a shared target.
    let runTag: String
    let concurrency: Int
    let failRate: Double
    let timeline: Timeline
    /// When the scenario began, on the target's clock, less the clock's uncertainty: `since=` for what it caused.
    let startedAt: Date

    /// Sends one request of the workload and records it. `refusals` are error codes (or statuses, as text)
    /// that are a normal answer here; anything else that is not 2xx counts as an error. Nil when no answer came.
    @discardableResult
    func call(
        _ method: HTTPMethod, _ path: String, token: String?? = nil, body: JSONValue? = nil, headers: [String: String] = [:],
        refusals: Set<String> = [], timeout: TimeAmount? = nil
    ) async throws -> Reply? {
        let started = ContinuousClock.now
        do {
            let reply = try await api.send(method, path, token: token, body: body, headers: headers, timeout: timeout)
            let outcome: OutcomeKind
            if reply.isSuccess {
                outcome = .ok
            } else if refusals.contains(reply.errorCode ?? "") || refusals.contains(String(reply.status)) {
                outcome = .refused
            } else {
                outcome = .error
            }
            timeline.record(scenario, status: reply.status, latencySeconds: reply.latencySeconds, outcome: outcome)
            return reply
        } catch is Unreachable {
            timeline.record(scenario, status: nil, latencySeconds: (ContinuousClock.now - started).inSeconds, outcome: .error)
            return nil
        }
    }

    /// A money-moving request with an Idempotency-Key: when no answer comes it is sent again with the same key
    /// (up to four times), so the outcome is known unless the target stopped answering. A 409
    /// idempotency_key_in_use (the first attempt still running) is waited out the same way.
    func idempotent(
        _ method: HTTPMethod, _ path: String, key: String, token: String?? = nil, body: JSONValue, refusals: Set<String> = [],
        timeout: TimeAmount? = nil
    ) async throws -> Reply? {
        var delay = Duration.milliseconds(50)
        for attempt in 0..<4 {
            if attempt > 0 {
                try await Task.sleep(for: delay)
                delay *= 4
            }
            let reply = try await call(method, path, token: token, body: body, headers: ["Idempotency-Key": key],
                                       refusals: refusals.union(["idempotency_key_in_use"]), timeout: timeout)
            if let reply, reply.errorCode != "idempotency_key_in_use" { return reply }
        }
        return nil
    }

    /// An idempotency key or request id: drawn from the generator (so a seed replays the same sequence) and
    /// prefixed with the run's tag (so a replay never collides with the keys of an earlier run).
    func key(_ random: inout SeededRandom, _ prefix: String) -> String { "\(prefix)\(runTag)-" + random.token("") }

    /// A set-up or check request that must succeed.
    func expect(_ step: String, _ method: HTTPMethod, _ path: String, token: String?? = nil, body: JSONValue? = nil) async throws -> JSONValue {
        try await api.expect(step, method, path, token: token, body: body)
    }
}

/// Runs `body` for every element with at most `width` at once, keeping the results in order.
func concurrentMap<Element: Sendable, Result: Sendable>(
    _ elements: [Element], width: Int, _ body: @escaping @Sendable (Element) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: elements.count)
        var next = 0
        for _ in 0..<min(max(1, width), elements.count) {
            let index = next
            group.addTask { (index, try await body(elements[index])) }
            next += 1
        }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < elements.count {
                let index = next
                group.addTask { (index, try await body(elements[index])) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}
