import BallastConfig
import BallastCore
import Logging
import Metrics
import PostgresNIO
import SQLKit
import SQLiteNIO
import ServiceLifecycle
import Synchronization
import Tracing

/// One store (the primary or the shadow): a pool of connections to SQLite or PostgreSQL, the one transaction
/// helper every write goes through, and plain reads.
///
/// Run it (``run()``) for as long as it is used: on PostgreSQL the pool only hands out connections while it runs.
public final class Database: Sendable, Service {
    /// Which SQL the store speaks; services branch on it only where the two really differ.
    public enum Dialect: String, Sendable {
        case sqlite, postgres
    }

    public let dialect: Dialect
    public let url: DatabaseURL
    /// The longest a caller waits for a free connection before getting ``StorageError/poolTimeout``.
    public let poolWait: Duration
    let backend: any DatabaseBackend
    let logger: Logger

    /// Where waits for a connection are reported (`db_pool_wait_seconds`, `db_pool_timeouts_total`), once set.
    private let poolMetrics = Mutex<PoolMetrics?>(nil)

    /// Serialization failures and deadlocks are retried this many times in all before giving up.
    public static let maxTransactionAttempts = 5

    init(url: DatabaseURL, dialect: Dialect, backend: any DatabaseBackend, poolWait: Duration, logger: Logger) {
        self.url = url
        self.dialect = dialect
        self.backend = backend
        self.poolWait = poolWait
        self.logger = logger
    }

    /// How long getting a PostgreSQL connection may take (connecting included) before the server counts as
    /// unreachable and the caller gets ``StorageError/unavailable(_:)`` (503 upstream).
    public static let defaultConnectWait: Duration = .seconds(5)

    /// Opens the pool for `url`. SQLite files (and their folder) are created here; PostgreSQL connects lazily
    /// once ``run()`` is running, so call ``waitUntilReachable(timeout:)`` to find out whether it answers.
    /// `connectWait` bounds each PostgreSQL lease (see ``defaultConnectWait``); SQLite ignores it.
    public static func open(
        _ url: DatabaseURL, poolSize: Int, poolWait: Duration = .seconds(30),
        connectWait: Duration = Database.defaultConnectWait, logger: Logger
    ) async throws -> Database {
        precondition(poolSize > 0, "pool size must be positive")
        switch url {
        case .sqliteMemory:
            let backend = try await SQLiteBackend.open(path: nil, poolSize: 1, logger: logger)
            return Database(url: url, dialect: .sqlite, backend: backend, poolWait: poolWait, logger: logger)
        case .sqliteFile(let path):
            let backend = try await SQLiteBackend.open(path: path, poolSize: poolSize, logger: logger)
            return Database(url: url, dialect: .sqlite, backend: backend, poolWait: poolWait, logger: logger)
        case .postgres(let location):
            let backend = PostgresBackend(location: location, poolSize: poolSize, connectWait: connectWait, logger: logger)
            return Database(url: url, dialect: .postgres, backend: backend, poolWait: poolWait, logger: logger)
        }
    }

    /// Reports from now on how long callers wait for a connection and how many give up, as `store` ("primary",
    /// "shadow").
    public func observePool(_ factory: any MetricsFactory, store: String) {
        let metrics = PoolMetrics(
            wait: Timer(label: "db_pool_wait_seconds", dimensions: [("store", store)], factory: factory),
            timeouts: Counter(label: "db_pool_timeouts_total", dimensions: [("store", store)], factory: factory))
        poolMetrics.withLock { $0 = metrics }
    }

    /// Runs `lease` (which waits for a connection and calls `leased` once it holds one), reporting the wait
    /// (`db_pool_wait_seconds`) and a give-up (`db_pool_timeouts_total`).
    private func reportingWait<R>(_ lease: (_ leased: @escaping @Sendable () -> Void) async throws -> R) async throws -> R {
        let metrics = poolMetrics.withLock { $0 }
        let asked = ContinuousClock.now
        do {
            return try await lease { metrics?.wait.recordNanoseconds((ContinuousClock.now - asked).wholeNanoseconds) }
        } catch {
            metrics?.countGiveUp(error)
            throw error
        }
    }

    /// Runs `body` on a pooled connection, reporting the wait for it.
    private func withConnection<R: Sendable>(_ body: (any SQLDatabase, ConnectionLease) async throws -> R) async throws -> R {
        try await reportingWait { leased in
            try await backend.withConnection(wait: poolWait) { sql, lease in
                leased()
                return try await body(sql, lease)
            }
        }
    }

