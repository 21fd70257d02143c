import BallastConfig
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import ServiceLifecycle
import Synchronization

/// PostgreSQL through postgres-nio's `PostgresClient` pool, which only lends connections while ``run()`` runs.
/// A semaphore in front of it bounds how long a caller waits for one of the `poolSize` connections.
///
/// Recovery on demand: while the server is down the pool retries its connections with a growing backoff (up to a
/// minute between tries), so once the server is back the pool could keep callers waiting for many seconds. So when
/// a lease times out, this backend probes the server itself (a TCP connect, every quarter second, only while leases
/// are failing); the moment the server accepts connections again, the stuck pool is replaced by a fresh one, which
/// connects at once. Requests succeed again within about a second of the server's return, in every process.
final class PostgresBackend: DatabaseBackend {
    private let configuration: PostgresClient.Configuration
    private let host: String
    private let port: Int
    private let backgroundLogger: Logger
    private let logger: Logger
    private let slots: AsyncSemaphore
    private let probeConfiguration: PostgresConnection.Configuration?

    /// The pool in use and the task running it; a replaced one is cancelled.
    private struct Generation: Sendable {
        let number: Int
        let client: PostgresClient
        var task: Task<Void, Never>?
    }

    private struct State: Sendable {
        var current: Generation
        var retired: [Task<Void, Never>] = []
        var running = false
        var probing = false
        var stopped = false
        /// A lease timed out and the server has not been seen accepting connections since: leases wait only
        /// ``downLeaseTimeout``, so callers get their 503 at once instead of queueing behind each other's timeouts.
        var down = false
    }

    private let state: Mutex<State>
    /// The watch on each open connection (see ``ConnectionWatch``), by connection id.
    private let watches = Mutex<[ObjectIdentifier: Watched]>([:])

