import BallastConfig
import Foundation
import Testing

@Suite("Configuration", .timeLimit(.minutes(10)))
struct AppConfigTests {
    @Test func defaultsNeedNoSetUp() throws {
        let config = try AppConfig.load(environment: [:])
        #expect(config.environment == .development)
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.databaseURL == .sqliteFile(path: "./data/ballast.sqlite"))
        #expect(config.shadowDatabaseURL == .sqliteFile(path: "./data/ballast-shadow.sqlite"))
        #expect(config.databasePoolSize == 10)
        #expect(config.adminToken == nil)
        #expect(config.chaos == ChaosSettings())
        #expect(config.chaos.enabled == false && config.chaos.failRate == 0 && config.chaos.scope == .shadowWriteOnly)
        #expect(config.chaos.abortErrorRate == 0.01)
        #expect(config.shadowVerifierEnabled)
        #expect(config.shadowQueueCapacity == 10_000)
        #expect(config.migrateOnStart)
        #expect(config.shadowVerifierIntervalSeconds == 900)
        #expect(config.shippingRatesURL == nil)
        #expect(config.shippingTimeoutMilliseconds == 2000)
        #expect(config.shippingFailurePolicy == .fallback)
        #expect(config.notifyWebhookURL == nil)
        #expect(config.notifyMaxAttempts == 8)
        #expect(config.notifyRetryBaseMilliseconds == 1000)
        #expect(config.notifyRetryMaxMilliseconds == 300_000)
        #expect(config.logLevel == .info)
        #expect(config.logFormat == .json)
    }

    @Test(arguments: [("development", true), ("test", true), ("staging", false), ("production", false)])
    func migrateOnStartDefaultsByEnvironment(environment: String, expected: Bool) throws {
        let config = try AppConfig.load(environment: ["APP_ENV": environment])
        #expect(config.migrateOnStart == expected)
        let forced = try AppConfig.load(environment: ["APP_ENV": environment, "MIGRATE_ON_START": String(!expected)])
        #expect(forced.migrateOnStart == !expected)
    }

    @Test func everyVariableIsRead() throws {
        let config = try AppConfig.load(environment: [
            "APP_ENV": "staging", "HOST": "0.0.0.0", "PORT": "9000",
            "DATABASE_URL": "postgres://app:secret@db.internal:6543/market",
            "SHADOW_DATABASE_URL": "none", "DATABASE_POOL_SIZE": "25",
            "BALLAST_ADMIN_TOKEN": String(repeating: "a", count: 40),
            "CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "0.25", "CHAOS_SEED": "replay-42", "CHAOS_SCOPE": "all_writes",
            "CHAOS_DURATION": "120", "CHAOS_LATENCY_MS": "250", "CHAOS_ABORT_ERROR_RATE": "0.05",
            "SHADOW_VERIFIER_ENABLED": "false", "SHADOW_QUEUE_CAPACITY": "500", "MIGRATE_ON_START": "true",
            "SHADOW_VERIFIER_INTERVAL": "60", "SHIPPING_RATES_URL": "https://rates.example.test/quote",
            "SHIPPING_TIMEOUT_MS": "1500", "SHIPPING_FAILURE_POLICY": "block",
            "NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9999/hook", "NOTIFY_MAX_ATTEMPTS": "3",
            "NOTIFY_RETRY_BASE_MS": "10", "NOTIFY_RETRY_MAX_MS": "100", "NOTIFY_CLAIM_SECONDS": "90", "SHADOW_CLAIM_SECONDS": "30",
            "JOB_LEASE_SECONDS": "6", "IDEMPOTENCY_ABANDON_SECONDS": "5", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
        ])
        #expect(config.notifyClaimSeconds == 90 && config.shadowClaimSeconds == 30 && config.jobLeaseSeconds == 6 && config.idempotencyAbandonSeconds == 5)
        #expect(config.environment == .staging)
        #expect(config.host == "0.0.0.0")
        #expect(config.port == 9000)
        #expect(config.databaseURL == .postgres(.init(
            host: "db.internal", port: 6543, username: "app", password: "secret", database: "market", tlsMode: .prefer)))
        #expect(config.shadowDatabaseURL == nil)
        #expect(config.databasePoolSize == 25)
        #expect(config.adminToken?.count == 40)
        #expect(config.chaos == ChaosSettings(
            enabled: true, failRate: 0.25, seed: "replay-42", scope: .allWrites, durationSeconds: 120,
            latencyMilliseconds: 250, abortErrorRate: 0.05))
        #expect(!config.shadowVerifierEnabled)
        #expect(config.shadowQueueCapacity == 500)
        #expect(config.migrateOnStart)
        #expect(config.shadowVerifierIntervalSeconds == 60)
        #expect(config.shippingRatesURL?.absoluteString == "https://rates.example.test/quote")
        #expect(config.shippingTimeoutMilliseconds == 1500)
        #expect(config.shippingFailurePolicy == .block)
        #expect(config.notifyWebhookURL?.absoluteString == "http://127.0.0.1:9999/hook")
        #expect(config.notifyMaxAttempts == 3)
        #expect(config.notifyRetryBaseMilliseconds == 10)
        #expect(config.notifyRetryMaxMilliseconds == 100)
        #expect(config.logLevel == .debug)
        #expect(config.logFormat == .text)
    }

    @Test func flagsOverrideTheEnvironment() throws {
        let config = try AppConfig.load(
            environment: ["PORT": "9000", "DATABASE_URL": "sqlite:/tmp/env.sqlite"],
            overrides: ["PORT": "9100"])
        #expect(config.port == 9100)
        #expect(config.databaseURL == .sqliteFile(path: "/tmp/env.sqlite"))
        // A bad flag is reported like a bad variable.
        #expect(throws: ConfigError.self) { try AppConfig.load(environment: ["PORT": "9000"], overrides: ["PORT": "x"]) }
    }

    @Test func anEmptyValueCountsAsUnset() throws {
        let config = try AppConfig.load(environment: ["PORT": "", "CHAOS_SEED": ""])
        #expect(config.port == 8080)
        #expect(config.chaos.seed == nil)
    }

    /// Every variable, with values it must refuse. Each refusal is one line that names the variable.
    static let badValues: [(String, String)] = [
        ("APP_ENV", "prod"), ("APP_ENV", "PRODUCTION"),
        ("HOST", "local host"), ("HOST", "127.0.0.1/8"),
        ("PORT", "abc"), ("PORT", "-1"), ("PORT", "65536"), ("PORT", "80.5"), ("PORT", " 80"),
        ("DATABASE_URL", "mysql://u@h/db"), ("DATABASE_URL", "sqlite:"), ("DATABASE_URL", "postgres://"),
        ("DATABASE_URL", "postgres://u:p@h:99999/db"), ("DATABASE_URL", "postgres://u@h/db?tlsmode=maybe"),
        ("DATABASE_URL", "./data/x.sqlite"),
        ("SHADOW_DATABASE_URL", "redis://h"), ("SHADOW_DATABASE_URL", "off"),
        ("DATABASE_POOL_SIZE", "0"), ("DATABASE_POOL_SIZE", "201"), ("DATABASE_POOL_SIZE", "ten"),
        ("BALLAST_ADMIN_TOKEN", "short"), ("BALLAST_ADMIN_TOKEN", String(repeating: "a", count: 31)),
        ("BALLAST_ADMIN_TOKEN", String(repeating: "a", count: 40) + " b"),
        ("CHAOS_ENABLED", "maybe"), ("CHAOS_ENABLED", "2"),
        ("CHAOS_FAIL_RATE", "1.5"), ("CHAOS_FAIL_RATE", "-0.1"), ("CHAOS_FAIL_RATE", "ten"), ("CHAOS_FAIL_RATE", "1e-2"),
        ("CHAOS_FAIL_RATE", "nan"),
        ("CHAOS_SEED", String(repeating: "s", count: 257)), ("CHAOS_SEED", "two\nlines"),
        ("CHAOS_SCOPE", "everything"), ("CHAOS_SCOPE", "SHADOW_WRITE_ONLY"),
        ("CHAOS_DURATION", "0"), ("CHAOS_DURATION", "soon"), ("CHAOS_DURATION", "1.5"),
        ("CHAOS_LATENCY_MS", "-5"), ("CHAOS_LATENCY_MS", "60001"),
        ("CHAOS_ABORT_ERROR_RATE", "2"), ("CHAOS_ABORT_ERROR_RATE", "1%"),
        ("SHADOW_VERIFIER_ENABLED", "sometimes"),
        ("SHADOW_QUEUE_CAPACITY", "0"), ("SHADOW_QUEUE_CAPACITY", "lots"),
        ("MIGRATE_ON_START", "auto"),
        ("SHADOW_VERIFIER_INTERVAL", "0"), ("SHADOW_VERIFIER_INTERVAL", "15m"),
        ("SHIPPING_RATES_URL", "ftp://rates.test"), ("SHIPPING_RATES_URL", "rates.test/quote"), ("SHIPPING_RATES_URL", "http://"),
        ("SHIPPING_TIMEOUT_MS", "0"), ("SHIPPING_TIMEOUT_MS", "2s"),
        ("SHIPPING_FAILURE_POLICY", "retry"),
        ("NOTIFY_WEBHOOK_URL", "mailto:ops@example.test"), ("NOTIFY_WEBHOOK_URL", "not a url"),
        ("NOTIFY_MAX_ATTEMPTS", "0"), ("NOTIFY_MAX_ATTEMPTS", "many"),
        ("NOTIFY_RETRY_BASE_MS", "0"), ("NOTIFY_RETRY_MAX_MS", "0"),
        ("NOTIFY_CLAIM_SECONDS", "9"), ("SHADOW_CLAIM_SECONDS", "5"), ("JOB_LEASE_SECONDS", "1"), ("IDEMPOTENCY_ABANDON_SECONDS", "0"),
        ("LOG_LEVEL", "verbose"), ("LOG_FORMAT", "xml"),
    ]

    @Test(arguments: badValues)
    func aBadValueStopsStartUpWithOneLineNamingTheVariable(variable: String, value: String) {
        do {
            _ = try AppConfig.load(environment: [variable: value])
            Issue.record("\(variable)=\(value) was accepted")
        } catch let error as ConfigError {
            #expect(error.variable == variable)
            #expect(error.message.hasPrefix("invalid \(variable)="))
            #expect(error.message.contains("expected"))
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func everyVariableHasABadValueCase() {
        let covered = Set(Self.badValues.map(\.0))
        #expect(covered == Set(AppConfig.variableNames))
    }

    @Test func retryMaximumBelowBaseIsRefused() {
        #expect(throws: ConfigError(
            variable: "NOTIFY_RETRY_MAX_MS",
            message: "invalid NOTIFY_RETRY_MAX_MS=\"500\": expected an integer no smaller than NOTIFY_RETRY_BASE_MS (1000)")
        ) {
            try AppConfig.load(environment: ["NOTIFY_RETRY_MAX_MS": "500"])
        }
    }

    @Test func secretsAreNotEchoedInErrors() {
        do {
            _ = try AppConfig.load(environment: ["BALLAST_ADMIN_TOKEN": "tooshort-secret"])
            Issue.record("accepted")
        } catch {
            #expect(!"\(error)".contains("tooshort-secret"))
        }
        do {
            _ = try AppConfig.load(environment: ["DATABASE_URL": "mysql://admin:hunter2@db/x"])
            Issue.record("accepted")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
        }
    }

    @Test func chaosInProductionIsFatal() {
        #expect(throws: ProductionChaosForbidden()) {
            try AppConfig.load(environment: ["APP_ENV": "production", "CHAOS_ENABLED": "true"])
        }
        #expect(ProductionChaosForbidden().description.split(separator: "\n").first
                == "FATAL: CHAOS_ENABLED=true is forbidden in production.")
        #expect(ProductionChaosForbidden().description.split(separator: "\n").count == 2)
    }

    @Test(arguments: ["development", "test", "staging"])
    func chaosIsAllowedOutsideProduction(environment: String) throws {
        let config = try AppConfig.load(environment: ["APP_ENV": environment, "CHAOS_ENABLED": "true"])
        #expect(config.chaos.enabled)
    }

    @Test func productionWithoutChaosStarts() throws {
        let config = try AppConfig.load(environment: ["APP_ENV": "production", "CHAOS_ENABLED": "false"])
        #expect(config.environment == .production)
        #expect(!config.migrateOnStart)
    }

    @Test(arguments: [("development", true), ("test", true), ("staging", false), ("production", false)])
    func readScopeOnlyInDevelopmentAndTest(environment: String, allowed: Bool) {
        let result = Result { try AppConfig.load(environment: ["APP_ENV": environment, "CHAOS_SCOPE": "reads"]) }
        switch result {
        case .success(let config):
            #expect(allowed)
            #expect(config.chaos.scope == .reads)
        case .failure(let error):
            #expect(!allowed)
            #expect((error as? ConfigError)?.variable == "CHAOS_SCOPE")
        }
    }
}