    /// Runs `body` in one write transaction of the backend's, reporting the wait for a connection.
    private func writeTransaction<R: Sendable>(_ body: (any SQLDatabase) async throws -> R) async throws -> R {
        try await reportingWait { leased in
            try await backend.writeTransaction(wait: poolWait) { sql in
                leased()
                return try await body(sql)
            }
        }
    }

    /// SQLite only: how many shared commits (``WriteBatcher``) ran so far and how many write transactions they held;
    /// `nil` on PostgreSQL, where each transaction commits on its own connection.
    public var sharedCommits: (batches: Int, transactions: Int)? {
        guard let sqlite = backend as? SQLiteBackend else { return nil }
        let figures = sqlite.writeBatchFigures
        return (figures.batches, figures.bodies)
    }

    /// Keeps the pool alive until the task is cancelled or the service group shuts down, then closes it.
    public func run() async throws {
        try await backend.run()
    }

    /// Runs `body` on one connection without a transaction: for reads that need no consistency across
    /// statements.
    public func read<R: Sendable>(_ body: (any SQLDatabase) async throws -> R) async throws -> R {
        do {
            return try await withConnection { sql, _ in try await body(sql) }
        } catch {
            throw ErrorClassifier.translate(error)
        }
    }

    /// Runs `body` in one transaction on one pinned connection: `BEGIN IMMEDIATE` on SQLite (so the write lock is
    /// taken up front, not half-way), `BEGIN` (read committed) on PostgreSQL. Commits when `body` returns, rolls
    /// back when it throws. Serialization failures and deadlocks run the whole transaction again, at most
    /// ``maxTransactionAttempts`` times, and a busy SQLite file for up to ``poolWait`` (see `withRetries`), so `body`
    /// must not have effects outside the database.
    public func transaction<R: Sendable>(_ body: (Transaction) async throws -> R) async throws -> R {
        try await Traces.childSpan("db transaction", kind: .client) { span in
            span?.attributes["db.system.name"] = dialect == .postgres ? "postgresql" : "sqlite"
            return try await transactionWithRetries(span, body)
        }
    }

    private func transactionWithRetries<R: Sendable>(_ span: (any Span)?, _ body: (Transaction) async throws -> R) async throws -> R {
        try await withRetries(span) { try await writeTransaction { try await body(Transaction($0)) } }
    }

    /// PostgreSQL only: runs the statement `make()` builds as a transaction of its own, with no `BEGIN` or `COMMIT`
    /// around it (the server runs a lone statement in an implicit transaction: it commits all of it or none), as a
    /// prepared statement, with the retries of ``transaction(_:)`` (a new statement from `make` for each); then
    /// `answer` on the same connection, given the statement's rows. For a write that is one statement (a debit
    /// without an idempotency key) and needs nothing else in its transaction. `nil` on SQLite (nothing run): the
    /// caller uses ``transaction(_:)``.
    ///
    /// Two round trips where `BEGIN`, the statement and `COMMIT` take three, and the statement's row locks are held
    /// for its own round trip only. The second is a `SELECT 1`, because a lone statement's answer does not prove
    /// that it committed: the server commits it only after sending its rows (when it reaches the end of the
    /// client's batch), and a backend told to quit at that moment (another backend crashed) flushes those rows
    /// and exits uncommitted. The server answers the next statement only after that commit, so the statement
    /// counts as done only once `SELECT 1` has answered; a connection lost before then is an unknown outcome,
    /// like a `COMMIT` whose answer was lost (503 upstream).
    public func transactionOfOne<Query: PreparedQuery, R: Sendable>(
        _ make: () -> Query, then answer: ([Query.Row], any SQLDatabase) async throws -> R
    ) async throws -> R? {
        guard dialect == .postgres else { return nil }
        return try await Traces.childSpan("db transaction", kind: .client) { span in
            span?.attributes["db.system.name"] = "postgresql"
            do {
                return try await withRetries(span) {
                    try await withConnection { sql, lease in
                        guard let rows = try await sql.prepared(PreparedAdapter(query: make())) else {
                            throw StorageError.unavailable("no PostgreSQL connection to prepare \(Query.name) on")
                        }
                        // From here on the statement may have committed: no error below is ever retried.
                        do {
                            try await sql.raw("SELECT 1").run()
                        } catch {
                            // Whatever the server said (a commit that failed, a session ended), the outcome is not
                            // known and the connection's state neither.
                            lease.markBroken()
                            throw AfterTheStatement(error: StorageError.unavailable(
                                "no answer after \(Query.name) ran, so whether it committed is unknown (\(ErrorClassifier.describe(error)))"))
                        }
                        do {
                            return try await answer(rows, sql)
                        } catch {
                            throw AfterTheStatement(error: error)
                        }
                    }
                }
            } catch let after as AfterTheStatement {
                throw ErrorClassifier.translate(after.error)
            }
        }
    }

