import BallastCore
import ArgumentParser
import ChaosRunner
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `ballast chaos run`: a time-boxed chaos experiment against a live deployment (never production).
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Chaos experiments against a running Ballast deployment.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a scenario against a target and check the invariants through its API.",
            discussion: """
                Scenarios: \(ScenarioChoice.accepted). Each creates its own users, wallets, \
                products and listings, switches fault injection on where it needs it (and back to what it was afterwards, \
                also on Ctrl-C), runs its workload, then checks its invariants. Refuses a target whose /health says \
                production. Exit status: 0 every invariant held, 1 one broke, 2 stopped early or undecided, 3 refused, \
                130 interrupted.
                """)

        @Option(help: "Base URL of the target deployment.")
        var target = "http://127.0.0.1:8080"

        @Option(help: "An admin's token (default: BALLAST_ADMIN_TOKEN).")
        var token: String?

        @Option(help: "Which scenario to run: \(ScenarioChoice.accepted).")
        var scenario: String

        @Option(help: "Requests in flight at once (\(RunOptions.Limits.concurrency.lowerBound)-\(RunOptions.Limits.concurrency.upperBound)).")
        var concurrency = 16

        @Option(help: "Seconds of workload in all (all shares them between its scenarios; \(Int(RunOptions.Limits.durationSeconds.lowerBound))-\(Int(RunOptions.Limits.durationSeconds.upperBound))).")
        var duration = 30.0

        @Option(help: "Fixes the sequence of operations and the faults injected (default: random, printed).")
        var seed: String?

        @Option(help: "Probability that a call at an in-scope fault point fails while a scenario runs (0.0-1.0).")
        var failRate = 0.2

        @Option(help: "At most this many operations per scenario, within the time box (default: as many as fit).")
        var operations: Int?

        @Option(help: "Seconds to wait for an answer before a request counts as unanswered (\(RunOptions.Limits.requestTimeoutSeconds.lowerBound)-\(RunOptions.Limits.requestTimeoutSeconds.upperBound)).")
        var requestTimeout: Int64 = 10

        @Option(help: "Write the JSON report (every figure and check) to this file.")
        var reportJson: String?

        @Option(help: "Write the HTML report (table and charts, self-contained) to this file.")
        var reportHtml: String?

        func validate() throws {
            guard ScenarioChoice(scenario) != nil else {
                throw ValidationError("--scenario must be one of \(ScenarioChoice.accepted) (got \"\(scenario)\")")
            }
            let limits = RunOptions.Limits.self
            guard limits.concurrency.contains(concurrency) else {
                throw ValidationError("--concurrency must be from \(limits.concurrency.lowerBound) to \(limits.concurrency.upperBound) (got \(concurrency))")
            }
            guard duration.isFinite, limits.durationSeconds.contains(duration) else {
                throw ValidationError("--duration must be from \(Int(limits.durationSeconds.lowerBound)) to \(Int(limits.durationSeconds.upperBound)) seconds (got \(duration))")
            }
            guard failRate.isFinite, (0...1).contains(failRate) else { throw ValidationError("--fail-rate must be from 0.0 to 1.0 (got \(failRate))") }
            guard let url = URL(string: target), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--target must be an http:// or https:// URL (got \"\(target)\")")
            }
            guard limits.requestTimeoutSeconds.contains(requestTimeout) else {
                throw ValidationError("--request-timeout must be from \(limits.requestTimeoutSeconds.lowerBound) to \(limits.requestTimeoutSeconds.upperBound) seconds (got \(requestTimeout))")
            }
            if let operations, operations < 1 { throw ValidationError("--operations must be at least 1 (got \(operations))") }
            if let seed, seed.isEmpty || seed.count > limits.seedLength || seed.contains(where: \.isNewline) {
                throw ValidationError("--seed must be one line of 1 to \(limits.seedLength) characters")
            }
            guard resolvedToken != nil else { throw ValidationError("--token is required (or set BALLAST_ADMIN_TOKEN)") }
        }

        var resolvedToken: String? {
            let value = token ?? ProcessInfo.processInfo.environment["BALLAST_ADMIN_TOKEN"]
            return value?.isEmpty == false ? value : nil
        }

        func run() async throws {
            guard let choice = ScenarioChoice(scenario) else { throw ValidationError("--scenario must be one of \(ScenarioChoice.accepted)") }
            var options = RunOptions(target: target, token: resolvedToken ?? "", scenario: choice)
            options.concurrency = concurrency
            options.durationSeconds = duration
            options.seed = seed
            options.failRate = failRate
            options.operationLimit = operations
            options.requestTimeoutSeconds = requestTimeout
            let terminal = Terminal()
            let experiment = ChaosRun(options, progress: terminal.progress, log: terminal.line)
            let task = Task { await experiment.run() }
            let signals = Self.onInterrupt {
                terminal.line("interrupted: stopping the workload and restoring the chaos settings (Ctrl-C again to quit at once)")
                task.cancel()
            }
            let report = await task.value
            signals.forEach { $0.cancel() }
            terminal.progress("")
            print(report.table)
            print("")
            print(report.scenarioSummary)
            if let reportJson {
                try report.jsonData().write(to: URL(fileURLWithPath: reportJson))
                print("JSON report: \(reportJson)")
            }
            if let reportHtml {
                try Data(HTMLReport.render(report).utf8).write(to: URL(fileURLWithPath: reportHtml))
                print("HTML report: \(reportHtml)")
            }
            let verdict = switch report.outcome {
            case .passed: "PASSED: every invariant held"
            case .failed: "FAILED: " + report.checks.filter { $0.status == .failed }.map { "\($0.invariant) \($0.name) (\($0.scenario))" }.joined(separator: "; ")
            case .incomplete: "INCOMPLETE: " + (report.scenarios.compactMap { $0.stoppedEarly ?? $0.error }.first ?? "some checks could not be decided")
            case .refused: "REFUSED: " + (report.message ?? "")
            case .interrupted: "INTERRUPTED"
            }
            print("\(verdict) (seed \(report.seed); replay with --seed \(report.seed))")
            if let message = report.message, report.outcome != .refused { print(message) }
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        }

        /// Calls `handler` on the first SIGINT or SIGTERM; a second one exits at once.
        static func onInterrupt(_ handler: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
            let count = Counter()
            return [SIGINT, SIGTERM].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    if count.increment() == 1 { handler() } else { Foundation.exit(130) }
                }
                source.resume()
                return source
            }
        }
    }
}

/// How many signals came.
private final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}

/// Progress on stderr: one refreshed line on a terminal, a line every five seconds otherwise.
private final class Terminal: Sendable {
    private let interactive = isatty(STDERR_FILENO) == 1
    /// When the last plain line was written, and whether a refreshed line is on screen.
    private let state = Mutex((lastPlain: Date.distantPast, showing: false))

    func progress(_ text: String) {
        state.withLock { state in
            if interactive {
                write("\r\u{1B}[2K" + text)
                state.showing = !text.isEmpty
            } else if !text.isEmpty, Date().timeIntervalSince(state.lastPlain) >= 5 {
                state.lastPlain = Date()
                write(text + "\n")
            }
        }
    }

    func line(_ text: String) {
        state.withLock { state in
            write((state.showing ? "\r\u{1B}[2K" : "") + text + "\n")
            state.showing = false
        }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
