import BallastConfig

extension ChaosScope {
    /// The kinds of fault point a scope lets fail. Widening is strictly nested: reads ⊃ all_writes ⊃ shadow.
    public func includes(_ kind: FaultPoint.Kind) -> Bool {
        switch (self, kind) {
        case (_, .shadowWrite): return true
        case (.allWrites, .nonCriticalWrite), (.reads, .nonCriticalWrite): return true
        case (.reads, .read): return true
        default: return false
        }
    }

    /// Whether the scope may be used in `environment` (read-path faults only in development and test).
    public func isAllowed(in environment: AppEnvironment) -> Bool {
        self != .reads || environment == .development || environment == .test
    }
}
