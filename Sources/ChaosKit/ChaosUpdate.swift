import BallastConfig
import Foundation

/// A run-time change to fault injection (`PUT /api/admin/chaos`). Absent fields keep their value.
public struct ChaosUpdate: Sendable, Equatable {
    public var enabled: Bool?
    public var failRate: Double?
    public var scope: ChaosScope?
    public var seed: String?
    /// `.some(nil)` removes the time box; `.some(n)` sets one of n seconds from now.
    public var durationSeconds: Int??
    public var latencyMilliseconds: Int?
    /// Why the operator changes it (kept in the evidence record).
    public var reason: String?

    public init(enabled: Bool? = nil, failRate: Double? = nil, scope: ChaosScope? = nil, seed: String? = nil,
                durationSeconds: Int?? = nil, latencyMilliseconds: Int? = nil, reason: String? = nil) {
        self.enabled = enabled
        self.failRate = failRate
        self.scope = scope
        self.seed = seed
        self.durationSeconds = durationSeconds
        self.latencyMilliseconds = latencyMilliseconds
        self.reason = reason
    }

    /// Why an update is refused.
    public enum Refusal: Error, Sendable, Equatable {
        case forbiddenInProduction
        case invalid(field: String, message: String)
    }

    /// The state after applying this update to `current`, or the reason it is refused.
    public func applied(to current: ChaosState, environment: AppEnvironment, now: Date = Date()) throws(Refusal) -> ChaosState {
        var next = current
        if let failRate {
            guard failRate.isFinite, (0...1).contains(failRate) else {
                throw .invalid(field: "failRate", message: "failRate must be a number from 0.0 to 1.0")
            }
            next.failRate = failRate
        }
        if let scope { next.scope = scope }
        if let seed {
            // Unicode scalars, no control characters: the API's text policy (the edge checks it first).
            let scalars = seed.unicodeScalars
            guard !scalars.isEmpty, scalars.count <= 256, !scalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw .invalid(field: "seed", message: "seed must be 1 to 256 printable characters")
            }
            next.seed = seed
        }
        if let latencyMilliseconds {
            guard (0...60_000).contains(latencyMilliseconds) else {
                throw .invalid(field: "latencyMilliseconds", message: "latencyMilliseconds must be from 0 to 60000")
            }
            next.latencyMilliseconds = latencyMilliseconds
        }
        if let durationSeconds {
            if let seconds = durationSeconds {
                guard (1...31_536_000).contains(seconds) else {
                    throw .invalid(field: "durationSeconds", message: "durationSeconds must be from 1 to 31536000, or null")
                }
                next.expiresAt = now.addingTimeInterval(Double(seconds))
            } else {
                next.expiresAt = nil
            }
        }
        if let enabled {
            next.enabled = enabled
            // A new run starts a new time box only when one is asked for; a stale one would switch it off at once.
            if enabled, durationSeconds == nil, let expiresAt = next.expiresAt, expiresAt <= now { next.expiresAt = nil }
        }
        if !next.scope.isAllowed(in: environment) {
            throw .invalid(field: "scope", message: "scope reads is allowed only with APP_ENV=development or test")
        }
        if next.enabled && environment == .production { throw .forbiddenInProduction }
        next.reason = reason
        next.version = current.version + 1
        return next
    }
}
