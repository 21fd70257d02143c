/// The one place a `Duration` becomes a number of units: metrics, log lines, stored microseconds and error texts
/// all convert through these, so none of them re-derives nanoseconds from seconds and attoseconds by hand.
extension Duration {
    /// Whole nanoseconds, toward zero; clamped to the range of `Int64` (about 292 years).
    public var wholeNanoseconds: Int64 { whole(per: 1_000_000_000) }
    /// Whole microseconds, toward zero; clamped to the range of `Int64`.
    public var wholeMicroseconds: Int64 { whole(per: 1_000_000) }
    /// Whole milliseconds, toward zero; clamped to the range of `Int64`.
    public var wholeMilliseconds: Int64 { whole(per: 1_000) }
    /// Whole seconds, toward zero.
    public var wholeSeconds: Int64 { whole(per: 1) }
    /// Seconds as a floating-point number (for metrics and reports).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// Milliseconds as a floating-point number (for log lines).
    public var inMilliseconds: Double { inSeconds * 1_000 }

    private func whole(per second: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: second)
        let (sum, carry) = scaled.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / second))
        if overflow || carry { return seconds < 0 ? .min : .max }
        return sum
    }
}
