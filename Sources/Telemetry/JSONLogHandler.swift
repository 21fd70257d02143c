import Foundation
import Logging

/// Where finished log lines go. One `write` call per line, under a lock, so lines from concurrent tasks never
/// interleave.
public final class LogSink: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle
    /// Captured lines, when the sink is a test buffer.
    private var captured: [String]?

    private init(handle: FileHandle, capturing: Bool) {
        self.handle = handle
        self.captured = capturing ? [] : nil
    }

    public static let standardOutput = LogSink(handle: .standardOutput, capturing: false)
    public static let standardError = LogSink(handle: .standardError, capturing: false)

    /// A sink that keeps lines in memory, for tests that read what was logged.
    public static func memory() -> LogSink { LogSink(handle: .nullDevice, capturing: true) }

    public func write(line: String) {
        lock.lock()
        defer { lock.unlock() }
        if captured != nil {
            captured!.append(line)
        } else {
            handle.write(Data((line + "\n").utf8))
        }
    }

    /// The lines written so far (memory sinks only).
    public var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return captured ?? []
    }
}

/// Keys whose values are secrets: they are replaced before a line is written, whatever the caller passed.
let redactedMetadataKeys: Set<String> = ["authorization", "token", "password", "secret", "cookie"]

/// Keys the web framework adds that repeat what our own keys say (`hb.request.id` equals `requestId`).
let hiddenMetadataKeys: Set<String> = ["hb.request.id"]

/// How a log line is laid out.
public enum LogLineFormat: Sendable {
    /// One JSON object per line: `{"time":"…","level":"info","label":"…","message":"…","requestId":"…",…}`,
    /// metadata keys flattened into the object.
    case json
    /// For people reading a terminal: `time level label: message key=value …`.
    case text
}

/// A swift-log handler writing one line per event in the chosen format. Secrets (see
/// ``redactedMetadataKeys``) are never written, whatever the caller passed.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogLineFormat
    private let sink: LogSink

    public init(label: String, level: Logger.Level, format: LogLineFormat = .json, sink: LogSink = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        switch format {
        case .json: writeJSON(event, merged)
        case .text: writeText(event, merged)
        }
    }

    private func writeJSON(_ event: LogEvent, _ merged: Logger.Metadata) {
        var object: [String: Any] = [
            "time": LogTime.now(),
            "level": event.level.rawValue,
            "label": label,
            "message": event.message.description,
        ]
        for (key, value) in merged where object[key] == nil && !hiddenMetadataKeys.contains(key) {
            object[key] = redactedMetadataKeys.contains(key.lowercased()) ? "<redacted>" : value.jsonValue
        }
        if event.level >= .error {
            object["source"] = "\(event.file):\(event.line)"
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
              let line = String(data: data, encoding: .utf8)
        else { return }
        sink.write(line: line)
    }

    private func writeText(_ event: LogEvent, _ merged: Logger.Metadata) {
        let fields = merged.keys.filter { !hiddenMetadataKeys.contains($0) }.sorted().map { key -> String in
            let value = redactedMetadataKeys.contains(key.lowercased()) ? "<redacted>" : "\(merged[key]!)"
            return "\(key)=\(value)"
        }
        let tail = fields.isEmpty ? "" : " " + fields.joined(separator: " ")
        sink.write(line: "\(LogTime.now()) \(event.level.rawValue) \(label): \(event.message)\(tail)")
    }
}

extension Logger.MetadataValue {
    /// The value as something `JSONSerialization` accepts.
    var jsonValue: Any {
        switch self {
        case .string(let text): return text
        case .stringConvertible(let value):
            // Numbers and booleans stay numbers and booleans in the JSON line.
            switch value {
            case let number as Int: return number
            case let number as Double: return number
            case let flag as Bool: return flag
            default: return value.description
            }
        case .array(let values): return values.map(\.jsonValue)
        case .dictionary(let values): return values.mapValues(\.jsonValue)
        }
    }
}

/// RFC 3339 UTC timestamps with milliseconds for log lines.
enum LogTime {
    static func now() -> String {
        Date.now.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
