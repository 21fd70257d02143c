import ArgumentParser
import BallastConfig
import BallastServer
import Foundation
import Logging
import ServiceLifecycle
import Storage
import Telemetry

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API.",
        discussion: """
            Listens on HOST:PORT (127.0.0.1:8080). With the defaults it keeps its data in SQLite files under \
            ./data, created and migrated on first start. SIGTERM or SIGINT stops accepting connections, lets \
            requests in flight finish (at most 10 s) and closes the pools.
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "HOST: the address to listen on.")
    var host: String?

    @Option(help: "PORT: the port to listen on (0 picks a free one).")
    var port: String?

    @Option(help: "SHADOW_DATABASE_URL: the shadow store, same forms as --database-url, or none.")
    var shadowDatabaseURL: String?

    @Option(help: "MIGRATE_ON_START: true or false (default true in development and test).")
    var migrateOnStart: String?

    @Option(help: "How long to keep retrying an unreachable primary store at start before exiting (seconds, 1-600).")
    var databaseWaitSeconds: Int = 30

    func validate() throws {
        guard (1...600).contains(databaseWaitSeconds) else {
            throw ValidationError("--database-wait-seconds must be from 1 to 600")
        }
    }

    func run() async throws {
        var overrides = store.overrides
        overrides["HOST"] = host
        overrides["PORT"] = port
        overrides["SHADOW_DATABASE_URL"] = shadowDatabaseURL
        overrides["MIGRATE_ON_START"] = migrateOnStart
        let config = try CommandSupport.loadConfig(overrides: overrides)
        let traceEnvironment: [String: String]?
        do {
            traceEnvironment = try TraceExport.environment(from: ProcessInfo.processInfo.environment)
        } catch {
            CommandSupport.printError("error: \(error.message)")
            throw ExitCode(2)
        }
        let tracing = traceEnvironment != nil
        let logger = CommandSupport.bootstrapLogging(
            config, sink: .standardOutput, metadataProvider: tracing ? TraceExport.logMetadata : nil)
        var traceExporter: (any Service)?
        if let traceEnvironment {
            do {
                traceExporter = try TraceExport.start(environment: traceEnvironment, logger: logger)
            } catch {
                CommandSupport.printError("error: cannot set up tracing from the OTEL_* variables: \(error)")
                throw ExitCode(1)
            }
        }

        let primary: Database
        do {
            primary = try await Database.open(config.databaseURL, poolSize: config.databasePoolSize, logger: logger)
        } catch {
            CommandSupport.printError("error: cannot open the primary store \(config.databaseURL): \(error)")
            throw ExitCode(1)
        }
        var shadow: Database?
        if let shadowURL = config.shadowDatabaseURL {
            do {
                shadow = try await Database.open(shadowURL, poolSize: config.databasePoolSize, logger: logger)
            } catch {
                // The shadow never stops a sale: run without it and report "degraded" in /health.
                logger.error("cannot open the shadow store; running without it", metadata: [
                    "shadowDatabase": "\(shadowURL)", "error": "\(error)",
                ])
            }
        }
        let services = AppServices(
            config: config, primary: primary, shadow: shadow, metrics: MetricsRegistry(logSink: .standardOutput), logger: logger,
            startupDatabaseWait: .seconds(databaseWaitSeconds))
        logger.info("starting ballast", metadata: [
            "version": "\(BallastVersion.current)", "environment": "\(config.environment.rawValue)",
            "address": "\(config.host):\(config.port)", "database": "\(config.databaseURL)",
            "shadowDatabase": "\(config.shadowDatabaseURL.map { "\($0)" } ?? "none")",
            "tracing": "\(tracing ? "otlp" : "off")",
        ])
        do {
            try await BallastApp.run(services: services, alongside: traceExporter.map { [$0] } ?? [])
        } catch {
            CommandSupport.printError("error: \(error)")
            throw ExitCode(1)
        }
        logger.info("stopped")
    }
}
