import NIOCore
import PostgresNIO
import SQLKit
import Synchronization

/// Makes a dropped PostgreSQL connection fail its statements instead of leaving them waiting for ever.
///
/// The driver answers a statement by a promise its channel handler completes. Once the server has gone (a crash, a
/// terminated session), the connection's channel closes and its handlers leave the pipeline; a statement written
/// after that point reaches no handler, and its promise is never completed: the caller would wait for ever, holding
/// its pool slot (a transaction whose first statement failed waits on its `ROLLBACK`, for one). So every statement
/// on a leased connection runs under a watch on that connection: when the connection closes, the statement in
/// flight fails with ``StorageError/unavailable(_:)`` and every later one fails at once. (The driver's own promise
/// for the abandoned statement is left behind; that is a few hundred bytes per connection lost mid-statement.)
final class ConnectionWatch: Sendable {
    private struct State {
        var closed = false
        /// The statement in flight, if any (a connection runs one at a time).
        var inFlight: [ObjectIdentifier: Completion<Void>] = [:]
    }

    /// Completes a statement's promise once, whichever comes first: its answer or the connection's end.
    final class Completion<Value: Sendable>: Sendable {
        let promise: EventLoopPromise<Value>
        private let done = Atomic<Bool>(false)

        init(_ promise: EventLoopPromise<Value>) {
            self.promise = promise
        }

        func complete(_ result: Result<Value, any Error>) {
            guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
            promise.completeWith(result)
        }
    }

    static let closedError = StorageError.unavailable("the connection to the database closed")

    private let state = Mutex(State())

    /// Watches `connection` until it closes.
    init(_ connection: PostgresConnection) {
        connection.closeFuture.whenComplete { [self] _ in
            let pending = state.withLock { state -> [Completion<Void>] in
                state.closed = true
                defer { state.inFlight = [:] }
                return Array(state.inFlight.values)
            }
            for completion in pending { completion.complete(.failure(Self.closedError)) }
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// The prepared statements this connection has prepared successfully. The driver keeps a statement whose
    /// preparation failed failed for the connection's life, but one that was prepared stays usable after a later
    /// run fails (a deadlock, a serialization failure, a timeout): only a failure before this is known retires the
    /// connection.
    private let prepared = Mutex<Set<String>>([])

    func hasPrepared(_ name: String) -> Bool { prepared.withLock { $0.contains(name) } }

    func notePrepared(_ name: String) { _ = prepared.withLock { $0.insert(name) } }

    /// Runs `statement`, answering when it answers or, if the connection closes first, with an error.
    func run(on eventLoop: any EventLoop, _ statement: () -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        let completion = Completion(eventLoop.makePromise(of: Void.self))
        let key = ObjectIdentifier(completion)
        let open = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.inFlight[key] = completion
            return true
        }
        guard open else {
            completion.complete(.failure(Self.closedError))
            return completion.promise.futureResult
        }
        statement().whenComplete { [self] result in
            _ = state.withLock { $0.inFlight.removeValue(forKey: key) }
            completion.complete(result)
        }
        return completion.promise.futureResult
    }

    /// Runs `body` (any use of the connection), answering when it ends or, if the connection closes first, with an
    /// error. `body` runs in a task of its own, which a statement lost to the closed connection leaves suspended.
    func run<R: Sendable>(_ body: @escaping @Sendable () async throws -> R) async throws -> R {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        let answer = Completion(eventLoop.makePromise(of: R.self))
        do {
            try await run(on: eventLoop) {
                Task {
                    do { answer.complete(.success(try await body())) } catch { answer.complete(.failure(error)) }
                }
                return answer.promise.futureResult.map { _ in }
            }.get()
        } catch {
            // The connection closed first: nothing will answer the statement, so its promise is failed here.
            answer.complete(.failure(error))
            throw error
        }
        return try await answer.promise.futureResult.get()
    }

}

/// A leased connection's `SQLDatabase`, every statement under the connection's ``ConnectionWatch``.
struct WatchedSQLDatabase: SQLDatabase {
    let base: any SQLDatabase
    let watch: ConnectionWatch
    /// The connection itself, for statements the driver prepares once per connection (``SQLDatabase/prepared(_:)``).
    let connection: PostgresConnection
    /// The lease, so a failed prepared statement can retire the connection.
    let lease: ConnectionLease

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        watch.run(on: base.eventLoop) { base.execute(sql: query, onRow) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await execute(sql: query, onRow).get()
    }
}
