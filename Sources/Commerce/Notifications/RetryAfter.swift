import DomainValues
/// A peer's `Retry-After` header (RFC 9110 §10.2.3): a number of seconds or an HTTP date. A peer's number is
/// hostile input, so nothing here can trap: digits are read with a bound, dates with a fixed grammar, and the
/// wait is clamped to `0…maximumSeconds` (a receiver cannot park a notification for a century, or crash the
/// process that reads its answer).
public struct RetryAfter: Sendable, Equatable {
    /// Seconds to wait, within `0…maximumSeconds`.
    public let seconds: Int64
    /// Whether the peer asked for more than the maximum (or a time in the past) and was clamped.
    public let clamped: Bool

    public init(seconds: Int64, clamped: Bool) {
        self.seconds = seconds
        self.clamped = clamped
    }

    /// The wait `value` asks for, read at `nowSeconds` (Unix time); nil when the header is absent or is neither form.
    public static func parse(_ value: String?, nowSeconds: Int64, maximumSeconds: Int64) -> RetryAfter? {
        precondition(maximumSeconds >= 0, "the maximum wait is not negative")
        guard let value else { return nil }
        let text = value.trimmingASCIISpaces()
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            // delay-seconds: any number of digits; past 18 it is more than any maximum.
            guard text.utf8.count <= 18, let seconds = Int64(text) else { return RetryAfter(seconds: maximumSeconds, clamped: true) }
            return seconds > maximumSeconds ? RetryAfter(seconds: maximumSeconds, clamped: true) : RetryAfter(seconds: seconds, clamped: false)
        }
        guard let date = HTTPDate.seconds(text) else { return nil }
        let wait = date - nowSeconds
        if wait < 0 { return RetryAfter(seconds: 0, clamped: false) }
        return wait > maximumSeconds ? RetryAfter(seconds: maximumSeconds, clamped: true) : RetryAfter(seconds: wait, clamped: false)
    }
}

/// HTTP dates (RFC 9110 §5.6.7), the three forms a recipient must accept: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). Answers Unix seconds; nil for anything else.
public enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    static let longDays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    public static func seconds(_ text: String) -> Int64? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if parts.count == 6, parts[0].hasSuffix(","), days.contains(String(parts[0].dropLast())), parts[5] == "GMT" {
            // IMF-fixdate: day-name "," SP date1 SP time-of-day SP GMT, date1 = day SP month SP year.
            guard parts[1].utf8.count == 2, let day = number(parts[1]), let month = months.firstIndex(of: parts[2]),
                  parts[3].utf8.count == 4, let year = number(parts[3])
            else { return nil }
            return compose(year: year, month: Int64(month) + 1, day: day, time: parts[4])
        }
        if parts.count == 4, parts[0].hasSuffix(","), longDays.contains(String(parts[0].dropLast())), parts[3] == "GMT" {
            // RFC 850: day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP GMT.
            let date = parts[1].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard date.count == 3, date[0].utf8.count == 2, let day = number(date[0]), let month = months.firstIndex(of: date[1]),
                  date[2].utf8.count == 2, let shortYear = number(date[2])
            else { return nil }
            // Two-digit years: the RFC's rule of thumb, read as within 50 years (1970–2069).
            let year = shortYear < 70 ? 2000 + shortYear : 1900 + shortYear
            return compose(year: year, month: Int64(month) + 1, day: day, time: parts[2])
        }
        if parts.count == 5, days.contains(parts[0]) {
            // asctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT )) SP time-of-day SP year.
            guard let month = months.firstIndex(of: parts[1]), (1...2).contains(parts[2].utf8.count), let day = number(parts[2]),
                  parts[4].utf8.count == 4, let year = number(parts[4])
            else { return nil }
            return compose(year: year, month: Int64(month) + 1, day: day, time: parts[3])
        }
        return nil
    }

    private static func number(_ text: String) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 4, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }

    private static func compose(year: Int64, month: Int64, day: Int64, time: String) -> Int64? {
        let clock = time.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard clock.count == 3, clock.allSatisfy({ $0.utf8.count == 2 }), let hour = number(clock[0]), let minute = number(clock[1]),
              let second = number(clock[2]), hour <= 23, minute <= 59, second <= 60,
              day >= 1, day <= RFC3339Time.daysIn(month: month, year: year)
        else { return nil }
        return RFC3339Time.daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + min(second, 59)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (HTTP's optional white space).
    func trimmingASCIISpaces() -> String {
        let bytes = Array(utf8)
        var start = 0, end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
