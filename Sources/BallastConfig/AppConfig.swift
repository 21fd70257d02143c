import Foundation

/// Which deployment this process is. Decides safe defaults (migrate on start) and what is forbidden (chaos in
/// production, read-path faults outside development and test).
public enum AppEnvironment: String, Sendable, CaseIterable {
    case development, test, staging, production
}

/// Which fault points a chaos experiment may touch (SPEC §6).
public enum ChaosScope: String, Sendable, CaseIterable {
    case shadowWriteOnly = "shadow_write_only"
    case allWrites = "all_writes"
    case reads
}

/// What an order does when the shipping provider fails.
public enum ShippingFailurePolicy: String, Sendable, CaseIterable {
    case fallback, block
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    case json, text
}

/// Log levels, in swift-log's order and spelling.
public enum LogLevelSetting: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// Fault-injection settings as configured at start (the run-time switch may change them later).
public struct ChaosSettings: Sendable, Equatable {
    public var enabled: Bool
    public var failRate: Double
    /// `nil` means "choose a random seed at start and report it".
    public var seed: String?
    public var scope: ChaosScope
    public var durationSeconds: Int?
    public var latencyMilliseconds: Int
    public var abortErrorRate: Double

    public init(enabled: Bool = false, failRate: Double = 0, seed: String? = nil, scope: ChaosScope = .shadowWriteOnly,
                durationSeconds: Int? = nil, latencyMilliseconds: Int = 0, abortErrorRate: Double = 0.01) {
        self.enabled = enabled
        self.failRate = failRate
        self.seed = seed
        self.scope = scope
        self.durationSeconds = durationSeconds
        self.latencyMilliseconds = latencyMilliseconds
        self.abortErrorRate = abortErrorRate
    }
}

/// Every setting of SPEC §2, typed and validated. Built once at start from the environment, with command-line
/// flags (passed as `overrides`, keyed by variable name) taking precedence.
public struct AppConfig: Sendable, Equatable {
    public var environment: AppEnvironment
    public var host: String
    public var port: Int
    public var databaseURL: DatabaseURL
    /// `nil` when shadow writes are off (`SHADOW_DATABASE_URL=none`).
    public var shadowDatabaseURL: DatabaseURL?
    public var databasePoolSize: Int
    public var adminToken: String?
    public var chaos: ChaosSettings
    public var shadowVerifierEnabled: Bool
    public var shadowQueueCapacity: Int
    public var migrateOnStart: Bool
    public var shadowVerifierIntervalSeconds: Int
    public var shippingRatesURL: URL?
    public var shippingTimeoutMilliseconds: Int
    public var shippingFailurePolicy: ShippingFailurePolicy
    public var notifyWebhookURL: URL?
    public var notifyMaxAttempts: Int
    public var notifyRetryBaseMilliseconds: Int
    public var notifyRetryMaxMilliseconds: Int
    /// How long a dispatcher's claim on one notification lasts (one attempt must fit inside it).
    public var notifyClaimSeconds: Int
    /// How long a process's claim on a shadow write in the outbox lasts before another process may apply it.
    public var shadowClaimSeconds: Int
    /// How long a job's lease lasts without renewal (renewed every third of it).
    public var jobLeaseSeconds: Int
    /// How old an in-flight Idempotency-Key claim must be before a retry takes it over.
    public var idempotencyAbandonSeconds: Int
    public var logLevel: LogLevelSetting
    public var logFormat: LogFormat

    /// The variables read, in the order they are checked (and documented).
    public static let variableNames = [
        "APP_ENV", "HOST", "PORT", "DATABASE_URL", "SHADOW_DATABASE_URL", "DATABASE_POOL_SIZE", "BALLAST_ADMIN_TOKEN",
        "CHAOS_ENABLED", "CHAOS_FAIL_RATE", "CHAOS_SEED", "CHAOS_SCOPE", "CHAOS_DURATION", "CHAOS_LATENCY_MS",
        "CHAOS_ABORT_ERROR_RATE", "SHADOW_VERIFIER_ENABLED", "SHADOW_QUEUE_CAPACITY", "MIGRATE_ON_START",
        "SHADOW_VERIFIER_INTERVAL", "SHIPPING_RATES_URL", "SHIPPING_TIMEOUT_MS", "SHIPPING_FAILURE_POLICY",
        "NOTIFY_WEBHOOK_URL", "NOTIFY_MAX_ATTEMPTS", "NOTIFY_RETRY_BASE_MS", "NOTIFY_RETRY_MAX_MS",
        "NOTIFY_CLAIM_SECONDS", "SHADOW_CLAIM_SECONDS", "JOB_LEASE_SECONDS", "IDEMPOTENCY_ABANDON_SECONDS",
        "LOG_LEVEL", "LOG_FORMAT",
    ]

