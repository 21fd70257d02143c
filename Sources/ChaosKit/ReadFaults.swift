/// The read fault points (`read.listing`, `read.product`, `read.order`, `read.wallet`; scope `reads`, which only
/// development and test allow): one call at the top of each entity's read paths. A fault that fires throws
/// ``InjectedFault``, which the API answers with 503 `fault_injected` and `Retry-After: 1`; with
/// CHAOS_LATENCY_MS it is a delay instead.
public struct ReadFaults: Sendable {
    let injector: FaultInjector?

    /// No read faults (services built without an injector, e.g. by tools and benchmarks).
    public static let none = ReadFaults(injector: nil)

    public init(injector: FaultInjector?) {
        self.injector = injector
    }

    public func strike(_ point: FaultPoint, entityId: String? = nil, requestId: String?) async throws {
        try await injector?.strike(point, entityId: entityId, requestId: requestId)
    }
}
