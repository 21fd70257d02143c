/// Arithmetic on a target's figures that never traps.
extension Int64 {
    /// `self + other`, held at the ends of the range instead of trapping: sums of a target's figures (which may
    /// be absurd) never crash the runner.
    func saturatingAdding(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    func saturatingSubtracting(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other > 0 ? .min : .max
    }
}

extension Int {
    /// A metric's value as a count: non-finite or absurd values (a target may send anything) held within ±10^15.
    init(figure value: Double) {
        guard value.isFinite else {
            self = value.isNaN ? 0 : (value > 0 ? 1_000_000_000_000_000 : -1_000_000_000_000_000)
            return
        }
        self = Int(Swift.max(-1e15, Swift.min(1e15, value.rounded())))
    }
}
