import Synchronization
import Tracing

/// Distributed tracing, as every module uses it: off (and free) unless `ballast serve` was started with an
/// OTLP endpoint and installed a tracer, then one span per unit of work worth following across services.
///
/// Spans are opened only through this type, so "where does Ballast trace?" is one search (`Traces.`), and a
/// process with tracing off never builds a span, a context or a header: every entry point returns at once.
/// Work done later on behalf of a request (a notification's webhook, a shadow write) carries the request's
/// W3C `traceparent` in its durable row and continues the same trace from it (``continuing(_:_:kind:_:)``).
public enum Traces {
    private static let switchedOn = Atomic<Bool>(false)

    /// Whether a tracer is installed and spans are recorded.
    public static var isOn: Bool { switchedOn.load(ordering: .relaxed) }

    /// Turns spans on; called once, by the process that installed a tracer, before it serves anything.
    public static func switchOn() { switchedOn.store(true, ordering: .relaxed) }

    /// Runs `body` inside a span named `name`, a child of the current one; `body` gets the span (to add
    /// attributes), or nil when tracing is off. A thrown error is recorded on the span and marks it failed.
    public static func span<R>(
        _ name: String, kind: SpanKind = .internal, isolation: isolated (any Actor)? = #isolation,
        _ body: (_ span: (any Span)?) async throws -> R
    ) async rethrows -> R {
        guard isOn else { return try await body(nil) }
        return try await recording(name, context: InstrumentationContext.current ?? .topLevel, kind: kind, body)
    }

    /// Like ``span(_:kind:isolation:_:)``, but only inside a trace: with no span open (a background sweep's claim, a
    /// lease renewal) `body` runs untraced, so idle housekeeping does not fill the receiver with one-span traces.
    public static func childSpan<R>(
        _ name: String, kind: SpanKind = .internal, isolation: isolated (any Actor)? = #isolation,
        _ body: (_ span: (any Span)?) async throws -> R
    ) async rethrows -> R {
        guard isOn, let context = InstrumentationContext.current else { return try await body(nil) }
        return try await recording(name, context: context, kind: kind, body)
    }

    /// Runs `body` inside a span that continues the trace a stored `traceparent` names; a new trace when it is
    /// nil or unreadable. For work done after the request that asked for it has ended.
    public static func continuing<R>(
        _ traceParent: String?, _ name: String, kind: SpanKind = .internal, isolation: isolated (any Actor)? = #isolation,
        _ body: (_ span: (any Span)?) async throws -> R
    ) async rethrows -> R {
        guard isOn else { return try await body(nil) }
        var context = InstrumentationContext.topLevel
        if let traceParent {
            InstrumentationSystem.instrument.extract(
                [traceParentHeader: traceParent], into: &context, using: DictionaryExtractor())
        }
        return try await recording(name, context: context, kind: kind, body)
    }

    /// `body` in a span that is a child of `context`'s; a thrown error marks the span failed.
    private static func recording<R>(
        _ name: String, context: InstrumentationContext, kind: SpanKind, isolation: isolated (any Actor)? = #isolation,
        _ body: (_ span: (any Span)?) async throws -> R
    ) async rethrows -> R {
        try await withSpan(name, context: context, ofKind: kind) { span in
            do {
                return try await body(span)
            } catch {
                span.setStatus(SpanStatus(code: .error))
                throw error
            }
        }
    }

    /// Runs `body` inside a server span for one request (only called with tracing on: the middleware that calls it is
    /// installed only then): a child of the caller's span when its `traceparent` is a well-formed W3C one, else the
    /// root of a new trace. `tracestate` is carried only beside an accepted `traceparent`, and only when it is
    /// well formed. Both are checked here, before the tracer sees them, so a hostile header is neither used nor
    /// logged by it.
    public static func serving<R>(
        _ name: String, traceParent: String?, traceState: String?, isolation: isolated (any Actor)? = #isolation,
        _ body: (_ span: any Span) async throws -> R
    ) async rethrows -> R {
        var context = InstrumentationContext.current ?? .topLevel
        if let traceParent, isWellFormed(traceParent: traceParent) {
            var carrier = [traceParentHeader: traceParent]
            if let traceState, isWellFormed(traceState: traceState) { carrier[traceStateHeader] = traceState }
            InstrumentationSystem.instrument.extract(carrier, into: &context, using: DictionaryExtractor())
        }
        return try await withSpan(name, context: context, ofKind: .server, body)
    }

