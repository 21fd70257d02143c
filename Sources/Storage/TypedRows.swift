import Logging
import PostgresNIO
import SQLKit

/// A value bound to a ``TypedQuery`` or a ``PreparedQuery``: the few types the hot paths bind.
public enum TypedValue: Sendable, Equatable {
    case integer(Int64)
    case text(String?)
    case boolean(Bool)
    /// Arrays, for a statement that takes a batch of rows (`unnest($1::bigint[], …)`).
    case integers([Int64])
    case texts([String])
    case booleans([Bool])
}

/// The declared type of a ``PreparedQuery`` parameter (the database plans the statement once, before any value).
public enum TypedParameter: Sendable {
    case integer, text, boolean
    case integers, texts, booleans
}

/// One row of a typed read, read column by column in the order the statement selects them.
public struct TypedRow {
    let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) { self.row = PostgresRandomAccessRow(row) }

    public func integer(_ column: Int) throws -> Int64 { try row[column].decode(Int64.self) }
    public func text(_ column: Int) throws -> String { try row[column].decode(String.self) }
    public func optionalText(_ column: Int) throws -> String? { try row[column].decode(String?.self) }
    public func boolean(_ column: Int) throws -> Bool { try row[column].decode(Bool.self) }
}

/// A read written for PostgreSQL (`$1`, `$2`… placeholders) whose rows are decoded with the driver's binary typed
/// rows: several times faster than the generic row layer, for the reads that walk whole tables (evidence
/// verification, the shadow verifier's scan). Only this module knows the driver.
///
/// The text is a `StaticString`: every value goes in `values`, bound, never pasted into the text.
public struct TypedQuery: Sendable {
    public let sql: String
    public let values: [TypedValue]

    public init(_ sql: StaticString, _ values: [TypedValue] = []) {
        self.sql = sql.description
        self.values = values
    }
}

/// A statement the database prepares once per connection and then only binds and runs: for the hottest write
/// (a debit), where parsing and planning the statement every time cost more than running it. PostgreSQL only.
public protocol PreparedQuery: Sendable {
    associatedtype Row: Sendable
    /// The statement's name on each connection: unique among prepared queries, at most 63 bytes (the database
    /// compares no more).
    static var name: String { get }
    /// The statement, with `$1`, `$2`… placeholders.
    static var sql: String { get }
    /// The placeholders' types, in order.
    static var parameters: [TypedParameter] { get }
    /// This run's values, in the order of ``parameters``.
    var values: [TypedValue] { get }
    /// One row of the answer.
    func decode(_ row: TypedRow) throws -> Row
}

extension Database {
    /// PostgreSQL only: `query` on a pooled connection (no transaction), each row decoded by `decode`; `nil` on
    /// SQLite, where the caller reads through the portable path.
    public func typedRows<R: Sendable>(
        _ query: TypedQuery, reserving capacity: Int = 0, _ decode: @escaping @Sendable (TypedRow) throws -> R
    ) async throws -> [R]? {
        try await withPostgresConnection { connection in
            var bindings = PostgresBindings(capacity: query.values.count)
            for value in query.values { bindings.append(value) }
            var rows: [R] = []
            rows.reserveCapacity(capacity)
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: query.sql, binds: bindings), logger: quietLogger) {
                rows.append(try decode(TypedRow(row)))
            }
            return rows
        }
    }
}

extension SQLDatabase {
    /// On a leased PostgreSQL connection, runs `query` as a named prepared statement: the server parses and plans it
    /// once per connection, and every later run is one Bind/Execute. Runs under the connection's watch like every
    /// other statement. `nil` when `self` is not a leased PostgreSQL connection (SQLite): the caller runs its
    /// portable statement.
    public func prepared<Query: PreparedQuery>(_ query: Query) async throws -> [Query.Row]? {
        try await prepared(PreparedAdapter(query: query))
    }
}

/// A ``PreparedQuery`` as the driver runs it, under the query's name, so each is prepared once per connection.
struct PreparedAdapter<Query: PreparedQuery>: PostgresPreparedStatement {
    typealias Row = Query.Row

    static var name: String {
        assert(Query.name.utf8.count <= 63, "a prepared statement's name is compared on its first 63 bytes only")
        return Query.name
    }
    static var sql: String { Query.sql }
    static var bindingDataTypes: [PostgresDataType] {
        Query.parameters.map {
            switch $0 {
            case .integer: .int8
            case .text: .text
            case .boolean: .bool
            case .integers: .int8Array
            case .texts: .textArray
            case .booleans: .boolArray
            }
        }
    }

    let query: Query

    func makeBindings() -> PostgresBindings {
        let values = query.values
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Query.Row { try query.decode(TypedRow(row)) }
}

extension PostgresBindings {
    fileprivate mutating func append(_ value: TypedValue) {
        switch value {
        case .integer(let integer): append(integer)
        case .text(let text): append(text)
        case .boolean(let boolean): append(boolean)
        case .integers(let integers): append(integers)
        case .texts(let texts): append(texts)
        case .booleans(let booleans): append(booleans)
        }
    }
}

private let quietLogger = Logger(label: "ballast.postgres.typed", factory: { _ in SwiftLogNoOpLogHandler() })