    /// An error once a lone statement has run: carried past the retries, which must not run the statement again.
    private struct AfterTheStatement: Error {
        let error: any Error
    }

    /// Runs `operation` until it succeeds or fails with an error that is not worth retrying. Serialization failures
    /// and deadlocks are retried at most ``maxTransactionAttempts`` times in all. A SQLite file whose write lock
    /// another process holds is retried for as long as a caller would wait for a free connection (``poolWait``),
    /// however many tries that takes: each try already waits seconds for the lock, and on a starved machine a few
    /// processes writing one file without pause can keep one writer out for longer than a fixed number of tries
    /// allows, though it would get its turn.
    private func withRetries<R>(_ span: (any Span)?, _ operation: () async throws -> R) async throws -> R {
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            span?.attributes["ballast.db.attempts"] = attempt
            do {
                return try await operation()
            } catch {
                guard ErrorClassifier.classify(error) == .retryable else { throw ErrorClassifier.translate(error) }
                let waitsForTheFile = (error as? SQLiteError).map(ErrorClassifier.isBusy) ?? false
                guard waitsForTheFile ? ContinuousClock.now - started < poolWait : attempt < Self.maxTransactionAttempts else {
                    logger.warning("transaction gave up after retries", metadata: [
                        "attempts": "\(attempt)", "error": "\(ErrorClassifier.describe(error))",
                    ])
                    throw StorageError.retriesExhausted(attempts: attempt)
                }
                // Full jitter over an exponentially growing window: 2, 4, 8, 16 ms, then 16 ms.
                let windowMicroseconds = 1000 << min(attempt, 4)
                try await Task.sleep(for: .microseconds(Int.random(in: 0...windowMicroseconds)))
            }
        }
    }

    /// Runs `body` in one read-only transaction, so every statement sees the same snapshot of the store:
    /// `REPEATABLE READ READ ONLY` on PostgreSQL, a deferred transaction on SQLite (in WAL mode its reads share one
    /// snapshot). For reads whose figures must agree with each other (the invariant auditor).
    public func snapshot<R: Sendable>(_ body: (any SQLDatabase) async throws -> R) async throws -> R {
        let begin = dialect == .postgres ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN DEFERRED"
        return try await Traces.childSpan("db snapshot", kind: .client) { span in
            span?.attributes["db.system.name"] = dialect == .postgres ? "postgresql" : "sqlite"
            do {
                return try await withConnection { sql, lease in
                    try await Self.runOnce(sql, lease: lease, begin: begin, body: body)
                }
            } catch {
                throw ErrorClassifier.translate(error)
            }
        }
    }

    static func runOnce<R>(
        _ sql: any SQLDatabase, lease: ConnectionLease, begin: String, body: (any SQLDatabase) async throws -> R
    ) async throws -> R {
        // A plain BEGIN is prepared once per PostgreSQL connection (one Bind/Execute).
        let begun = begin == "BEGIN" ? try await sql.prepared(TransactionStatement.Begin()) : nil
        if begun == nil { try await sql.raw(SQLQueryString(begin)).run() }
        return try await runBegun(sql, lease: lease, body: body)
    }

    /// `body` in the transaction already begun on `sql`: `COMMIT` when it returns, `ROLLBACK` when it throws.
    static func runBegun<R>(
        _ sql: any SQLDatabase, lease: ConnectionLease, body: (any SQLDatabase) async throws -> R
    ) async throws -> R {
        do {
            let result = try await body(sql)
            try await sql.raw("COMMIT").run()
            return result
        } catch {
            do {
                try await sql.raw("ROLLBACK").run()
            } catch {
                // A connection whose transaction state is unknown must never serve another caller.
                lease.markBroken()
            }
            throw error
        }
    }

    /// PostgreSQL only: `body` on a pooled connection with the driver's own typed API (``typedRows(_:reserving:_:)``).
    /// `nil` on SQLite. No transaction.
    func withPostgresConnection<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R? {
        do {
            return try await reportingWait { leased in
                try await backend.withPostgresConnection(wait: poolWait) { connection in
                    leased()
                    return try await body(connection)
                }
            }
        } catch {
            throw ErrorClassifier.translate(error)
        }
    }

    /// The database's clock, as whole microseconds since the Unix epoch, for use inside a statement. Questions
    /// several processes share (is this claim abandoned? has this lease expired?) are asked on this one clock, never
    /// on a process's own, so a process whose clock is minutes off can neither steal nor keep what it should not.
    public var nowMicros: SQLQueryString { Self.nowMicros(dialect) }

    /// ``nowMicros`` for a statement on `sql`, for code that has the transaction but not the store.
    public static func nowMicros(on sql: any SQLDatabase) -> SQLQueryString {
        nowMicros(sql.dialect.name == "sqlite" ? .sqlite : .postgres)
    }

    /// The database's clock in microseconds, as PostgreSQL text: for statements written whole (prepared ones).
    public static let postgresNowMicros = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"

    static func nowMicros(_ dialect: Dialect) -> SQLQueryString {
        switch dialect {
        case .postgres: return "\(unsafeRaw: postgresNowMicros)"
        // SQLite runs inside this process: its clock is the machine's, which every process on the file shares.
        case .sqlite: return "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
        }
    }

    /// What a `SELECT` adds to hold the rows it reads until the transaction ends: `FOR UPDATE` on PostgreSQL; nothing
    /// on SQLite, whose write transaction (`BEGIN IMMEDIATE`) already holds the whole file.
    public var rowLock: String { dialect == .postgres ? " FOR UPDATE" : "" }

    /// ``nowMicros`` read once.
    public func currentMicros() async throws -> Int64 {
        try await read { sql in
            guard let row = try await sql.raw("SELECT \(nowMicros) AS now_micros").first() else {
                throw StorageError.missingReturnedRow("the database's clock")
            }
            return try row.decode(column: "now_micros", as: Int64.self)
        }
    }

    /// `SELECT 1`: whether the store answers now.
    public func ping() async throws {
        _ = try await read { sql in try await sql.raw("SELECT 1 AS one").first() }
    }

    /// Whether the store answers `SELECT 1` within `timeout`; never throws and never waits longer.
    public func isReachable(within timeout: Duration) async -> Bool {
        do {
            try await withTimeout(timeout) { try await self.ping() }
            return true
        } catch {
            return false
        }
    }

    /// Pings until the store answers, for up to `timeout`; then throws ``StorageError/unavailable(_:)`` naming the
    /// URL without its password.
    public func waitUntilReachable(timeout: Duration, attemptTimeout: Duration = .seconds(5)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var lastError = "no attempt made"
        while true {
            do {
                try await withTimeout(attemptTimeout) { try await self.ping() }
                return
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = ErrorClassifier.describe(error)
                logger.warning("database not reachable yet; retrying", metadata: [
                    "database": "\(url)", "error": "\(lastError)",
                ])
            }
            if clock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw StorageError.unavailable("\(url) did not answer within \(timeout.wholeSeconds) s (\(lastError))")
    }
}

