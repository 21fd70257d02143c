import BallastCore
import Foundation

/// A named figure of a check or a scenario (a count, an amount, a rate).
public struct Figure: Codable, Sendable, Equatable {
    public let name: String
    public let value: JSONValue

    public init(_ name: String, _ value: JSONValue) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: Int) { self.init(name, .integer(Int64(value))) }
    public init(_ name: String, _ value: Int64) { self.init(name, .integer(value)) }

    var text: String {
        switch value {
        case .string(let text): return "\(name) \(text)"
        case .number(let number): return "\(name) \(String(format: "%.3g", number))"
        default: return "\(name) \(value.text)"
        }
    }
}

/// One invariant checked through the API at the end of a scenario.
public struct Check: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case passed
        case failed
        /// Requests whose outcome is unknown (no answer) make the figure impossible to decide.
        case inconclusive
    }

    public let scenario: String
    /// The SPEC invariant it proves (I1…I11), or a name for the experiment's own checks.
    public let invariant: String
    public let name: String
    public let status: Status
    public let figures: [Figure]
    /// The first offenders, when it failed.
    public let detail: String?

    public init(scenario: String, invariant: String, name: String, status: Status, figures: [Figure], detail: String? = nil) {
        self.scenario = scenario
        self.invariant = invariant
        self.name = name
        self.status = status
        self.figures = figures
        self.detail = detail
    }

    /// A check that passed when `holds`, failed otherwise.
    public init(scenario: String, invariant: String, name: String, holds: Bool, figures: [Figure], detail: String? = nil,
                undecided: Bool = false) {
        self.init(scenario: scenario, invariant: invariant, name: name,
                  status: holds ? .passed : (undecided ? .inconclusive : .failed), figures: figures,
                  detail: holds ? nil : detail)
    }

    /// The target's successes read as their documented bodies: `unreadable` holds why each one did not.
    static func readable(_ unreadable: [String], scenario: String) -> Check {
        Check(scenario: scenario, invariant: "API", name: "every success reads as its documented body",
              holds: unreadable.isEmpty, figures: [Figure("unreadable", unreadable.count)],
              detail: unreadable.prefix(3).joined(separator: "; "))
    }
}

/// Fault injection switched on by the runner for a scenario, as seconds from the start of the run.
public struct FaultWindow: Codable, Sendable, Equatable {
    public let scenario: String
    public let scope: String
    public let failRate: Double
    public let seed: String
    public let startSecond: Double
    public var endSecond: Double
}

/// What one scenario did and found.
public struct ScenarioReport: Codable, Sendable {
    public let name: String
    public let startSecond: Double
    public let endSecond: Double
    public let plannedSeconds: Double
    /// Why the workload stopped before its time was up (steady-state guard, target not answering, interrupted).
    public let stoppedEarly: String?
    /// Why the scenario could not run or could not be checked.
    public let error: String?
    public let operations: Int
    public let succeeded: Int
    public let refused: Int
    public let errors: Int
    public let noAnswer: Int
    public let statusCounts: [String: Int]
    public let operationsPerSecond: Double
    public let p50Milliseconds: Double
    public let p95Milliseconds: Double
    public let p99Milliseconds: Double
    public let faultsInjected: Int
    public let chaos: FaultWindow?
    public let figures: [Figure]
    public let checks: [Check]
}

/// The whole experiment: what `--report-json` writes and the HTML page shows.
public struct RunReport: Codable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        /// Every invariant held.
        case passed
        /// At least one invariant broke.
        case failed
        /// It stopped early or a check could not be decided; nothing that was checked broke.
        case incomplete
        /// The target was refused (production, not an admin token) before anything ran.
        case refused
        /// Ctrl-C.
        case interrupted
    }

    public let target: String
    public var environment: String?
    public var targetVersion: String?
    public let seed: String
    public let concurrency: Int
    public let durationSeconds: Double
    public let failRate: Double
    public let startedAt: Date
    public var finishedAt: Date
    public var outcome: Outcome
    public var message: String?
    public var chaosRestored: Bool?
    public var scenarios: [ScenarioReport]
    public var timeline: [TimelinePoint]
    public var faultWindows: [FaultWindow]

    /// Every check of every scenario, in order.
    public var checks: [Check] { scenarios.flatMap(\.checks) }

    /// 0 every invariant held; 1 one broke; 2 incomplete; 3 refused; 130 interrupted.
    public var exitCode: Int32 {
        switch outcome {
        case .passed: return 0
        case .failed: return 1
        case .incomplete: return 2
        case .refused: return 3
        case .interrupted: return 130
        }
    }

    /// The JSON report (sorted keys, pretty).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    /// The table of invariants printed at the end of a run.
    public var table: String {
        var rows: [[String]] = [["scenario", "invariant", "check", "result", "figures"]]
        for check in checks {
            rows.append([check.scenario, check.invariant, check.name, check.status.rawValue.uppercased(),
                         check.figures.map(\.text).joined(separator: ", ")])
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines: [String] = []
        for (index, row) in rows.enumerated() {
            let cells = (0..<4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) } + [row[4]]
            lines.append(cells.joined(separator: "  "))
            if index == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "  -------") }
        }
        for check in checks where check.status != .passed {
            if let detail = check.detail { lines.append("\(check.status.rawValue.uppercased()): \(check.scenario) \(check.invariant) \(check.name): \(detail)") }
        }
        return lines.joined(separator: "\n")
    }

    /// One summary paragraph per scenario: operations, outcome counts and latency.
    public var scenarioSummary: String {
        scenarios.filter { $0.name != "target" }.map { scenario in
            var line = scenario.name + ": " + String(format: "%d requests in %.1f s (%.0f/s), %d ok, %d refused, %d errors, p50 %.1f ms, p99 %.1f ms, faults injected %d",
                              scenario.operations, scenario.endSecond - scenario.startSecond,
                              scenario.operationsPerSecond, scenario.succeeded, scenario.refused, scenario.errors,
                              scenario.p50Milliseconds, scenario.p99Milliseconds, scenario.faultsInjected)
            if let stopped = scenario.stoppedEarly { line += "; stopped early: \(stopped)" }
            if let error = scenario.error { line += "; error: \(error)" }
            return line
        }.joined(separator: "\n")
    }
}
