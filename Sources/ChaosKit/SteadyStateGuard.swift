import Foundation
import Synchronization

/// Counts primary requests and their 5xx answers over the last 60 seconds, in one-second buckets, so chaos can
/// switch itself off when the system stops being steady (SPEC §6).
public final class SteadyStateGuard: Sendable {
    public static let windowSeconds = 60
    /// Fewer requests than this in the window never trip the guard (too little to judge).
    public static let minimumRequests = 100

    private struct Bucket {
        var second: Int64 = -1
        var total = 0
        var errors = 0
    }

    private let buckets = Mutex([Bucket](repeating: Bucket(), count: SteadyStateGuard.windowSeconds))

    public init() {}

    /// Records one finished primary request.
    public func record(serverError: Bool, at now: Date = Date()) {
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        let index = Int(second % Int64(Self.windowSeconds))
        buckets.withLock { buckets in
            if buckets[index].second != second { buckets[index] = Bucket(second: second) }
            buckets[index].total += 1
            if serverError { buckets[index].errors += 1 }
        }
    }

    /// Requests and 5xx answers in the last 60 s.
    public func window(at now: Date = Date()) -> (total: Int, errors: Int) {
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        return buckets.withLock { buckets in
            buckets.reduce(into: (0, 0)) { sum, bucket in
                if bucket.second > second - Int64(Self.windowSeconds) && bucket.second <= second {
                    sum.0 += bucket.total
                    sum.1 += bucket.errors
                }
            }
        }
    }

    /// Why injection must stop, or nil: more than `abortErrorRate` of at least 100 requests in the last minute
    /// ended in a 5xx.
    public func tripReason(abortErrorRate: Double, at now: Date = Date()) -> String? {
        let (total, errors) = window(at: now)
        guard total >= Self.minimumRequests else { return nil }
        let rate = Double(errors) / Double(total)
        guard rate > abortErrorRate else { return nil }
        return String(format: "steady-state guard: %d of %d primary requests in the last 60 s ended in 5xx (%.2f%% > %.2f%%)",
                      errors, total, rate * 100, abortErrorRate * 100)
    }
}
