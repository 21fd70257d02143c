import ArgumentParser
import BallastConfig
import BallastServer
import Foundation
import Logging
import Telemetry

/// Flags every command shares; each overrides the environment variable of the same meaning.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("env"), help: "APP_ENV: development, test, staging or production.")
    var appEnvironment: String?

    @Option(help: "DATABASE_URL: sqlite:PATH, sqlite::memory: or postgres://user:pass@host:port/db.")
    var databaseURL: String?

    @Option(help: "DATABASE_POOL_SIZE: connections per store (1-200).")
    var poolSize: String?

    @Option(help: "LOG_LEVEL: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(help: "LOG_FORMAT: json or text.")
    var logFormat: String?

    var overrides: [String: String] {
        var values: [String: String] = [:]
        values["APP_ENV"] = appEnvironment
        values["DATABASE_URL"] = databaseURL
        values["DATABASE_POOL_SIZE"] = poolSize
        values["LOG_LEVEL"] = logLevel
        values["LOG_FORMAT"] = logFormat
        return values
    }
}

enum CommandSupport {
    /// Loads the configuration; on a bad value prints one line to stderr and exits 2, and for chaos in
    /// production prints the FATAL line and its explanation and exits 1.
    static func loadConfig(overrides: [String: String]) throws -> AppConfig {
        do {
            return try AppConfig.load(environment: ProcessInfo.processInfo.environment, overrides: overrides)
        } catch let error as ProductionChaosForbidden {
            printError(error.description)
            throw ExitCode(1)
        } catch let error as ConfigError {
            printError("error: \(error.message)")
            throw ExitCode(2)
        }
    }

    /// Installs the log handler chosen by LOG_FORMAT/LOG_LEVEL. `serve` logs to stdout; the other commands log
    /// to stderr so that what they print on stdout can be piped.
    static func bootstrapLogging(_ config: AppConfig, sink: LogSink, metadataProvider: Logger.MetadataProvider? = nil) -> Logger {
        let level = Logger.Level(rawValue: config.logLevel.rawValue) ?? .info
        LogOutput.bootstrap(config.logFormat == .json ? .json : .text, level: level, sink: sink, metadataProvider: metadataProvider)
        return Logger(label: "ballast")
    }

    /// One line of JSON with sorted keys, for output that scripts read.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
