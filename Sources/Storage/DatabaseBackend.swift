import PostgresNIO
import SQLKit
import Synchronization

/// A pool of connections to one kind of database. `Database` adds the transaction helper on top.
protocol DatabaseBackend: Sendable {
    /// Lends one connection to `body`, waiting at most `wait` for one to be free. (Write transactions go through
    /// ``writeTransaction(wait:_:)``, where SQLite queues this process's writers.)
    func withConnection<R: Sendable>(
        wait: Duration, _ body: (any SQLDatabase, ConnectionLease) async throws -> R
    ) async throws -> R

    /// Runs `body` in one write transaction (commits when it returns, rolls back when it throws), waiting at most
    /// `wait` for a connection. Retrying is the caller's.
    func writeTransaction<R: Sendable>(wait: Duration, _ body: (any SQLDatabase) async throws -> R) async throws -> R

    /// Keeps the pool open until cancelled or shut down gracefully.
    func run() async throws

    /// PostgreSQL's own connection for typed hot paths; nil for other backends.
    func withPostgresConnection<R: Sendable>(wait: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R?
}

extension DatabaseBackend {
    func withPostgresConnection<R: Sendable>(wait: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R? {
        nil
    }
}

/// Handed to whoever holds a connection, so it can say the connection must not be reused.
final class ConnectionLease: Sendable {
    private let broken = Mutex(false)

    func markBroken() { broken.withLock { $0 = true } }
    var isBroken: Bool { broken.withLock { $0 } }
}
