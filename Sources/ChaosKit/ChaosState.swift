import BallastConfig
import Foundation

/// The fault-injection settings in force: what `/health` and `GET /api/admin/chaos` show, and what every
/// decision reads. Immutable; a change replaces the whole value.
public struct ChaosState: Sendable, Equatable {
    public var enabled: Bool
    public var failRate: Double
    public var scope: ChaosScope
    public var seed: String
    /// When injection switches itself off (the time box), or nil.
    public var expiresAt: Date?
    public var latencyMilliseconds: Int
    public var abortErrorRate: Double
    /// Bumped by every stored change, so processes sharing a database adopt only newer states.
    public var version: Int64
    /// Why injection was last switched off by itself or by an operator ("time box expired", …), if it was.
    public var reason: String?

    public init(enabled: Bool, failRate: Double, scope: ChaosScope, seed: String, expiresAt: Date?,
                latencyMilliseconds: Int, abortErrorRate: Double, version: Int64 = 0, reason: String? = nil) {
        self.enabled = enabled
        self.failRate = failRate
        self.scope = scope
        self.seed = seed
        self.expiresAt = expiresAt
        self.latencyMilliseconds = latencyMilliseconds
        self.abortErrorRate = abortErrorRate
        self.version = version
        self.reason = reason
    }

    /// The state configured at start (CHAOS_* variables), with `seed` already chosen.
    public init(settings: ChaosSettings, seed: String, now: Date = Date()) {
        self.init(
            enabled: settings.enabled, failRate: settings.failRate, scope: settings.scope, seed: seed,
            expiresAt: settings.durationSeconds.map { now.addingTimeInterval(Double($0)) },
            latencyMilliseconds: settings.latencyMilliseconds, abortErrorRate: settings.abortErrorRate)
    }

    /// Whether injection is live at `now`: switched on and not past its time box.
    public func isLive(at now: Date = Date()) -> Bool {
        enabled && (expiresAt.map { now < $0 } ?? true)
    }

    /// A random seed: 16 hex digits, reported so a run can be replayed.
    public static func randomSeed() -> String {
        String(format: "%016llx", UInt64.random(in: .min ... .max))
    }
}
