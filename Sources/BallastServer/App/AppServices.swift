import BallastConfig
import ChaosKit
import DomainValues
import EvidenceStore
import Foundation
import Logging
import Commerce
import Operations
import Metrics
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
    public let injector: FaultInjector
    public let chaos: ChaosService
    public let chaosMonitor: ChaosMonitor
    /// Primary-request outcomes of the last minute, for the steady-state guard.
    public let steadyState: SteadyStateGuard
    public let failpoints: Failpoints
    public let evidence: EvidenceLog
    public let evidenceAppender: EvidenceAppender
    public let wallets: WalletService
    /// Mirrors listing writes into the shadow store; `nil` when there is no shadow store.
    public let shadowWriter: ShadowWriter?
    public let listings: ListingService
    public let products: ProductService
    public let orders: OrderService
    /// Delivers the notification outbox.
    public let dispatcher: NotificationDispatcher
    public let notifications: NotificationAdmin
    /// Domain events to in-process subscribers, after commit.
    public let events: EventBus
    /// Prices shipping before an order's transaction.
    public let shippingRates: any ShippingRates
    public let idempotency: IdempotencyStore
    /// The use cases the routes call: wallet commands and placing an order (retry-safe when keyed).
    public let walletCommands: WalletCommands
    public let orderPlacement: OrderPlacement
    /// The background jobs (verifier, invariant auditor, idempotency-key cleanup) and their scheduler.
    public let jobs: JobRunner
    public let discrepancies: Discrepancies
    /// How long start-up keeps retrying an unreachable primary store before giving up.
    public let startupDatabaseWait: Duration
    let readiness: Readiness

    /// The built-in event subscriber: one log line and one count per event.
    static let auditLogSubscriber = "audit-log"

    /// `eventSubscribers` join the built-in ones (tests add failing ones).
    public init(
        config: AppConfig, primary: Database, shadow: Database?, metrics: MetricsRegistry = MetricsRegistry(),
        logger: Logger, startupDatabaseWait: Duration = .seconds(30), eventSubscribers: [(String, EventBus.Handler)] = []
    ) {
        self.config = config
        self.primary = primary
        self.shadow = shadow
        self.users = UserService(database: primary)
        self.metrics = metrics
        self.logger = logger
        self.startedAt = .now
        self.chaosSeed = config.chaos.seed ?? ChaosState.randomSeed()
        self.injector = FaultInjector(
            state: ChaosState(settings: config.chaos, seed: chaosSeed), environment: config.environment,
            metrics: metrics.factory, logger: logger)
        self.failpoints = Failpoints(environment: config.environment)
        self.chaos = ChaosService(injector: injector, database: primary, logger: logger, failpoints: failpoints)
        self.steadyState = SteadyStateGuard()
        let readiness = Readiness()
        self.readiness = readiness
        self.chaosMonitor = ChaosMonitor(
            chaos: chaos, guardWindow: steadyState, logger: logger, isReady: { readiness.isReady })
        self.evidence = EvidenceLog(database: primary)
        self.evidenceAppender = EvidenceAppender(
            log: evidence, completer: ShadowOutboxCompleter(), logger: logger, metrics: metrics.factory)
        let reads = ReadFaults(injector: self.injector)
        self.wallets = WalletService(database: primary, failpoints: failpoints, metrics: metrics.factory, reads: reads)
        let injector = self.injector, evidenceAppender = self.evidenceAppender
        let shadowWriter = shadow.map {
            ShadowWriter(primary: primary, shadow: $0, capacity: config.shadowQueueCapacity,
                         claimSeconds: Int64(config.shadowClaimSeconds), injector: injector, evidence: evidenceAppender,
                         metrics: metrics.factory, logger: logger)
        }
        self.shadowWriter = shadowWriter
        self.listings = ListingService(database: primary, mirror: shadowWriter, reads: reads)
        let eventMetrics = metrics.factory, eventLogger = logger
        // The built-in subscriber: one log line and one count per event.
        let auditLog: EventBus.Handler = { @Sendable event in
            Counter(label: "domain_events_total", dimensions: [("event", event.name)], factory: eventMetrics).increment()
            eventLogger.info("domain event", metadata: ["event": .string(event.name)])
        }
        self.events = EventBus(
            subscribers: [(Self.auditLogSubscriber, auditLog)] + eventSubscribers, injector: injector, metrics: metrics.factory, logger: logger)
        self.products = ProductService(database: primary, evidence: evidence, failpoints: failpoints, events: events, reads: reads)
        self.orders = OrderService(
            database: primary, wallets: wallets, failpoints: failpoints, metrics: metrics.factory, reads: reads, events: events)
        if let url = config.shippingRatesURL {
            self.shippingRates = ProviderShippingRates(
                url: url, timeout: .milliseconds(config.shippingTimeoutMilliseconds), policy: config.shippingFailurePolicy,
                breaker: CircuitBreaker(dependency: ProviderShippingRates.dependency, metrics: metrics.factory), injector: injector,
                metrics: metrics.factory, logger: logger)
        } else {
            self.shippingRates = FallbackShippingRates()
        }
        self.idempotency = IdempotencyStore(database: primary, abandonedAfterSeconds: Int64(config.idempotencyAbandonSeconds))
        let commands = IdempotentCommands(database: primary, store: idempotency, failpoints: failpoints)
        self.walletCommands = WalletCommands(wallets: wallets, commands: commands)
        self.orderPlacement = OrderPlacement(orders: orders, shipping: shippingRates, commands: commands, events: events)
        let transport: any NotificationTransport = config.notifyWebhookURL.map { WebhookTransport(url: $0) }
            ?? LogTransport(logger: logger)
        self.dispatcher = NotificationDispatcher(
            database: primary, transport: transport,
            settings: .init(maxAttempts: config.notifyMaxAttempts, retryBaseMilliseconds: config.notifyRetryBaseMilliseconds,
                            retryMaxMilliseconds: config.notifyRetryMaxMilliseconds,
                            claimSeconds: Int64(config.notifyClaimSeconds)),
            injector: injector, evidence: evidence, metrics: metrics.factory, logger: logger, failpoints: failpoints,
            isReady: { readiness.isReady })
        self.notifications = NotificationAdmin(database: primary, evidence: evidence)
        self.discrepancies = Discrepancies(database: primary)
        self.jobs = JobRunner(
            database: primary,
            jobs: Self.jobs(config: config, primary: primary, shadow: shadow, writer: shadowWriter, evidence: evidence,
                            appender: evidenceAppender, idempotency: idempotency, failpoints: failpoints, metrics: metrics,
                            logger: logger),
            logger: logger, leaseSeconds: Int64(config.jobLeaseSeconds), metrics: metrics.factory, isReady: { readiness.isReady })
        self.startupDatabaseWait = startupDatabaseWait
        primary.observePool(metrics.factory, store: "primary")
        shadow?.observePool(metrics.factory, store: "shadow")
        preinitializeMetrics(subscribers: eventSubscribers.map(\.0))
    }

    /// The jobs every process schedules (one run at a time across all of them).
    static func jobs(
        config: AppConfig, primary: Database, shadow: Database?, writer: ShadowWriter?, evidence: EvidenceLog,
        appender: EvidenceAppender, idempotency: IdempotencyStore, failpoints: Failpoints, metrics: MetricsRegistry,
        logger: Logger
    ) -> [Job] {
        let verifier = shadow.map {
            ShadowVerifier(primary: primary, shadow: $0, evidence: evidence, appender: appender, writer: writer,
                           metrics: metrics.factory, logger: logger, failpoints: failpoints)
        }
        let auditor = InvariantAuditor(database: primary, evidence: evidence, logger: logger, failpoints: failpoints,
                                       metrics: metrics.factory)
        return [
            Job(name: "shadow-discrepancy-verifier", intervalSeconds: config.shadowVerifierIntervalSeconds,
                enabled: config.shadowVerifierEnabled && verifier != nil) { parameters in
                guard let verifier else {
                    throw AppError(.conflict, "shadow writes are off (SHADOW_DATABASE_URL=none); there is nothing to verify")
                }
                return try await verifier.run(repair: parameters.repair, lease: parameters.lease).json
            },
            Job(name: "ledger-invariant-auditor", intervalSeconds: 3600, enabled: true) { parameters in
                try await auditor.run(lease: parameters.lease).json
            },
            Job(name: "idempotency-key-cleanup", intervalSeconds: 600, enabled: true) { _ in
                .object(["deleted": .integer(Int64(try await idempotency.prune()))])
            },
        ]
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
        if let shadow, config.migrateOnStart {
            // The shadow store never stops the primary: if it cannot be migrated now, run degraded (its writes
            // fail and are recorded; /health says so).
            do {
                try await Migrator(database: shadow, migrations: Storage.Schema.shadowMigrations, logger: logger).migrate()
            } catch {
                logger.error("cannot migrate the shadow store; shadow writes will fail until it can be reached", metadata: [
                    "error": "\(error)",
                ])
            }
        }
        if try await checkReady() {
            try await chaos.adoptStored()
        }
        let chaosState = injector.state
        logger.info("chaos settings", metadata: [
            "enabled": .stringConvertible(chaosState.enabled), "seed": .string(chaosState.seed),
            "scope": .string(chaosState.scope.rawValue), "failRate": .stringConvertible(chaosState.failRate),
            "version": .stringConvertible(Int(chaosState.version)),
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
