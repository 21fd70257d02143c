import DomainValues
import Evidence
import Foundation
@testable import Commerce
import NIOCore
import PropertyBased
import Testing

/// Every parser of a peer's answer, fed absurd values: it never traps, and what it answers is inside its bounds.
@Suite("Peer parsers, generated", .timeLimit(.minutes(10)))
struct PeerParserPropertyTests {
    static let maximum: Int64 = 86_400

    /// An independent reading of an HTTP date (Foundation's formatter, fixed locale and zone).
    static func httpDate(_ seconds: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    @Test func retryAfterSecondsOfAnyLengthStayInsideTheBound() async {
        let digits = Gen.character(in: "0"..."9").string(of: 1...40)
        await propertyCheck(count: 3000, input: digits) { text in
            guard let wait = RetryAfter.parse(text, nowSeconds: 1_800_000_000, maximumSeconds: Self.maximum) else {
                Issue.record("digits not read: \(text)")
                return
            }
            #expect((0...Self.maximum).contains(wait.seconds))
            if let exact = Int64(text), exact <= Self.maximum {
                #expect(wait.seconds == exact && !wait.clamped)
            } else {
                #expect(wait.seconds == Self.maximum && wait.clamped, "\(text)")
            }
        }
    }

    @Test func retryAfterDatesAreReadExactlyAndClamped() async {
        let now: Int64 = 1_800_000_000
        await propertyCheck(count: 2000, input: Gen.int64(in: 0...253_402_300_799)) { seconds in
            let text = Self.httpDate(seconds)
            guard let wait = RetryAfter.parse(text, nowSeconds: now, maximumSeconds: Self.maximum) else {
                Issue.record("an HTTP date not read: \(text)")
                return
            }
            #expect(wait.seconds == min(max(0, seconds - now), Self.maximum), "\(text)")
            #expect(HTTPDate.seconds(text) == seconds, "\(text)")
        }
        #expect(HTTPDate.seconds("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.seconds("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.seconds("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
    }

    @Test func retryAfterGarbageIsNeverATrap() async {
        await propertyCheck(count: 3000, input: HostileText.text(0...80)) { text in
            if let wait = RetryAfter.parse(text, nowSeconds: Int64.max - 10, maximumSeconds: Self.maximum) {
                #expect((0...Self.maximum).contains(wait.seconds))
            }
            if let wait = RetryAfter.parse(text, nowSeconds: Int64.min + 10, maximumSeconds: Self.maximum) {
                #expect((0...Self.maximum).contains(wait.seconds))
            }
        }
        #expect(RetryAfter.parse("-5", nowSeconds: 0, maximumSeconds: 60) == nil)
        #expect(RetryAfter.parse(" 30 ", nowSeconds: 0, maximumSeconds: 60) == RetryAfter(seconds: 30, clamped: false))
        #expect(RetryAfter.parse("Fri, 31 Dec 9999 23:59:59 GMT", nowSeconds: 0, maximumSeconds: 60)
                == RetryAfter(seconds: 60, clamped: true))
        #expect(RetryAfter.parse("Mon, 30 Feb 2026 00:00:00 GMT", nowSeconds: 0, maximumSeconds: 60) == nil)
    }

    @Test func shippingRepliesAreAnAmountInRangeOrAFailedCall() async {
        let amount = Gen<String>.oneOf(
            Gen.int64().map { String($0) }, Gen.int64(in: -2...10_000_002).map { String($0) },
            Gen.double(in: -1e30...1e30).map { String($0) }, Gen.always("1e400"), Gen.always("-0"), Gen.always("null"),
            Gen.always("\"700\""), Gen.always("[700]"), Gen.always(String(repeating: "9", count: 400)))
        let currency = Gen<String>.oneOf(Gen.always("\"USD\""), Gen.always("\"usd\""), Gen.always("null"), Gen.always("1"))
        await propertyCheck(count: 3000, input: amount, currency) { amount, currency in
            let reply = ByteBuffer(string: #"{"amount":\#(amount),"currency":\#(currency)}"#)
            do {
                let parsed = try ProviderShippingRates.validate(reply)
                #expect((0...ProviderShippingRates.maximumAmount).contains(parsed), "\(amount)")
                #expect(currency == "\"USD\"")
            } catch is ProviderShippingRates.FailedCall {
                // A failed call: the table's price is used instead.
            } catch {
                Issue.record("not a failed call: \(error)")
            }
        }
    }

    @Test func rfc3339TimesRoundTripAndGarbageIsRefused() async {
        // Any time from year 1 to 9999, written as the API writes it, reads back to the same microsecond.
        await propertyCheck(count: 3000, input: Gen.int64(in: -62_135_596_800_000_000...253_402_300_799_999_999)) { micros in
            let written = EvidenceTime.rfc3339(micros: micros)
            #expect(RFC3339Time.micros(written) == micros, "\(written)")
        }
        // With an offset, the same instant.
        #expect(RFC3339Time.micros("2026-01-31T12:00:00+01:30") == RFC3339Time.micros("2026-01-31T10:30:00Z"))
        #expect(RFC3339Time.micros("2026-01-31t12:00:00.5z") == RFC3339Time.micros("2026-01-31T12:00:00.500000Z"))
        #expect(RFC3339Time.micros("2026-02-29T00:00:00Z") == nil)
        #expect(RFC3339Time.micros("2026-01-31T24:00:00Z") == nil)
        await propertyCheck(count: 3000, input: HostileText.text(0...40)) { text in
            _ = RFC3339Time.micros(text)
        }
    }
}

