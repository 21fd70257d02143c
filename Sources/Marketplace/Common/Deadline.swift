/// Bounds how long a piece of work may take.
public enum Deadline {
    /// The work did not finish in time (it was cancelled).
    public struct Passed: Error, Sendable, Equatable {}

    /// Runs `operation`, throwing ``Passed`` (and cancelling it) when it has not finished after `timeout`.
    public static func run(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await operation()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else { throw Passed() }
        }
    }
}
