import Foundation
import Logging
import Testing
@testable import Telemetry

@Suite("Log lines")
struct LogLineTests {
    /// The hand-written timestamp agrees with Foundation's RFC 3339 formatter on dates spread over four centuries
    /// (leap years, century rules, month ends), to the millisecond.
    @Test func timestampsAgreeWithTheCalendar() {
        var generator = SystemRandomNumberGenerator()
        let reference = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)
        // Whole milliseconds plus a fifth of one, so that no formatter's rounding of a binary fraction matters.
        var samples: [Double] = [0, 951_782_400, 951_868_799.999, 4_107_542_399.5, 1_798_675_200.001].map { $0 + 0.0002 }
        for _ in 0..<2000 { samples.append(Double(Int64.random(in: 0...13_569_465_600_000, using: &generator)) / 1000 + 0.0002) }
        for seconds in samples {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(LogTime.string(from: date) == reference.format(date), "at \(seconds)")
        }
    }

    /// Any metadata (quotes, backslashes, control characters, non-ASCII, nesting) gives one line of valid JSON
    /// holding the same values, keys in byte order, secrets replaced.
    @Test func linesAreValidJSONWithTheSameValues() throws {
        let nasty = ["plain", "quote \" and \\ backslash", "tab\tnewline\ncr\r", "nul\u{0}bell\u{7}esc\u{1B}", "é 漢字 🇫🇷", "/slash/", ""]
        let handler = LineLogHandler(label: "test", level: .trace, format: .json, sink: .memory())
        for (index, text) in nasty.enumerated() {
            let metadata: Logger.Metadata = [
                "text": .string(text), "count": .stringConvertible(index), "ratio": .stringConvertible(0.25),
                "flag": .stringConvertible(true), "list": .array([.string(text), .stringConvertible(7)]),
                "nested": .dictionary(["inner": .string(text)]), "token": .string("blt_secret"), "hb.request.id": "x",
                "environment_value": "Authorization=Bearer otlp-secret", "carrier": "[\"traceparent\": \"01-x\"]",
            ]
            let event = LogEvent(level: .info, message: "message \(text)", metadata: nil, source: "s", file: "f", function: "g", line: 1)
            let line = String(decoding: handler.jsonLine(event, metadata), as: UTF8.self)
            #expect(!line.contains("\n"))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            #expect(object["text"] as? String == text)
            #expect(object["message"] as? String == "message \(text)")
            #expect(object["count"] as? Int == index)
            #expect(object["ratio"] as? Double == 0.25)
            #expect(object["flag"] as? Bool == true)
            #expect((object["list"] as? [Any])?.first as? String == text)
            #expect((object["nested"] as? [String: Any])?["inner"] as? String == text)
            #expect(object["token"] as? String == "<redacted>")
            #expect(object["environment_value"] as? String == "<redacted>" && object["carrier"] as? String == "<redacted>")
            #expect(object["hb.request.id"] == nil)
            #expect(object["level"] as? String == "info" && object["label"] as? String == "test")
            let keys = keyOrder(line)
            #expect(keys == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "keys out of order: \(keys)")
        }
    }

    /// A file sink hands every line to the file, in order, when nothing holds it up.
    @Test func aFileSinkWritesEveryLineInOrder() throws {
        let pipe = Pipe()
        let sink = LogSink(descriptor: pipe.fileHandleForWriting.fileDescriptor, capturing: false)
        for number in 0..<500 { sink.write(line: "line \(number)") }
        sink.flush()
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text == (0..<500).map { "line \($0)\n" }.joined())
        #expect(sink.droppedLines == 0)
    }

    /// The drop counter exists from start-up, at 0, with its help text.
    @Test func theDropCounterIsThereFromTheStart() {
        let text = MetricsRegistry(logSink: .memory()).render()
        #expect(text.contains("# HELP log_lines_dropped_total "))
        #expect(text.contains("log_lines_dropped_total 0\n"))
        #expect(!MetricsRegistry().render().contains("log_lines_dropped_total"))
    }

    /// When the output does not take lines (its reader is stuck), the sink keeps at most its capacity, drops and
    /// counts the rest, and never makes the caller wait; once the reader reads again, what was kept arrives.
    @Test func aStuckOutputDropsAndCountsInsteadOfWaiting() async throws {
        let pipe = Pipe()
        let writer = pipe.fileHandleForWriting.fileDescriptor
        // Fill the pipe so that the sink's writer blocks on its first batch.
        let flags = fcntl(writer, F_GETFL)
        _ = fcntl(writer, F_SETFL, flags | O_NONBLOCK)
        let filler = [UInt8](repeating: UInt8(ascii: "x"), count: 4096)
        var filled = 0
        while filler.withUnsafeBytes({ write(writer, $0.baseAddress!, $0.count) }) > 0 { filled += 4096 }
        _ = fcntl(writer, F_SETFL, flags)
        let sink = LogSink(descriptor: writer, capturing: false, capacity: 10_000)
        let started = ContinuousClock.now
        for number in 0..<5000 { sink.write(line: String(format: "line %05d", number)) }
        #expect(ContinuousClock.now - started < .seconds(20), "writing lines must not wait for the output")
        let dropped = sink.droppedLines
        #expect(dropped > 0 && dropped < 5000)
        // Operators see the drops on /metrics, counted once however often it is scraped.
        let metrics = MetricsRegistry(logSink: sink)
        _ = metrics.render()
        #expect(metrics.render().contains("log_lines_dropped_total \(dropped)\n"), "\(metrics.render())")
        // Read everything: the filler, then the lines the sink kept.
        let reader = pipe.fileHandleForReading
        var received = Data()
        let readAll = Task.detached { () -> Data in
            var data = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                data.append(chunk)
            }
            return data
        }
        try await Task.sleep(for: .milliseconds(300))
        sink.flush()
        try pipe.fileHandleForWriting.close()
        received = await readAll.value
        let lines = String(decoding: received.dropFirst(filled), as: UTF8.self).split(separator: "\n")
        #expect(lines.count + dropped == 5000, "every line is either written or counted as dropped")
        #expect(lines == lines.sorted(), "kept lines stay in order")
    }

    private func keyOrder(_ line: String) -> [String] {
        // Top-level keys in the order written: every `"key":` at depth 1.
        var keys: [String] = []
        var depth = 0
        var inString = false
        var escaped = false
        var current = ""
        var lastString = ""
        for character in line {
            if inString {
                if escaped { escaped = false; current.append(character); continue }
                if character == "\\" { escaped = true; continue }
                if character == "\"" { inString = false; lastString = current; continue }
                current.append(character)
                continue
            }
            switch character {
            case "\"": inString = true; current = ""
            case "{", "[": depth += 1
            case "}", "]": depth -= 1
            case ":" where depth == 1: keys.append(lastString)
            default: break
            }
        }
        return keys
    }
}
