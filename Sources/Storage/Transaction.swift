import Logging
import NIOCore
import SQLKit

/// A write transaction in progress on one pinned connection of a store. Only ``Database/transaction(_:)`` makes
/// one, so a function that takes a `Transaction` can only run inside one: "must run inside a transaction" is
/// checked by the compiler, not by a comment. It speaks SQL like the connection it wraps; it commits when the
/// closure that received it returns and rolls back when it throws.
public struct Transaction: SQLDatabase {
    /// The connection the transaction runs on (every statement goes through its watch).
    let connection: any SQLDatabase

    init(_ connection: any SQLDatabase) {
        self.connection = connection
    }

    public var logger: Logger { connection.logger }
    public var eventLoop: any EventLoop { connection.eventLoop }
    public var version: (any SQLDatabaseReportedVersion)? { connection.version }
    public var dialect: any SQLDialect { connection.dialect }
    public var queryLogLevel: Logger.Level? { connection.queryLogLevel }

    public func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        connection.execute(sql: query, onRow)
    }

    public func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await connection.execute(sql: query, onRow)
    }
}
