import BallastCore
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where finished log lines go.
///
/// A file sink (standard output or error) never writes on the caller's thread: lines are appended to a bounded
/// buffer and a writer thread of its own hands whole batches to the kernel, one `write` per batch, so a request
/// costs a memory copy, not a system call under a lock. When ``capacityBytes`` are waiting (the reader of the
/// output is stuck), new lines are dropped and counted (``droppedLines``), never waited for. Lines of level error
/// and above wake the writer at once. What is queued is written when the process exits normally (and by
/// ``flush()``), unless the output itself is stuck; a process that crashes or is killed outright loses the lines
/// still queued (at most those of its last moments).
public final class LogSink: Sendable {
    /// The most bytes waiting to be written; past it, lines are dropped and counted.
    public static let capacityBytes = 4 * 1024 * 1024

    private struct Pending {
        var bytes: [UInt8] = []
        var dropped = 0
        var writerStarted = false
        /// An `urgent` line is waiting: the writer writes at once.
        var urgentQueued = false
    }

    private let descriptor: Int32?
    private let capacity: Int
    private let pending = Mutex(Pending())
    /// Serializes the writes themselves, so batches reach the file in the order they were taken.
    private let writing = Mutex(())
    private let wake = DispatchSemaphore(value: 0)
    /// Whether the sink is a test buffer, and the lines it captured.
    private let capturing: Bool
    private let captured = Mutex<[String]>([])

    init(descriptor: Int32?, capturing: Bool, capacity: Int = LogSink.capacityBytes) {
        self.descriptor = descriptor
        self.capacity = capacity
        self.capturing = capturing
    }

    public static let standardOutput = LogSink(descriptor: STDOUT_FILENO, capturing: false)
    public static let standardError = LogSink(descriptor: STDERR_FILENO, capturing: false)

    /// A sink that keeps lines in memory, for tests that read what was logged.
    public static func memory() -> LogSink { LogSink(descriptor: nil, capturing: true) }

    /// Queues one line (without its newline). `urgent` lines wake the writer even if others are queued.
    public func write(line: String, urgent: Bool = false) {
        var bytes = Array(line.utf8)
        write(bytes: &bytes, urgent: urgent)
    }

    /// Queues one line already encoded as UTF-8 (without its newline).
    func write(bytes line: inout [UInt8], urgent: Bool) {
        if capturing {
            let text = String(decoding: line, as: UTF8.self)
            captured.withLock { $0.append(text) }
            return
        }
        let signal = pending.withLock { pending -> Bool in
            guard pending.bytes.count + line.count + 1 <= capacity else {
                pending.dropped += 1
                return false
            }
            let wasEmpty = pending.bytes.isEmpty
            if urgent { pending.urgentQueued = true }
            pending.bytes.append(contentsOf: line)
            pending.bytes.append(0x0A)
            if !pending.writerStarted {
                pending.writerStarted = true
                startWriter()
                Self.flushAtExit()
            }
            return wasEmpty
        }
        if signal || urgent { wake.signal() }
    }

    /// Writes everything queued so far, on the caller's thread.
    public func flush() {
        writing.withLock { _ in writeQueued() }
    }

    /// As ``flush()``, unless a write is already under way (an output whose reader is stuck blocks it): then
    /// nothing, so that a process exiting never waits on its own log output.
    func flushIfIdle() {
        _ = writing.withLockIfAvailable { _ in writeQueued() }
    }

    private func writeQueued() {
        guard let descriptor else { return }
        let batch = pending.withLock { pending -> [UInt8] in
            let taken = pending.bytes
            pending.bytes.removeAll(keepingCapacity: true)
            pending.urgentQueued = false
            return taken
        }
        Self.writeAll(batch, to: descriptor)
    }

    /// Lines dropped so far because the buffer was full.
    public var droppedLines: Int { pending.withLock { $0.dropped } }

    /// The lines written so far (memory sinks only).
    public var lines: [String] { captured.withLock { $0 } }

    /// Whatever the process is doing when it exits normally, the queued lines of the standard sinks go out first.
    private static let flushAtExit: @Sendable () -> Void = {
        atexit {
            LogSink.standardOutput.flushIfIdle()
            LogSink.standardError.flushIfIdle()
        }
        return {}
    }()

    /// How long the writer lets lines gather after the first one wakes it, so that under load it wakes and writes
    /// a few hundred times a second instead of once per request (each wake-up is a thread switch on the request
    /// path's cores). `urgent` lines (errors) do not wait.
    static let gathering: Duration = .milliseconds(2)

    private func startWriter() {
        let thread = Thread { [self] in
            while true {
                wake.wait()
                if !pending.withLock({ $0.urgentQueued }) {
                    usleep(useconds_t(Self.gathering.wholeMicroseconds))
                }
                flush()
            }
        }
        thread.name = "ballast-log-writer"
        thread.start()
    }

