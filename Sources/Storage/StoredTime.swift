import Foundation

/// Times are stored as whole microseconds since the Unix epoch (`…_at_micros BIGINT`): exact, ordered, and the
/// same SQL on both dialects. The API shows them as RFC 3339 UTC.
public enum StoredTime {
    public static func nowMicros() -> Int64 {
        micros(from: Date())
    }

    public static func micros(from date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
    }

    public static func date(fromMicros micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}
