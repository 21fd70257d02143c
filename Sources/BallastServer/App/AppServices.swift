import BallastConfig
import Foundation
import Logging
import Marketplace
import Storage
import Synchronization
import Telemetry

/// Everything the routes use, built once per process (or per test).
public final class AppServices: Sendable {
    public let config: AppConfig
    public let primary: Database
    /// `nil` when shadow writes are off, or when the shadow store could not be opened (health says so).
    public let shadow: Database?
    public let users: UserService
    public let metrics: MetricsRegistry
    public let logger: Logger
    public let startedAt: ContinuousClock.Instant
    public let chaosSeed: String
    /// How long start-up keeps retrying an unreachable primary store before giving up.
    public let startupDatabaseWait: Duration
    let readiness: Readiness

    public init(
        config: AppConfig, primary: Database, shadow: Database?, metrics: MetricsRegistry = MetricsRegistry(),
        logger: Logger, startupDatabaseWait: Duration = .seconds(30)
    ) {
        self.config = config
        self.primary = primary
        self.shadow = shadow
        self.users = UserService(database: primary)
        self.metrics = metrics
        self.logger = logger
        self.startedAt = .now
        self.chaosSeed = config.chaos.seed ?? Self.randomSeed()
        self.readiness = Readiness()
        self.startupDatabaseWait = startupDatabaseWait
    }

    /// A seed for fault injection when none was configured: 16 hex digits, reported so a run can be replayed.
    static func randomSeed() -> String {
        String(format: "%016llx", UInt64.random(in: .min ... .max))
    }

    /// Start-up steps that need the primary store: wait for it (``startupDatabaseWait``, 30 s by default),
    /// migrate when configured, make sure the configured admin exists, then report ready. Throws (and the
    /// process exits) when the store never answers.
    public func prepare() async throws {
        try await primary.waitUntilReachable(timeout: startupDatabaseWait)
        let migrator = Migrator(database: primary, logger: logger)
        if config.migrateOnStart {
            try await migrator.migrate()
        }
        _ = try await checkReady()
        logger.info("chaos settings", metadata: [
            "enabled": .stringConvertible(config.chaos.enabled), "seed": .string(chaosSeed),
            "scope": .string(config.chaos.scope.rawValue), "failRate": .stringConvertible(config.chaos.failRate),
        ])
    }

    /// Whether the schema is current; the first time it is, also makes sure the configured admin exists.
    /// Re-checked by `/health/ready` until it succeeds, so a separate `ballast migrate` makes a waiting server
    /// ready without a restart.
    func checkReady() async throws -> Bool {
        if readiness.isReady { return true }
        let pending = try await Migrator(database: primary, logger: logger).pendingVersions()
        guard pending.isEmpty else {
            logger.warning("schema is behind this build; run `ballast migrate`", metadata: [
                "pendingVersions": "\(pending.map(String.init).joined(separator: ","))",
            ])
            return false
        }
        if let token = config.adminToken {
            try await users.ensureAdmin(token: token)
        }
        readiness.markReady()
        return true
    }
}

/// Flips once from not ready to ready.
final class Readiness: Sendable {
    private let ready = Mutex(false)
    var isReady: Bool { ready.withLock { $0 } }
    func markReady() { ready.withLock { $0 = true } }
}
