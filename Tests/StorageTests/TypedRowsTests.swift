import BallastTestSupport
import SQLKit
import Storage
import Synchronization
import Testing

/// The driver-neutral fast paths: a prepared query is prepared once per connection and then only bound and run; a
/// typed read decodes every column type it offers; on SQLite both answer nil and the caller takes the portable path.
@Suite("Typed rows and prepared queries", .timeLimit(.minutes(10)))
struct TypedRowsTests {
    struct AddToCounter: PreparedQuery {
        static let name = "test.add_to_counter"
        static let sql = "UPDATE counters SET value = value + $1 WHERE id = $2 AND $3 RETURNING value, $4::text"
        static let parameters: [TypedParameter] = [.integer, .integer, .boolean, .text]
        let amount: Int64
        let note: String?
        var values: [TypedValue] { [.integer(amount), .integer(1), .boolean(true), .text(note)] }
        func decode(_ row: TypedRow) throws -> (Int64, String?) { (try row.integer(0), try row.optionalText(1)) }
    }

    @Test(arguments: TestStores.kinds)
    func aPreparedQueryIsPreparedOncePerConnection(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind, poolSize: 1) { database in
            try await TransactionTests.makeCounterTable(database)
            var answers: [(Int64, String?)] = []
            for note in ["first", nil, "third"] {
                let rows = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: 5, note: note)) }
                guard kind == .postgres else {
                    #expect(rows == nil, "SQLite takes the portable path")
                    return
                }
                answers.append(contentsOf: try #require(rows))
            }
            #expect(answers.map(\.0) == [5, 10, 15])
            #expect(answers.map(\.1) == ["first", nil, "third"])
            // One connection: the statement the three runs used is prepared on it, once, under the query's name.
            let prepared = try await database.transaction { sql in
                try await sql.raw("SELECT name FROM pg_prepared_statements WHERE name = 'test.add_to_counter'").all()
                    .map { try $0.decode(column: "name", as: String.self) }
            }
            #expect(prepared.count == 1, "\(prepared)")
        }
    }

    @Test(arguments: TestStores.kinds)
    func aTypedReadDecodesEveryColumnType(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let query = TypedQuery(
                "SELECT $1::bigint + 1, $2::text, CAST(NULL AS TEXT), $3::boolean FROM generate_series(1, 3)",
                [.integer(41), .text("é 漢字"), .boolean(true)])
            let rows = try await database.typedRows(query, reserving: 3) { row in
                (try row.integer(0), try row.text(1), try row.optionalText(2), try row.boolean(3))
            }
            guard kind == .postgres else {
                #expect(rows == nil)
                return
            }
            let read = try #require(rows)
            #expect(read.count == 3)
            #expect(read.allSatisfy { $0.0 == 42 && $0.1 == "é 漢字" && $0.2 == nil && $0.3 })
            // A column read as the wrong type is an error, never a wrong value.
            await #expect(throws: (any Error).self) {
                _ = try await database.typedRows(TypedQuery("SELECT 'text'::text")) { try $0.integer(0) }
            }
        }
    }

    /// Adds to both counters in one statement; a negative amount breaks the CHECK on the second one only.
    struct AddToBoth: PreparedQuery {
        static let name = "test.add_to_both"
        static let sql = """
            WITH a AS (UPDATE counters SET value = value + $1 WHERE id = 1 RETURNING value),
                 b AS (UPDATE counters SET value = value + $2 WHERE id = 2 RETURNING value)
            SELECT a.value, b.value FROM a, b
            """
        static let parameters: [TypedParameter] = [.integer, .integer]
        let first: Int64
        let second: Int64
        var values: [TypedValue] { [.integer(first), .integer(second)] }
        func decode(_ row: TypedRow) throws -> [Int64] { [try row.integer(0), try row.integer(1)] }
    }

    /// A transaction of one statement: the statement commits by itself, all of it or none of it, and leaves no
    /// transaction open behind it (its row locks are free the moment it answers). SQLite runs nothing and answers nil.
    @Test(arguments: TestStores.kinds)
    func aTransactionOfOneStatementCommitsAllOrNothing(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind, poolSize: 2) { database in
            try await TransactionTests.makeCounterTable(database)
            func counters() async throws -> [Int64] {
                try await database.read { sql in
                    try await sql.raw("SELECT value FROM counters ORDER BY id").all().map { try $0.decode(column: "value", as: Int64.self) }
                }
            }
            let made = Mutex(0)
            let rows = try await database.transactionOfOne({ () -> AddToBoth in
                made.withLock { $0 += 1 }
                return AddToBoth(first: 5, second: 7)
            }, then: { rows, _ in rows })
            guard kind == .postgres else {
                #expect(rows == nil && made.withLock { $0 } == 0, "SQLite runs nothing")
                #expect(try await counters() == [0, 0])
                return
            }
            #expect(rows?.map { $0 } == [[5, 7]])
            #expect(try await counters() == [5, 7])
            // Nothing held: another transaction takes both rows at once (it would wait, and fail here, behind a
            // transaction left open).
            try await database.transaction { sql in
                try await sql.raw("SET LOCAL lock_timeout = '200ms'").run()
                try await sql.raw("UPDATE counters SET value = value + 1").run()
            }
            #expect(try await counters() == [6, 8])
            // The second update breaks its CHECK: neither is kept.
            await #expect(throws: (any Error).self) {
                _ = try await database.transactionOfOne({ AddToBoth(first: 5, second: -100) }, then: { rows, _ in rows })
            }
            #expect(try await counters() == [6, 8])
            try await database.transaction { sql in
                try await sql.raw("SET LOCAL lock_timeout = '200ms'").run()
                try await sql.raw("UPDATE counters SET value = value + 1").run()
            }
            #expect(try await counters() == [7, 9])
            // An error once the statement has run is never retried, even one that would be (a serialization
            // failure): the statement may have committed, and here it did.
            let attempts = Mutex(0)
            await #expect(throws: (any Error).self) {
                _ = try await database.transactionOfOne({ () -> AddToBoth in
                    attempts.withLock { $0 += 1 }
                    return AddToBoth(first: 1, second: 1)
                }, then: { rows, sql in
                    try await sql.raw("DO $$ BEGIN RAISE EXCEPTION 'serialization' USING ERRCODE = '40001'; END $$").run()
                    return rows
                })
            }
            #expect(attempts.withLock { $0 } == 1)
            #expect(try await counters() == [8, 10])
            // Two hundred at once on the same two rows: every one counted exactly once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask { _ = try await database.transactionOfOne({ AddToBoth(first: 1, second: 2) }, then: { rows, _ in rows }) }
                }
                try await group.waitForAll()
            }
            #expect(try await counters() == [208, 410])
        }
    }

    struct FromMissingTable: PreparedQuery {
        static let name = "test.from_missing_table"
        static let sql = "SELECT value FROM no_such_table WHERE id = $1"
        static let parameters: [TypedParameter] = [.integer]
        var values: [TypedValue] { [.integer(1)] }
        func decode(_ row: TypedRow) throws -> Int64 { try row.integer(0) }
    }

    /// A prepared statement that fails when it runs (here a CHECK; in production a deadlock or a serialization
    /// failure) leaves its connection in the pool; one whose preparation failed retires it, since the driver would
    /// fail every later use of that statement on it.
    @Test func onlyAFailedPreparationRetiresTheConnection() async throws {
        guard TestStores.kinds.contains(.postgres) else { return }
        try await TestStores.withDatabase(.postgres, poolSize: 1) { database in
            try await TransactionTests.makeCounterTable(database)
            func session() async throws -> Int {
                try await database.transaction { sql in
                    try await sql.raw("SELECT pg_backend_pid() AS pid").first()!.decode(column: "pid", as: Int.self)
                }
            }
            _ = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: 1, note: nil)) }
            let first = try await session()
            await #expect(throws: (any Error).self) {
                _ = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: -100, note: nil)) }
            }
            #expect(try await session() == first, "a failed run of a prepared statement kept its connection")
            let rows = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: 1, note: "x")) }
            #expect(rows?.first?.0 == 2)
            await #expect(throws: (any Error).self) {
                _ = try await database.transaction { sql in try await sql.prepared(FromMissingTable()) }
            }
            #expect(try await session() != first, "a failed preparation retired its connection")

            // A statement prepared on the connection whose plan the schema changed under (another process migrated):
            // the server refuses it on that connection for good, so the connection is retired even so.
            _ = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: 1, note: nil)) }
            let second = try await session()
            try await database.transaction { sql in
                try await sql.raw("ALTER TABLE counters ALTER COLUMN value TYPE INTEGER").run()
            }
            await #expect(throws: (any Error).self) {
                _ = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: 1, note: nil)) }
            }
            #expect(try await session() != second, "a prepared statement the server no longer runs retired its connection")
            let healed = try await database.transaction { sql in try await sql.prepared(AddToCounter(amount: 1, note: nil)) }
            #expect(healed?.count == 1)
        }
    }
}
