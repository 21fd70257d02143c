import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import ServiceLifecycle
import Synchronization

/// A fixed pool of SQLite connections to one file (or one in-memory database).
///
/// - The connections run their statements on a private thread pool of one thread per core (at most one per
///   connection), plus one: the one writer of this process that may be waiting on another process's file lock
///   (`busy_timeout`) holds a thread, and the spare keeps the readers going meanwhile. Readers never wait on a lock in
///   WAL mode, so more threads than that would only add switching (and, in a process with many stores, thousands of
///   idle threads).
/// - Write transactions of this process share commits (``WriteBatcher``): the writers queued at one moment run one
///   after another in one SQLite transaction, each in a savepoint of its own, and one disk flush makes them all
///   durable. So writers take turns in order instead of spinning on SQLite's lock, and a burst of them costs one
///   flush. A writer waiting for another process on the same file looks at the lock hundreds of times a second
///   (``WriteBatcher/beginImmediate(_:wanted:)``), so a process that writes without pause is unlikely to starve it;
///   every other statement waits for a lock by SQLite's own `busy_timeout`.
/// - WAL mode lets reads run while a write transaction is open; `synchronous=FULL` makes every commit durable
///   before it is acknowledged.
final class SQLiteBackend: DatabaseBackend {
    static let busyTimeoutMilliseconds = 5000

    private let threadPool: NIOThreadPool
    private let path: String?
    private let logger: Logger
    private let free: Mutex<[Pooled]>
    private let slots: AsyncSemaphore
    private let batcher = WriteBatcher(maximumWaiters: AsyncSemaphore.defaultMaximumWaiters)
    private let closed = Mutex(false)
    /// How many connections the pool has (each is one permit of `slots`); one less for each that could not be
    /// replaced.
    private let size: Mutex<Int>

    /// Write batches wait for another process's lock in short tries (``writeLockPollMilliseconds``): only on a file
    /// in WAL mode, where nothing but `BEGIN IMMEDIATE` waits on a lock once readers are on their own snapshots. (In
    /// a rollback journal a `COMMIT` waits for readers too, and must keep the full `busy_timeout`; in memory there is
    /// no other process.)
    private let pollsWriteLock: Bool

    private init(threadPool: NIOThreadPool, path: String?, connections: [SQLiteConnection], pollsWriteLock: Bool, logger: Logger) {
        self.threadPool = threadPool
        self.path = path
        self.pollsWriteLock = pollsWriteLock
        self.logger = logger
        self.free = Mutex(connections.map(Pooled.init))
        self.slots = AsyncSemaphore(permits: connections.count)
        self.size = Mutex(connections.count)
    }