    private static func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(descriptor, bytes, count)
        #else
        Darwin.write(descriptor, bytes, count)
        #endif
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // a closed or broken output: nothing more can be done with these lines
                }
            }
        }
    }
}

/// Keys whose values are secrets: they are replaced before a line is written, whatever the caller passed.
let redactedMetadataKeys: Set<String> = [
    "authorization", "token", "password", "secret", "cookie",
    // What the OpenTelemetry exporter logs verbatim: `OTEL_*` values (an OTLP header may hold a receiver's
    // credentials) and the trace headers it could not read.
    "environment_value", "previous_value", "new_value", "carrier",
]

/// Keys the web framework adds that repeat what our own keys say (`hb.request.id` equals `requestId`).
let hiddenMetadataKeys: Set<String> = ["hb.request.id"]

/// How a log line is laid out.
public enum LogLineFormat: Sendable {
    /// One JSON object per line: `{"time":"…","level":"info","label":"…","message":"…","requestId":"…",…}`,
    /// metadata keys flattened into the object, every key in byte order.
    case json
    /// For people reading a terminal: `time level label: message key=value …`.
    case text
}

/// A swift-log handler writing one line per event in the chosen format. Secrets (see
/// ``redactedMetadataKeys``) are never written, whatever the caller passed. JSON is written by hand into a byte
/// buffer (no Foundation serializer, no date formatter on the request path).
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
        var line: [UInt8]
        switch format {
        case .json: line = jsonLine(event, merged)
        case .text: line = textLine(event, merged)
        }
        sink.write(bytes: &line, urgent: event.level >= .error)
    }

    func jsonLine(_ event: LogEvent, _ merged: Logger.Metadata) -> [UInt8] {
        var fields: [(key: String, value: Logger.MetadataValue)] = [
            ("label", .string(label)), ("level", .string(event.level.rawValue)), ("message", .string(event.message.description)),
            ("time", .string(LogTime.now())),
        ]
        if event.level >= .error { fields.append(("source", .string("\(event.file):\(event.line)"))) }
        let fixed = fields.count
        for (key, value) in merged where !hiddenMetadataKeys.contains(key) {
            // The line's own fields win over metadata of the same name.
            guard !fields[0..<fixed].contains(where: { $0.key == key }) else { continue }
            fields.append((key, redactedMetadataKeys.contains(key.lowercased()) ? .string("<redacted>") : value))
        }
        fields.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendString(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONText.appendValue(field.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private func textLine(_ event: LogEvent, _ merged: Logger.Metadata) -> [UInt8] {
        let fields = merged.keys.filter { !hiddenMetadataKeys.contains($0) }.sorted().map { key -> String in
            let value = redactedMetadataKeys.contains(key.lowercased()) ? "<redacted>" : "\(merged[key]!)"
            return "\(key)=\(value)"
        }
        let tail = fields.isEmpty ? "" : " " + fields.joined(separator: " ")
        return Array("\(LogTime.now()) \(event.level.rawValue) \(label): \(event.message)\(tail)".utf8)
    }
}

/// Hand-written JSON for log lines: strings escaped as RFC 8259 requires (quote, backslash, control characters;
/// `/` and non-ASCII left as they are), numbers and booleans kept as such.
enum JSONText {
    static func appendValue(_ value: Logger.MetadataValue, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as Int: out.append(contentsOf: String(number).utf8)
            case let number as Int64: out.append(contentsOf: String(number).utf8)
            case let number as Double where number.isFinite: out.append(contentsOf: number.description.utf8)
            case let flag as Bool: out.append(contentsOf: (flag ? "true" : "false").utf8)
            default: appendString(convertible.description, to: &out)
            }
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendValue(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let values):
            out.append(UInt8(ascii: "{"))
            for (index, key) in values.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendValue(values[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

/// RFC 3339 UTC timestamps with milliseconds (`2026-12-01T00:54:48.881Z`), for log lines and API answers,
/// computed without a formatter (Foundation's go through ICU, which costs more than the rest of a log line).
public enum LogTime {
    /// The system clock now.
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return format(seconds: Int64(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000))
    }

    /// `date`, its fraction truncated to milliseconds.
    public static func string(from date: Date) -> String {
        // Whole microseconds first (what the stores keep), so a binary fraction just under one never loses a millisecond.
        let microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let milliseconds = microseconds >= 0 ? microseconds / 1000 : (microseconds - 999) / 1000
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        return format(seconds: seconds, milliseconds: Int(milliseconds - seconds * 1000))
    }

    static func format(seconds: Int64, milliseconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let date = CivilDate(daysSinceEpoch: days)
        let (year, month, day) = (date.year, date.month, date.day)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(year), 4); out.append(UInt8(ascii: "-"))
        digits(month, 2); out.append(UInt8(ascii: "-"))
        digits(day, 2); out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2); out.append(UInt8(ascii: "."))
        digits(milliseconds, 3); out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }
}