    /// Reads and validates every variable. Throws ``ConfigError`` for the first bad value, or
    /// ``ProductionChaosForbidden`` when chaos is switched on in production.
    ///
    /// - Parameters:
    ///   - environment: usually `ProcessInfo.processInfo.environment`.
    ///   - overrides: values from command-line flags, keyed by variable name; they win over `environment`.
    public static func load(environment: [String: String], overrides: [String: String] = [:]) throws -> AppConfig {
        let reader = ConfigReader(values: environment.merging(overrides) { _, flag in flag })
        let appEnvironment = try reader.choice("APP_ENV", default: AppEnvironment.development)
        let host = try reader.host("HOST", default: "127.0.0.1")
        let port = try reader.integer("PORT", default: 8080, in: 0...65535)
        let databaseURL = try reader.databaseURL("DATABASE_URL", default: .sqliteFile(path: "./data/ballast.sqlite"))
        let shadowDatabaseURL = try reader.optionalDatabaseURL(
            "SHADOW_DATABASE_URL", default: .sqliteFile(path: "./data/ballast-shadow.sqlite"))
        let poolSize = try reader.integer("DATABASE_POOL_SIZE", default: 10, in: 1...200)
        let adminToken = try reader.adminToken("BALLAST_ADMIN_TOKEN")
        let chaosEnabled = try reader.boolean("CHAOS_ENABLED", default: false)
        let failRate = try reader.fraction("CHAOS_FAIL_RATE", default: 0)
        let seed = try reader.text("CHAOS_SEED", maxLength: 256)
        let scope = try reader.choice("CHAOS_SCOPE", default: ChaosScope.shadowWriteOnly)
        let durationSeconds = try reader.optionalInteger("CHAOS_DURATION", in: 1...31_536_000)
        let latencyMilliseconds = try reader.integer("CHAOS_LATENCY_MS", default: 0, in: 0...60_000)
        let abortErrorRate = try reader.fraction("CHAOS_ABORT_ERROR_RATE", default: 0.01)
        let verifierEnabled = try reader.boolean("SHADOW_VERIFIER_ENABLED", default: true)
        let queueCapacity = try reader.integer("SHADOW_QUEUE_CAPACITY", default: 10_000, in: 1...1_000_000)
        let migrateOnStart = try reader.boolean(
            "MIGRATE_ON_START", default: appEnvironment == .development || appEnvironment == .test)
        let verifierInterval = try reader.integer("SHADOW_VERIFIER_INTERVAL", default: 900, in: 1...604_800)
        let shippingURL = try reader.httpURL("SHIPPING_RATES_URL")
        let shippingTimeout = try reader.integer("SHIPPING_TIMEOUT_MS", default: 2000, in: 1...60_000)
        let shippingPolicy = try reader.choice("SHIPPING_FAILURE_POLICY", default: ShippingFailurePolicy.fallback)
        let notifyURL = try reader.httpURL("NOTIFY_WEBHOOK_URL")
        let notifyAttempts = try reader.integer("NOTIFY_MAX_ATTEMPTS", default: 8, in: 1...100)
        let retryBase = try reader.integer("NOTIFY_RETRY_BASE_MS", default: 1000, in: 1...3_600_000)
        let retryMax = try reader.integer("NOTIFY_RETRY_MAX_MS", default: 300_000, in: 1...86_400_000)
        if retryMax < retryBase {
            throw ConfigError.invalid(
                "NOTIFY_RETRY_MAX_MS", value: String(retryMax),
                accepts: "an integer no smaller than NOTIFY_RETRY_BASE_MS (\(retryBase))")
        }
        let notifyClaim = try reader.integer("NOTIFY_CLAIM_SECONDS", default: 120, in: 10...3600)
        let shadowClaim = try reader.integer("SHADOW_CLAIM_SECONDS", default: 120, in: 10...3600)
        let jobLease = try reader.integer("JOB_LEASE_SECONDS", default: 30, in: 3...3600)
        let abandon = try reader.integer("IDEMPOTENCY_ABANDON_SECONDS", default: 60, in: 1...86_400)
        let logLevel = try reader.choice("LOG_LEVEL", default: LogLevelSetting.info)
        let logFormat = try reader.choice("LOG_FORMAT", default: LogFormat.json)

        if appEnvironment == .production && chaosEnabled {
            throw ProductionChaosForbidden()
        }
        if scope == .reads && !(appEnvironment == .development || appEnvironment == .test) {
            throw ConfigError(
                variable: "CHAOS_SCOPE",
                message: "invalid CHAOS_SCOPE=\"reads\": allowed only with APP_ENV=development or test "
                    + "(APP_ENV is \(appEnvironment.rawValue)); use shadow_write_only or all_writes")
        }

        return AppConfig(
            environment: appEnvironment, host: host, port: port, databaseURL: databaseURL,
            shadowDatabaseURL: shadowDatabaseURL, databasePoolSize: poolSize, adminToken: adminToken,
            chaos: ChaosSettings(
                enabled: chaosEnabled, failRate: failRate, seed: seed, scope: scope, durationSeconds: durationSeconds,
                latencyMilliseconds: latencyMilliseconds, abortErrorRate: abortErrorRate),
            shadowVerifierEnabled: verifierEnabled, shadowQueueCapacity: queueCapacity, migrateOnStart: migrateOnStart,
            shadowVerifierIntervalSeconds: verifierInterval, shippingRatesURL: shippingURL,
            shippingTimeoutMilliseconds: shippingTimeout, shippingFailurePolicy: shippingPolicy,
            notifyWebhookURL: notifyURL, notifyMaxAttempts: notifyAttempts, notifyRetryBaseMilliseconds: retryBase,
            notifyRetryMaxMilliseconds: retryMax, notifyClaimSeconds: notifyClaim, shadowClaimSeconds: shadowClaim,
            jobLeaseSeconds: jobLease,
            idempotencyAbandonSeconds: abandon, logLevel: logLevel, logFormat: logFormat)
    }
}