    init(location: DatabaseURL.PostgresLocation, poolSize: Int, connectWait: Duration, logger: Logger) {
        let tls: PostgresClient.Configuration.TLS
        switch location.tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.username,
            password: location.password, database: location.database, tls: tls)
        // The probe's own connection: the same server, user and TLS, a short connect timeout.
        let probeTLS: PostgresConnection.Configuration.TLS?
        switch location.tlsMode {
        case .disable: probeTLS = .disable
        case .prefer: probeTLS = (try? NIOSSLContext(configuration: .makeClientConfiguration())).map { .prefer($0) }
        case .require: probeTLS = (try? NIOSSLContext(configuration: .makeClientConfiguration())).map { .require($0) }
        }
        self.probeConfiguration = probeTLS.map { tls in
            var probe = PostgresConnection.Configuration(
                host: location.host, port: location.port, username: location.username,
                password: location.password, database: location.database, tls: tls)
            probe.options.connectTimeout = .seconds(1)
            return probe
        }
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = connectWait
        self.leaseTimeout = connectWait
        // A process paused (or stuck) inside a transaction must not hold its row locks for ever: the server ends a
        // session idle inside a transaction after `idleInTransactionTimeout`, which releases its locks, so whoever
        // waits on them waits that long at most. Our transactions never wait on anything outside the database while
        // open, so the limit is never reached in normal work. (No `lock_timeout`: on a hot row, a queue of busy
        // transactions can legitimately wait seconds on a loaded machine, and it must not turn into errors.)
        configuration.options.additionalStartupParameters = [
            ("application_name", "ballast"),
            ("idle_in_transaction_session_timeout", String(Self.idleInTransactionTimeoutMilliseconds)),
        ]
        var backgroundLogger = logger
        backgroundLogger.logLevel = max(logger.logLevel, .warning)
        self.configuration = configuration
        self.host = location.host
        self.port = location.port
        self.backgroundLogger = backgroundLogger
        self.logger = logger
        self.slots = AsyncSemaphore(permits: poolSize)
        self.state = Mutex(State(current: Generation(
            number: 1, client: PostgresClient(configuration: configuration, backgroundLogger: backgroundLogger))))
    }

    /// How long a lease may take before the server counts as unreachable. Leases are otherwise near-instant:
    /// the semaphore in front never lets more callers through than there are connections.
    private let leaseTimeout: Duration
    /// How long a session may sit idle inside a transaction before the server ends it
    /// (`idle_in_transaction_session_timeout`), releasing its locks: a process paused mid-transaction.
    static let idleInTransactionTimeoutMilliseconds = 10_000
    /// How long a lease may take while the server is known to be down.
    static let downLeaseTimeout: Duration = .milliseconds(250)
    /// How often a store that stopped answering is probed, while leases keep failing.
    static let probeInterval: Duration = .milliseconds(250)

    private var client: PostgresClient { state.withLock { $0.current.client } }

    func withConnection<R: Sendable>(
        wait: Duration, _ body: (any SQLDatabase, ConnectionLease) async throws -> R
    ) async throws -> R {
        try await slots.acquire(timeout: wait)
        defer { slots.release() }
        let client = try await leasableClient()
        return try await client.withConnection { connection in
            let lease = ConnectionLease()
            let sql = WatchedSQLDatabase(base: connection.sql(queryLogLevel: nil), watch: watch(connection), connection: connection, lease: lease)
            // A broken connection is closed before it goes back to the pool, which drops it and opens a new one when
            // needed; closed only after, the pool could lend it to the next caller while it closes, failing that
            // caller's first statement.
            do {
                let result = try await body(sql, lease)
                if lease.isBroken { try? await connection.close().get() }
                return result
            } catch {
                if lease.isBroken { try? await connection.close().get() }
                throw error
            }
        }
    }

    /// `BEGIN` (read committed, prepared once per connection), `body`, `COMMIT`.
    func writeTransaction<R: Sendable>(wait: Duration, _ body: (any SQLDatabase) async throws -> R) async throws -> R {
        try await withConnection(wait: wait) { sql, lease in
            try await Database.runOnce(sql, lease: lease, begin: "BEGIN", body: body)
        }
    }

    func withPostgresConnection<R: Sendable>(
        wait: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> R
    ) async throws -> R? {
        try await slots.acquire(timeout: wait)
        defer { slots.release() }
        let client = try await leasableClient()
        return try await client.withConnection { connection in
            try await watch(connection).run { try await body(connection) }
        }
    }

    /// The watch on `connection`, made the first time it is lent and dropped when it closes. Keyed by the object
    /// (the driver's connection ids restart with each pool), which the entry keeps alive until then, so its address
    /// cannot be reused by a new connection while the entry exists.
    private func watch(_ connection: PostgresConnection) -> ConnectionWatch {
        let key = ObjectIdentifier(connection)
        if let watched = watches.withLock({ $0[key] }) { return watched.watch }
        let watch = ConnectionWatch(connection)
        watches.withLock { $0[key] = Watched(connection: connection, watch: watch) }
        connection.closeFuture.whenComplete { [self] _ in _ = watches.withLock { $0.removeValue(forKey: key) } }
        return watch
    }

    private struct Watched: Sendable {
        let connection: PostgresConnection
        let watch: ConnectionWatch
    }

    /// The pool keeps retrying a server that is down and a lease would wait for it indefinitely; so first lease
    /// and return a connection under a timeout, and answer "unavailable" (503 upstream) when none comes, starting
    /// the probe that replaces the pool once the server is back. The real lease right after reuses the connection
    /// just returned.
    private func leasableClient() async throws -> PostgresClient {
        let (client, down) = state.withLock { ($0.current.client, $0.down) }
        do {
            try await withTimeout(down ? Self.downLeaseTimeout : leaseTimeout) { try await client.withConnection { _ in } }
            if down { state.withLock { $0.down = false } }
            return client
        } catch let error as StorageError {
            startProbing()
            throw error
        } catch {
            startProbing()
            throw StorageError.unavailable(ErrorClassifier.describe(error))
        }
    }

    /// Probes the server (a session that logs in and runs `SELECT 1`) until it answers, then replaces the pool. One
    /// probe at a time. (A server that accepts TCP may still refuse sessions while it recovers from a crash; only a
    /// real answer means a fresh pool will connect at once.)
    private func startProbing() {
        let start = state.withLock { state -> Bool in
            state.down = true
            guard state.running, !state.probing, !state.stopped else { return false }
            state.probing = true
            return true
        }
        guard start else { return }
        Task { [self] in
            defer { state.withLock { $0.probing = false } }
            let started = ContinuousClock.now
            // Bounded: a store down for good is probed for ten minutes per failing lease, then the next one starts again.
            while ContinuousClock.now - started < .seconds(600), !state.withLock({ $0.stopped }) {
                if await serverAnswers() {
                    // A fresh pool connects at once; the old one may be deep in its backoff.
                    if (try? await withTimeout(.milliseconds(200), { [client] in try await client.withConnection { _ in } })) == nil {
                        replacePool()
                    }
                    state.withLock { $0.down = false }
                    return
                }
                try? await Task.sleep(for: Self.probeInterval)
            }
        }
    }

    private func serverAnswers() async -> Bool {
        guard let probeConfiguration else { return await serverAcceptsConnections() }
        guard let connection = try? await PostgresConnection.connect(
            configuration: probeConfiguration, id: 0, logger: backgroundLogger)
        else { return false }
        // A server that accepted the session but does not answer within a second is not back: closing the
        // connection then fails the query (the watch makes sure of it, however late the query was written).
        let closer = Task {
            try await Task.sleep(for: .seconds(1))
            try? await connection.close()
        }
        let rows = try? await ConnectionWatch(connection).run {
            try await connection.query("SELECT 1", logger: Self.quiet).collect().count
        }
        closer.cancel()
        try? await connection.close()
        return rows == 1
    }

    private static let quiet = Logger(label: "ballast.postgres.probe", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Whether the server accepts TCP connections (when no TLS context could be made for a real session).
    private func serverAcceptsConnections() async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    /// Starts a new pool and retires the current one (its run task is cancelled; its connections close).
    private func replacePool() {
        let fresh = PostgresClient(configuration: configuration, backgroundLogger: backgroundLogger)
        let retired: Task<Void, Never>? = state.withLock { state in
            guard state.running, !state.stopped else { return nil }
            let old = state.current
            var next = Generation(number: old.number + 1, client: fresh)
            next.task = Task { await fresh.run() }
            state.current = next
            if let task = old.task { state.retired.append(task) }
            return old.task
        }
        if let retired {
            retired.cancel()
            // Forgotten once it has wound down; only `run()`'s shutdown waits for the ones still winding down.
            Task { [self] in
                await retired.value
                state.withLock { $0.retired.removeAll { $0 == retired } }
            }
        }
        logger.warning("the PostgreSQL server answers again; replaced the connection pool that was waiting out its backoff")
    }

    func run() async throws {
        state.withLock { state in
            state.running = true
            if state.current.task == nil {
                let client = state.current.client
                state.current.task = Task { await client.run() }
            }
        }
        // Until shutdown (graceful or cancelled), then stop every pool this backend started.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            state.stopped = true
            return state.retired + [state.current.task].compactMap { $0 }
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
