import BallastCore
import Testing

/// A caller's trace headers are input: only well-formed W3C values reach the tracer.
@Suite("Trace headers")
struct TraceHeaderTests {
    static let traceId = "4bf92f3577b34da6a3ce929d0e0e4736", spanId = "00f067aa0ba902b7"

    @Test(arguments: [
        "00-\(traceId)-\(spanId)-01",
        "00-\(traceId)-\(spanId)-00",
        "00-\(traceId)-\(spanId)-ff",
    ])
    func acceptsVersionZero(_ value: String) {
        #expect(Traces.isWellFormed(traceParent: value))
    }

    @Test(arguments: [
        "",
        "00-\(traceId)-\(spanId)-01-",                      // version 00 has nothing after the flags
        "01-\(traceId)-\(spanId)-01",                       // a later version: fields unknown, not read
        "ff-\(traceId)-\(spanId)-01",                       // the forbidden version
        "00-\(traceId.uppercased())-\(spanId)-01",          // upper-case hex
        "00-\(String(repeating: "0", count: 32))-\(spanId)-01",
        "00-\(traceId)-\(String(repeating: "0", count: 16))-01",
        "00-\(traceId)-\(spanId)_01",
        "00-\(traceId.dropLast())g-\(spanId)-01",
        "00-\(traceId)-\(spanId)-0",
        "00-\(traceId)-\(spanId)-01" + String(repeating: "x", count: 10_000),
        "00-\(String(traceId.dropLast()))é-\(spanId)-01",   // 55 bytes only with a two-byte character
    ])
    func refusesTheRest(_ value: String) {
        #expect(!Traces.isWellFormed(traceParent: value))
    }

    @Test(arguments: [
        "congo=t61rcWkgMzE",
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE",
        "fw529a3039@dt=ZGQ",
        "a_b-c*d/e=value with spaces inside",
        String(repeating: "k", count: 256) + "=v",
        "k=" + String(repeating: "v", count: 256),
        (1...32).map { "k\($0)=v" }.joined(separator: ","),
    ])
    func acceptsWellFormedTraceState(_ value: String) {
        #expect(Traces.isWellFormed(traceState: value))
    }

    @Test(arguments: [
        "",
        "Congo=t61rcWkgMzE",                                // upper-case key
        "congo",                                            // no value
        "congo=",                                           // empty value
        "congo=a=b",                                        // '=' in the value
        "congo=t61,,rojo=1",                                // an empty member
        "congo=t61 ",                                       // trailing space in the value
        " congo=t61",                                       // leading space before the first member
        "_congo=t61",                                       // key starts with neither a letter nor a digit
        "congo=caf\u{e9}",                                  // non-ASCII value
        "congo=a\u{7f}",                                    // DEL
        "tenant@" + String(repeating: "s", count: 15) + "=v",
        String(repeating: "t", count: 242) + "@s=v",
        String(repeating: "k", count: 257) + "=v",
        "k=" + String(repeating: "v", count: 257),
        (1...33).map { "k\($0)=v" }.joined(separator: ","),
        String(repeating: "a=b,", count: 200),
    ])
    func refusesMalformedTraceState(_ value: String) {
        #expect(!Traces.isWellFormed(traceState: value))
    }

    /// Whatever bytes arrive, the checks answer (no trap) and accept only what the grammar allows.
    @Test func generatedHeadersNeverTrapAndAcceptOnlyTheGrammar() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF-_=,@ \u{7f}é\u{0}zk")
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...70, using: &generator)
            let value = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            if Traces.isWellFormed(traceParent: value) {
                #expect(value.utf8.count == 55 && value.hasPrefix("00-"), "\(value)")
            }
            if Traces.isWellFormed(traceState: value) {
                #expect(value.contains("=") && !value.contains("\u{0}") && !value.contains("é"), "\(value)")
            }
        }
    }
}
