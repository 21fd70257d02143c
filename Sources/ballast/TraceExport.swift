import BallastCore
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
    /// Whether `environment` asks for traces.
    static func isRequested(_ environment: [String: String]) -> Bool {
        func set(_ name: String) -> Bool { !(environment[name] ?? "").trimmingCharacters(in: .whitespaces).isEmpty }
        guard set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") else { return false }
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        if environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none" { return false }
        return true
    }

    /// What puts `traceId` and `spanId` (the current span's) into every log line.
    static var logMetadata: Logger.MetadataProvider {
        var keys = OTel.Configuration.LoggingMetadataProviderConfiguration.default
        keys.traceIDKey = "traceId"
        keys.spanIDKey = "spanId"
        keys.traceFlagsKey = "traceFlags"
        return OTel.makeLoggingMetadataProvider(configuration: keys)
    }

    /// Installs the process's tracer, turns spans on, and answers the service that batches and exports them (run it
    /// for as long as the server runs; it flushes what is left when it stops). Throws on a bad `OTEL_*` value.
    static func start(logger: Logger) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "ballast"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        Traces.switchOn()
        return SoftExporter(exporter: backend.service, logger: logger)
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