/// Runs `operation`, throwing ``StorageError/unavailable(_:)`` if it has not finished after `timeout`.
func withTimeout<R: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> R) async throws -> R {
    do {
        return try await Deadline.run(timeout, operation)
    } catch is Deadline.Passed {
        throw StorageError.unavailable("no answer within \(timeout)")
    }
}

extension Database {
    /// Opens a store, keeps it running while `body` uses it, then closes it. For commands and tests that are
    /// not part of a service group.
    public static func withRunning<R: Sendable>(
        _ url: DatabaseURL, poolSize: Int, poolWait: Duration = .seconds(30),
        connectWait: Duration = Database.defaultConnectWait, logger: Logger,
        _ body: @Sendable (Database) async throws -> R
    ) async throws -> R {
        let database = try await Database.open(url, poolSize: poolSize, poolWait: poolWait, connectWait: connectWait, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await database.run() }
            defer { group.cancelAll() }
            return try await body(database)
        }
    }
}

/// The pool's two figures for one store.
struct PoolMetrics: Sendable {
    let wait: Timer
    let timeouts: Counter

    /// Counts `error` if it is the pool giving up on a caller (its wait ran out, or too many already waited).
    func countGiveUp(_ error: any Error) {
        switch error as? StorageError {
        case .poolTimeout?, .poolQueueFull?: timeouts.increment()
        default: break
        }
    }
}