    /// The longest `tracestate` a caller's request may carry on (W3C: 32 members; 512 bytes holds them in practice).
    public static let maximumTraceStateLength = 512

    /// The length of a version-00 W3C `traceparent`, the only version read.
    public static let traceParentLength = 55

    /// Whether `value` is a version-00 W3C `traceparent`: `00-traceid-parentid-flags` in lower-case hex (2-32-16-2),
    /// neither id all zeros. A later version is not read (its fields are not known), so it starts a new trace.
    public static func isWellFormed(traceParent value: String) -> Bool {
        guard value.utf8.count == traceParentLength else { return false }
        let bytes = Array(value.utf8)
        func isHex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        func isZero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == 0x30 } }
        let dash = UInt8(ascii: "-")
        guard bytes[0] == 0x30, bytes[1] == 0x30, bytes[2] == dash, isHex(3..<35), bytes[35] == dash, isHex(36..<52),
              bytes[52] == dash, isHex(53..<55)
        else { return false }
        return !isZero(3..<35) && !isZero(36..<52)
    }

    /// Whether `value` is a W3C `tracestate` this process passes on: at most ``maximumTraceStateLength`` bytes and
    /// 32 members, each `key=value` (key: lower-case letters, digits and `_-*/`, starting with a letter or digit, at
    /// most 256, or `tenant@system`, at most 241 and 14; value: 1–256 printable ASCII characters but `,` and `=`,
    /// not ending in a space), separated by commas with optional spaces. Stricter than the standard where it allows
    /// oddities (empty members); a rejected one is dropped, the trace goes on.
    public static func isWellFormed(traceState value: String) -> Bool {
        guard value.utf8.count <= maximumTraceStateLength else { return false }
        let members = value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard members.count <= 32 else { return false }
        func isKeyCharacter(_ byte: UInt8) -> Bool {
            (0x61...0x7a).contains(byte) || (0x30...0x39).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "/")
        }
        func isKey(_ key: Substring.UTF8View.SubSequence, maximum: Int) -> Bool {
            guard let first = key.first, key.count <= maximum, (0x61...0x7a).contains(first) || (0x30...0x39).contains(first)
            else { return false }
            return key.allSatisfy(isKeyCharacter)
        }
        for (index, rawMember) in members.enumerated() {
            var member = rawMember[...]
            if index > 0 { member = member.drop { $0 == UInt8(ascii: " ") } }
            guard let equals = member.firstIndex(of: UInt8(ascii: "=")) else { return false }
            let key = member[..<equals], valuePart = member[member.index(after: equals)...]
            if let at = key.firstIndex(of: UInt8(ascii: "@")) {
                guard isKey(key[..<at], maximum: 241), isKey(key[key.index(after: at)...], maximum: 14) else { return false }
            } else {
                guard isKey(key, maximum: 256) else { return false }
            }
            guard !valuePart.isEmpty, valuePart.count <= 256, valuePart.last != UInt8(ascii: " "),
                  valuePart.allSatisfy({ (0x20...0x7e).contains($0) && $0 != UInt8(ascii: "=") })
            else { return false }
        }
        return true
    }

    /// The name of the W3C trace state header.
    public static let traceStateHeader = "tracestate"

    /// The name of the W3C trace context header.
    public static let traceParentHeader = "traceparent"

    /// The current span as a W3C `traceparent` value, to be stored with work that continues the trace later;
    /// nil when tracing is off or no span is open.
    public static func currentTraceParent() -> String? {
        guard let value = outboundHeaders()[traceParentHeader], value.utf8.count <= maximumStoredLength else { return nil }
        return value
    }

    /// The longest `traceparent` stored with a row (the stores' CHECK says the same); a W3C one has 55 characters.
    public static let maximumStoredLength = 128

    /// The headers that carry the current trace to a peer (`traceparent`, and `tracestate` when there is one);
    /// empty when tracing is off.
    public static func outboundHeaders() -> [String: String] {
        guard isOn, let context = InstrumentationContext.current else { return [:] }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier
    }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

private struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
