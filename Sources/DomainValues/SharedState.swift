import Synchronization

/// A value behind a lock, held by reference: for the mutable state of a service that is itself a value type.
public final class SharedState<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    public init(_ value: Value) { self.value = Mutex(value) }

    public func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}
