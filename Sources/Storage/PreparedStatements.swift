import Logging
import PostgresNIO
import SQLKit

extension SQLDatabase {
    /// On a leased PostgreSQL connection, runs `statement` as a named prepared statement: the server parses and
    /// plans it once per connection, and every later run is one Bind/Execute. For the hot paths (a debit, the
    /// transaction's own BEGIN and COMMIT), where parsing and planning the statement every time cost the database
    /// more than running it. Runs under the connection's watch like every other statement.
    ///
    /// `nil` when `self` is not a leased PostgreSQL connection (SQLite): the caller runs its portable statement.
    func prepared<Statement: PostgresPreparedStatement>(
        _ statement: Statement
    ) async throws -> [Statement.Row]? where Statement.Row: Sendable {
        let leased = (self as? Transaction)?.connection ?? self
        guard let watched = leased as? WatchedSQLDatabase else { return nil }
        let connection = watched.connection
        let wasPrepared = watched.watch.hasPrepared(Statement.name)
        do {
            let rows = try await watched.watch.run {
                var rows: [Statement.Row] = []
                for try await row in try await connection.execute(statement, logger: preparedStatementLogger) {
                    rows.append(row)
                }
                return rows
            }
            if !wasPrepared { watched.watch.notePrepared(Statement.name) }
            return rows
        } catch {
            // The driver remembers a statement whose preparation failed (a lock or statement timeout, a cancel, a
            // schema change under it) for the connection's life and fails every later use of it at once; so a
            // connection on which a prepared statement failed before it was known to be prepared is not lent
            // again. A failure of a statement prepared earlier (a deadlock, a serialization failure) leaves the
            // connection as good as any other, unless the server says the prepared statement itself is no longer
            // usable (its plan changed under it, after a migration by another process): that one never heals.
            if !wasPrepared || ErrorClassifier.isUnusablePreparedStatement(error) { watched.lease.markBroken() }
            throw error
        }
    }
}

private let preparedStatementLogger = Logger(label: "ballast.postgres.prepared", factory: { _ in SwiftLogNoOpLogHandler() })

/// `BEGIN`, prepared once per connection. (`COMMIT` stays an unnamed statement: its answer is completed on the
/// event loop in the same read that brings it, so a connection closing right after cannot overtake a commit that
/// happened and turn it into an error.)
enum TransactionStatement {
    struct Begin: PostgresPreparedStatement {
        typealias Row = Int
        static let name = "ballast.begin"
        static let sql = "BEGIN"
        func makeBindings() -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Int { 0 }
    }
}
