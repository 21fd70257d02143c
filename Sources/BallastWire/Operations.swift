import BallastCore
import Foundation

/// A background job and its last run.
public struct JobBody: Codable, Sendable, Equatable {
    public let name: String
    public let intervalSeconds: Int
    public let enabled: Bool
    public let running: Bool
    @Nullable public var lastRunAt: Date?
    @Nullable public var lastStatus: String?
    @Nullable public var lastDurationSeconds: Double?
    @Nullable public var nextRunAt: Date?

    public init(name: String, intervalSeconds: Int, enabled: Bool, running: Bool, lastRunAt: Date?, lastStatus: String?,
                lastDurationSeconds: Double?, nextRunAt: Date?) {
        self.name = name
        self.intervalSeconds = intervalSeconds
        self.enabled = enabled
        self.running = running
        self.lastRunAt = lastRunAt
        self.lastStatus = lastStatus
        self.lastDurationSeconds = lastDurationSeconds
        self.nextRunAt = nextRunAt
    }
}

/// One run of a job and its result (each job's own object).
public struct JobRunBody: Codable, Sendable, Equatable {
    public let name: String
    public let status: String
    public let durationSeconds: Double
    public let result: JSONValue

    public init(name: String, status: String, durationSeconds: Double, result: JSONValue) {
        self.name = name
        self.status = status
        self.durationSeconds = durationSeconds
        self.result = result
    }
}

/// A difference the shadow verifier found between the primary and the shadow.
public struct DiscrepancyBody: Codable, Sendable, Equatable {
    public let id: String
    public let entityType: String
    public let entityId: String
    public let discrepancyType: String
    public let fields: [String]
    public let expected: Bool
    public let status: String
    public let detectedAt: Date
    @Nullable public var resolvedAt: Date?
    @Nullable public var resolution: String?

    public init(id: String, entityType: String, entityId: String, discrepancyType: String, fields: [String],
                expected: Bool, status: String, detectedAt: Date, resolvedAt: Date?, resolution: String?) {
        self.id = id
        self.entityType = entityType
        self.entityId = entityId
        self.discrepancyType = discrepancyType
        self.fields = fields
        self.expected = expected
        self.status = status
        self.detectedAt = detectedAt
        self.resolvedAt = resolvedAt
        self.resolution = resolution
    }
}

/// One notification of the outbox.
public struct NotificationBody: Codable, Sendable, Equatable {
    public let id: String
    public let channel: String
    public let recipient: String
    public let template: String
    @Nullable public var orderId: String?
    public let status: String
    public let attempts: Int
    public let nextAttemptAt: Date
    @Nullable public var lastError: String?
    public let createdAt: Date
    @Nullable public var sentAt: Date?

    public init(id: String, channel: String, recipient: String, template: String, orderId: String?, status: String,
                attempts: Int, nextAttemptAt: Date, lastError: String?, createdAt: Date, sentAt: Date?) {
        self.id = id
        self.channel = channel
        self.recipient = recipient
        self.template = template
        self.orderId = orderId
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.createdAt = createdAt
        self.sentAt = sentAt
    }
}

/// Fault injection in force. `enabled` is whether injection is live now (a spent time box reads false even
/// before the monitor records it).
public struct ChaosBody: Codable, Sendable, Equatable {
    public let enabled: Bool
    public let failRate: Double
    public let scope: String
    public let seed: String
    @Nullable public var expiresAt: Date?
    @Nullable public var durationSeconds: Int?
    public let latencyMilliseconds: Int
    public let abortErrorRate: Double
    public let version: Int64
    @Nullable public var reason: String?

    public init(enabled: Bool, failRate: Double, scope: String, seed: String, expiresAt: Date?, durationSeconds: Int?,
                latencyMilliseconds: Int, abortErrorRate: Double, version: Int64, reason: String?) {
        self.enabled = enabled
        self.failRate = failRate
        self.scope = scope
        self.seed = seed
        self.expiresAt = expiresAt
        self.durationSeconds = durationSeconds
        self.latencyMilliseconds = latencyMilliseconds
        self.abortErrorRate = abortErrorRate
        self.version = version
        self.reason = reason
    }
}