    /// Opens `poolSize` connections to the file at `path` (its folder is created), or one in-memory connection
    /// when `path` is nil (an in-memory database cannot be shared between connections).
    static func open(path: String?, poolSize: Int, logger: Logger) async throws -> SQLiteBackend {
        let size = path == nil ? 1 : poolSize
        if let path {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw StorageError.unavailable("cannot create the folder \(folder) for sqlite:\(path): \(error)")
            }
        }
        let threadPool = NIOThreadPool(numberOfThreads: min(size, max(System.coreCount, 2)) + 1)
        threadPool.start()
        var connections: [SQLiteConnection] = []
        let journalMode: String?
        do {
            for index in 0..<size {
                connections.append(try await openConnection(
                    path: path, threadPool: threadPool, logger: logger, setJournalMode: index == 0))
            }
            // SQLite keeps its old journal mode, without an error, where WAL is not possible (a file system without
            // shared memory): read back what the file uses.
            journalMode = try await connections[0].sql(queryLogLevel: nil).raw("PRAGMA journal_mode").first()?
                .decode(column: "journal_mode", as: String.self)
        } catch {
            for connection in connections { try? await connection.close() }
            try? await threadPool.shutdownGracefully()
            throw StorageError.unavailable("cannot open sqlite:\(path ?? ":memory:"): \(error)")
        }
        return SQLiteBackend(threadPool: threadPool, path: path, connections: connections,
                             pollsWriteLock: path != nil && journalMode?.lowercased() == "wal", logger: logger)
    }

    private static func openConnection(
        path: String?, threadPool: NIOThreadPool, logger: Logger, setJournalMode: Bool
    ) async throws -> SQLiteConnection {
        let connection = try await SQLiteConnection.open(
            storage: path.map { .file(path: $0) } ?? .memory,
            threadPool: threadPool,
            logger: logger,
            on: MultiThreadedEventLoopGroup.singleton.any())
        let sql = connection.sql(queryLogLevel: nil)
        // busy_timeout replaces the driver's default handler, which would retry forever.
        try await sql.raw("PRAGMA busy_timeout = \(unsafeRaw: String(busyTimeoutMilliseconds))").run()
        try await sql.raw("PRAGMA foreign_keys = ON").run()
        if path != nil {
            if setJournalMode { try await sql.raw("PRAGMA journal_mode = WAL").run() }
            try await sql.raw("PRAGMA synchronous = FULL").run()
        }
        return connection
    }

    /// A pooled connection, and how long its statements wait for another process's lock: the default
    /// (``busyTimeoutMilliseconds``), or, while it serves write batches, ``writeLockPollMilliseconds`` per try of
    /// ``WriteBatcher/beginImmediate(_:wanted:)``. Read and set only by whoever holds it, or under the free list's
    /// lock.
    private final class Pooled: @unchecked Sendable {
        let connection: SQLiteConnection
        var pollsForWriteLock = false

        init(_ connection: SQLiteConnection) {
            self.connection = connection
        }
    }

    /// How long one try at the write lock waits before ``WriteBatcher/beginImmediate(_:wanted:)`` tries again.
    static let writeLockPollMilliseconds = 5

    func withConnection<R: Sendable>(
        wait: Duration, _ body: (any SQLDatabase, ConnectionLease) async throws -> R
    ) async throws -> R {
        try await lend(wait: wait, writing: false, body)
    }

    /// Lends a free connection, preferring one already set up for the caller's kind of work (so one connection
    /// usually serves the write batches and the switch is rare), and sets its lock wait for that work.
    private func lend<R: Sendable>(
        wait: Duration, writing: Bool, _ body: (any SQLDatabase, ConnectionLease) async throws -> R
    ) async throws -> R {
        if closed.withLock({ $0 }) { throw StorageError.unavailable("the SQLite pool is closed") }
        try await slots.acquire(timeout: wait)
        let polls = writing && pollsWriteLock
        // Closing may have taken the free connections while this caller waited for its permit.
        let pooled = free.withLock { free -> Pooled? in
            guard let index = free.lastIndex(where: { $0.pollsForWriteLock == polls }) else { return free.popLast() }
            return free.remove(at: index)
        }
        guard let pooled else {
            slots.release()
            throw StorageError.unavailable("the SQLite pool is closed")
        }
        let lease = ConnectionLease()
        defer { giveBack(pooled, lease: lease) }
        let sql = pooled.connection.sql(queryLogLevel: nil)
        if pooled.pollsForWriteLock != polls {
            let milliseconds = polls ? Self.writeLockPollMilliseconds : Self.busyTimeoutMilliseconds
            do {
                try await sql.raw("PRAGMA busy_timeout = \(unsafeRaw: String(milliseconds))").run()
            } catch {
                // SQLite sets the timeout while it compiles the PRAGMA: after a later failure the connection's
                // timeout is unknown, so it is replaced.
                lease.markBroken()
                throw error
            }
            pooled.pollsForWriteLock = polls
        }
        return try await body(sql, lease)
    }

    /// Through the ``WriteBatcher``: `body` shares its transaction and its commit with the other writers queued now.
    func writeTransaction<R: Sendable>(wait: Duration, _ body: (any SQLDatabase) async throws -> R) async throws -> R {
        try await batcher.run(wait: wait, execute: { [self] jobs, wait in
            do {
                try await lend(wait: wait, writing: true) { sql, lease in
                    await WriteBatcher.runBatch(jobs, on: sql, lease: lease)
                }
            } catch {
                for job in jobs { job.outcome = .failure(error) }
            }
        }, body)
    }

    /// How many write batches ran and how many transactions they held.
    var writeBatchFigures: (batches: Int, bodies: Int) { batcher.batchFigures }

    /// Returns a connection to the pool, or replaces it with a fresh one when its state is unknown.
    private func giveBack(_ pooled: Pooled, lease: ConnectionLease) {
        let connection = pooled.connection
        guard lease.isBroken else {
            free.withLock { $0.append(pooled) }
            slots.release()
            return
        }
        logger.warning("replacing an SQLite connection whose transaction state is unknown")
        // Closing the handle rolls back whatever it still had open. The permit is released only once a
        // replacement is in the free list, so the pool never lends a connection it does not have.
        Task { [threadPool, path, logger] in
            try? await connection.close()
            do {
                let fresh = try await Self.openConnection(
                    path: path, threadPool: threadPool, logger: logger, setJournalMode: false)
                free.withLock { $0.append(Pooled(fresh)) }
                slots.release()
            } catch {
                size.withLock { $0 -= 1 }
                logger.error("could not replace an SQLite connection; the pool is one smaller",
                             metadata: ["error": "\(error)"])
            }
        }
    }

    func run() async throws {
        try? await gracefulShutdown()
        // Closing runs in a task of its own: this one is usually cancelled by now, and the driver refuses to
        // start work for a cancelled task, which would leave handles open.
        await Task { await self.close() }.value
    }

    /// Refuses new work, waits (at most 10 s) for lent connections to come back, then closes every handle. The wait
    /// is the pool's own: each connection that comes back releases its permit, and closing takes them all.
    private func close() async {
        closed.withLock { $0 = true }
        batcher.close()
        let deadline = ContinuousClock.now + .seconds(10)
        for _ in 0..<size.withLock({ $0 }) {
            let left = deadline - ContinuousClock.now
            guard left > .zero, (try? await slots.acquire(timeout: left)) != nil else { break }
        }
        let connections: [SQLiteConnection] = free.withLock { connections in
            defer { connections.removeAll() }
            return connections.map(\.connection)
        }
        for connection in connections {
            do {
                try await connection.close()
            } catch {
                logger.warning("could not close an SQLite connection", metadata: ["error": "\(error)"])
            }
        }
        try? await threadPool.shutdownGracefully()
    }
}
