/// Bounds how long a piece of work may take.
public enum Deadline {
    /// The work did not finish in time (it was cancelled).
    public struct Passed: Error, Sendable, Equatable {}

    /// Runs `operation` and answers its value, throwing ``Passed`` (and cancelling it) when it has not finished
    /// after `timeout`.
    public static func run<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw Passed() }
            return value
        }
    }
}
