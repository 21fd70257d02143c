import BallastCore
import Foundation
import Synchronization

/// Latencies in log-scale bins (5% wide from 0.1 ms to about 10 minutes): percentiles in bounded memory.
struct LatencyHistogram: Sendable {
    static let base = 1.05
    static let smallest = 0.0001
    static let binCount = 330
    private(set) var counts = [Int](repeating: 0, count: binCount)
    private(set) var total = 0

    mutating func add(_ seconds: Double) {
        let index = seconds <= Self.smallest ? 0 : Int(log(seconds / Self.smallest) / log(Self.base)) + 1
        counts[min(index, Self.binCount - 1)] += 1
        total += 1
    }

    /// The upper edge of the bin holding the `fraction` quantile, in milliseconds (0 when empty).
    func percentileMilliseconds(_ fraction: Double) -> Double {
        guard total > 0 else { return 0 }
        let rank = max(1, Int((Double(total) * fraction).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return Self.smallest * pow(Self.base, Double(index)) * 1000 }
        }
        return Self.smallest * pow(Self.base, Double(Self.binCount)) * 1000
    }
}

/// How one request of the workload ended.
public enum OutcomeKind: String, Sendable, Codable {
    /// 2xx.
    case ok
    /// A 4xx the scenario expects as a normal answer (insufficient funds, stock, confirmation required…).
    case refused
    /// A 5xx, an answer the scenario did not expect, or no answer at all.
    case error
}

/// Everything the workload did, second by second: operations, errors, latencies and faults the target injected.
public final class Timeline: Sendable {
    struct Second: Sendable {
        var operations = 0
        var errors = 0
        var latencies = LatencyHistogram()
        var faults = 0.0
    }

    struct Totals: Sendable {
        var operations = 0
        var ok = 0
        var refused = 0
        var errors = 0
        var noAnswer = 0
        var statusCounts: [String: Int] = [:]
        var latencies = LatencyHistogram()
    }

    let started: ContinuousClock.Instant
    private let state = Mutex<(seconds: [Second], totals: [String: Totals], faults: Double)>(([], [:], 0))

    init() { started = .now }

    var elapsedSeconds: Double { (ContinuousClock.now - started).inSeconds }

    private func slot(_ offset: Double) -> Int { max(0, Int(offset)) }

    /// Makes `seconds[index]` exist (quiet seconds in between get empty entries).
    private static func grow(_ seconds: inout [Second], to index: Int) {
        if seconds.count <= index { seconds.append(contentsOf: repeatElement(Second(), count: index + 1 - seconds.count)) }
    }

    /// Records one request of `scenario`: its status (nil: no answer), latency and outcome.
    func record(_ scenario: String, status: Int?, latencySeconds: Double, outcome: OutcomeKind) {
        let index = slot(elapsedSeconds)
        state.withLock { state in
            Self.grow(&state.seconds, to: index)
            state.seconds[index].operations += 1
            if outcome == .error { state.seconds[index].errors += 1 }
            state.seconds[index].latencies.add(latencySeconds)
            var totals = state.totals[scenario] ?? Totals()
            totals.operations += 1
            switch outcome {
            case .ok: totals.ok += 1
            case .refused: totals.refused += 1
            case .error: totals.errors += 1
            }
            if let status { totals.statusCounts[String(status), default: 0] += 1 } else { totals.noAnswer += 1 }
            totals.latencies.add(latencySeconds)
            state.totals[scenario] = totals
        }
    }

    /// Adds faults the target reported injecting since the last sample.
    func recordFaults(_ count: Double) {
        guard count > 0 else { return }
        let index = slot(elapsedSeconds)
        state.withLock { state in
            Self.grow(&state.seconds, to: index)
            state.seconds[index].faults += count
            state.faults += count
        }
    }

    /// Faults the target reported injecting since the run started.
    var faultsTotal: Double { state.withLock { $0.faults } }

    func totals(_ scenario: String) -> Totals { state.withLock { $0.totals[scenario] ?? Totals() } }

    /// The figures of every second so far.
    var points: [TimelinePoint] {
        state.withLock { state in
            state.seconds.enumerated().map { index, second in
                TimelinePoint(second: index, operations: second.operations, errors: second.errors,
                              p50Milliseconds: second.latencies.percentileMilliseconds(0.5),
                              p99Milliseconds: second.latencies.percentileMilliseconds(0.99), faults: Int(figure: second.faults))
            }
        }
    }
}

/// One second of the run, as the reports show it.
public struct TimelinePoint: Codable, Sendable, Equatable {
    public let second: Int
    public let operations: Int
    public let errors: Int
    public let p50Milliseconds: Double
    public let p99Milliseconds: Double
    public let faults: Int
}