/// An evidence record as the API (and `ballast evidence export`) shows it; `occurredAt` keeps the record's
/// microseconds.
public struct EvidenceBody: Codable, Sendable, Equatable {
    public let id: String
    public let seq: Int64
    public let occurredAt: String
    public let controlId: String
    public let category: String
    public let eventType: String
    public let eventOutcome: String
    @Nullable public var entityType: String?
    @Nullable public var entityId: String?
    @Nullable public var requestId: String?
    public let details: JSONValue
    public let contentHash: String
    public let previousHash: String

    public init(id: String, seq: Int64, occurredAt: String, controlId: String, category: String, eventType: String,
                eventOutcome: String, entityType: String?, entityId: String?, requestId: String?, details: JSONValue,
                contentHash: String, previousHash: String) {
        self.id = id
        self.seq = seq
        self.occurredAt = occurredAt
        self.controlId = controlId
        self.category = category
        self.eventType = eventType
        self.eventOutcome = eventOutcome
        self.entityType = entityType
        self.entityId = entityId
        self.requestId = requestId
        self.details = details
        self.contentHash = contentHash
        self.previousHash = previousHash
    }
}

/// The evidence chain recomputed: `{records, valid, firstInvalidId, …}`.
public struct VerificationBody: Codable, Sendable, Equatable {
    public let records: Int64
    public let valid: Bool
    @Nullable public var firstInvalidId: String?
    @Nullable public var firstInvalidSeq: Int64?
    @Nullable public var failure: String?
    public let headSeq: Int64
    public let headHash: String

    public init(records: Int64, valid: Bool, firstInvalidId: String?, firstInvalidSeq: Int64?, failure: String?,
                headSeq: Int64, headHash: String) {
        self.records = records
        self.valid = valid
        self.firstInvalidId = firstInvalidId
        self.firstInvalidSeq = firstInvalidSeq
        self.failure = failure
        self.headSeq = headSeq
        self.headHash = headHash
    }
}

/// `GET /health`: liveness, the checks and the chaos state (the same body with 503 when the primary is down).
public struct HealthReport: Codable, Sendable, Equatable {
    public struct Checks: Codable, Sendable, Equatable {
        public let database: String
        public let shadow: String

        public init(database: String, shadow: String) {
            self.database = database
            self.shadow = shadow
        }
    }

    public struct Chaos: Codable, Sendable, Equatable {
        public let enabled: Bool
        public let failRate: Double
        public let scope: String
        public let seed: String
        @Nullable public var expiresAt: String?
        /// Why injection last switched off (time box, steady-state guard, operator), if it did.
        @Nullable public var reason: String?

        public init(enabled: Bool, failRate: Double, scope: String, seed: String, expiresAt: String?, reason: String?) {
            self.enabled = enabled
            self.failRate = failRate
            self.scope = scope
            self.seed = seed
            self.expiresAt = expiresAt
            self.reason = reason
        }
    }

    public let status: String
    public let version: String
    public let environment: String
    public let uptimeSeconds: Int
    public let checks: Checks
    public let chaos: Chaos

    public init(status: String, version: String, environment: String, uptimeSeconds: Int, checks: Checks, chaos: Chaos) {
        self.status = status
        self.version = version
        self.environment = environment
        self.uptimeSeconds = uptimeSeconds
        self.checks = checks
        self.chaos = chaos
    }
}

/// `GET /health/ready`.
public struct ReadyReport: Codable, Sendable, Equatable {
    public let ready: Bool
    public let database: String
    public let migrated: Bool

    public init(ready: Bool, database: String, migrated: Bool) {
        self.ready = ready
        self.database = database
        self.migrated = migrated
    }
}
