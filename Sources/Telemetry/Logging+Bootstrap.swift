import Logging

/// How the process writes its logs; chosen once at start from LOG_FORMAT and LOG_LEVEL.
public enum LogOutput {
    /// Installs the chosen handler for every logger in the process. Safe to call once per process only
    /// (swift-log's rule); the CLI calls it at start, tests build loggers with ``makeLogger(label:level:sink:)``.
    /// `metadataProvider` adds its metadata to every line (the current trace's ids, when tracing is on).
    public static func bootstrap(
        _ format: LogLineFormat, level: Logger.Level, sink: LogSink = .standardOutput,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        LoggingSystem.bootstrap({ label, provider in
            var handler = LineLogHandler(label: label, level: level, format: format, sink: sink)
            handler.metadataProvider = provider
            return handler
        }, metadataProvider: metadataProvider)
    }

    /// A logger that writes JSON lines to `sink`, without touching the process-wide logging system.
    public static func makeLogger(label: String, level: Logger.Level, sink: LogSink) -> Logger {
        Logger(label: label) { label in LineLogHandler(label: label, level: level, format: .json, sink: sink) }
    }
}
