import BallastCore
import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// OpenTelemetry tracing for `ballast serve`, set up from the standard `OTEL_*` variables: spans are exported over
/// OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `http/json`) to
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), as `OTEL_SERVICE_NAME` (default
/// `ballast`), sampled as `OTEL_TRACES_SAMPLER` says (default `parentbased_always_on`). With no endpoint set, or
/// `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`, nothing is installed and no span is ever made.
/// Only traces: metrics stay on `/metrics` and logs on standard output, where each line of a traced request
/// carries `traceId` and `spanId`.
enum TraceExport {
    /// An `OTEL_*` value this process cannot use; `message` names the variable and what it accepts.
    struct InvalidVariable: Error {
        let message: String
    }

    /// The `OTEL_*` environment the exporter is set up from, once checked: nil when tracing is not asked for. Values
    /// the exporter would stop the process on, or silently ignore, are refused here with one line instead; other
    /// propagators than W3C trace context are dropped (Ballast reads and sends `traceparent` only).
    static func environment(from environment: [String: String]) throws(InvalidVariable) -> [String: String]? {
        func value(_ name: String) -> String? {
            let trimmed = (environment[name] ?? "").trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        }
        guard value("OTEL_EXPORTER_OTLP_ENDPOINT") != nil || value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != nil else {
            return nil
        }
        if let disabled = value("OTEL_SDK_DISABLED") {
            switch disabled.lowercased() {
            case "true": return nil
            case "false": break
            default: throw InvalidVariable(message: "invalid OTEL_SDK_DISABLED=\"\(disabled)\": expected true or false")
            }
        }
        var checked = environment.filter { $0.key.hasPrefix("OTEL_") && !$0.value.isEmpty }
        func oneOf(_ name: String, _ accepted: [String], _ note: String = "") throws(InvalidVariable) -> String? {
            guard let given = value(name) else { return nil }
            guard accepted.contains(given.lowercased()) else {
                throw InvalidVariable(message: "invalid \(name)=\"\(given)\": expected \(accepted.joined(separator: ", "))\(note)")
            }
            return given.lowercased()
        }
        if try oneOf("OTEL_TRACES_EXPORTER", ["otlp", "none"]) == "none" { return nil }
        for name in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            _ = try oneOf(name, ["http/protobuf", "http/json"], " (this build exports over HTTP)")
        }
        _ = try oneOf("OTEL_TRACES_SAMPLER", [
            "always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
            "parentbased_traceidratio",
        ])
        if let ratio = value("OTEL_TRACES_SAMPLER_ARG"), !(Double(ratio).map { (0...1).contains($0) } ?? false) {
            throw InvalidVariable(message: "invalid OTEL_TRACES_SAMPLER_ARG=\"\(ratio)\": expected a decimal from 0.0 to 1.0")
        }
        for (name, minimum) in [
            ("OTEL_BSP_SCHEDULE_DELAY", 0), ("OTEL_BSP_EXPORT_TIMEOUT", 0), ("OTEL_BSP_MAX_QUEUE_SIZE", 1),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1), ("OTEL_EXPORTER_OTLP_TIMEOUT", 0), ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0),
        ] {
            if let given = value(name), !(Int(given).map { $0 >= minimum && $0 <= 86_400_000 } ?? false) {
                throw InvalidVariable(message: "invalid \(name)=\"\(given)\": expected an integer from \(minimum) to 86400000")
            }
        }
        for name in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] {
            // The value is not repeated: an endpoint may carry credentials.
            if let given = value(name) {
                guard let url = URL(string: given), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                      !(url.host ?? "").isEmpty
                else { throw InvalidVariable(message: "invalid \(name): expected an http:// or https:// URL") }
            }
        }
        if let given = value("OTEL_PROPAGATORS") {
            let names = given.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if names.contains("none") {
                checked["OTEL_PROPAGATORS"] = "none"
            } else if names.contains("tracecontext") {
                checked["OTEL_PROPAGATORS"] = "tracecontext"
            } else {
                throw InvalidVariable(message: """
                    invalid OTEL_PROPAGATORS=\"\(given)\": expected a list holding tracecontext (the W3C trace context, \
                    the only one read and sent; others listed beside it are ignored) or none
                    """)
            }
        }
        // Only traces are exported: logs stay on standard output and metrics on /metrics.
        checked["OTEL_LOGS_EXPORTER"] = nil
        checked["OTEL_METRICS_EXPORTER"] = nil
        return checked
    }

    /// What puts `traceId` and `spanId` (the current span's) into every log line.
    static var logMetadata: Logger.MetadataProvider {
        var keys = OTel.Configuration.LoggingMetadataProviderConfiguration.default
        keys.traceIDKey = "traceId"
        keys.spanIDKey = "spanId"
        keys.traceFlagsKey = "traceFlags"
        return OTel.makeLoggingMetadataProvider(configuration: keys)
    }

    /// Installs the process's tracer as the checked `environment` says, turns spans on, and answers the service that
    /// batches and exports them (run it for as long as the server runs; it flushes what is left when it stops).
    static func start(environment: [String: String], logger: Logger) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "ballast"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.propagators = [.traceContext]
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        let exporter = try OTel.bootstrap(configuration: configuration, environment: environment)
        Traces.switchOn()
        return SoftExporter(exporter: exporter, logger: logger)
    }

    /// How long the exporter may go on sending the last spans once the server has stopped serving.
    static let flushBudget: Duration = .seconds(2)
}

/// The exporter as the server runs it: its failures are logged and never stop the server or fail its exit, and once
/// shutdown begins it gets ``TraceExport/flushBudget`` to send what is left (a receiver that is down would
/// otherwise hold the process, retrying, until the whole shutdown deadline).
private struct SoftExporter: Service {
    let exporter: any Service
    let logger: Logger

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await exporter.run()
                } catch {
                    logger.warning("trace exporter stopped", metadata: ["error": "\(error)"])
                }
                // Ended on its own before shutdown (it never should): the server serves on without traces.
                try? await gracefulShutdown()
            }
            group.addTask {
                try? await gracefulShutdown()
                try? await Task.sleep(for: TraceExport.flushBudget)
            }
            await group.next()
            group.cancelAll()
        }
    }
}
