import BallastConfig
import Logging
import NIOPosix
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import ServiceLifecycle

/// PostgreSQL through postgres-nio's `PostgresClient` pool, which only lends connections while ``run()`` runs.
/// A semaphore in front of it bounds how long a caller waits for one of the `poolSize` connections.
final class PostgresBackend: DatabaseBackend {
    let beginStatement = "BEGIN"
    private let client: PostgresClient
    private let slots: AsyncSemaphore

    init(location: DatabaseURL.PostgresLocation, poolSize: Int, logger: Logger) {
        let tls: PostgresClient.Configuration.TLS
        switch location.tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.username,
            password: location.password, database: location.database, tls: tls)
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", "ballast")]
        var backgroundLogger = logger
        backgroundLogger.logLevel = max(logger.logLevel, .warning)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: backgroundLogger)
        self.slots = AsyncSemaphore(permits: poolSize)
    }

    /// How long a lease may take before the server counts as unreachable. Leases are otherwise near-instant:
    /// the semaphore in front never lets more callers through than there are connections.
    static let leaseTimeout: Duration = .seconds(5)

    func withConnection<R: Sendable>(
        write: Bool, wait: Duration, _ body: (any SQLDatabase, ConnectionLease) async throws -> R
    ) async throws -> R {
        try await slots.acquire(timeout: wait)
        defer { slots.release() }
        try await ensureLeasable()
        return try await client.withConnection { connection in
            let lease = ConnectionLease()
            defer {
                // The pool drops a closed connection and opens a new one when needed.
                if lease.isBroken { connection.close().whenComplete { _ in } }
            }
            return try await body(connection.sql(queryLogLevel: nil), lease)
        }
    }

    func withPostgresConnection<R: Sendable>(wait: Duration, _ body: (PostgresConnection) async throws -> R) async throws -> R? {
        try await slots.acquire(timeout: wait)
        defer { slots.release() }
        try await ensureLeasable()
        return try await client.withConnection { connection in try await body(connection) }
    }

    /// The pool keeps retrying a server that is down and a lease would wait for it indefinitely; so first lease
    /// and return a connection under a timeout, and answer "unavailable" (503 upstream) when none comes. The
    /// real lease right after reuses the connection just returned.
    private func ensureLeasable() async throws {
        do {
            try await withTimeout(Self.leaseTimeout) { [client] in
                try await client.withConnection { _ in }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.unavailable(ErrorClassifier.describe(error))
        }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { await self.client.run() }
    }
}
