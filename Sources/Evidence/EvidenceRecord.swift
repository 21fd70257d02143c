import Foundation

/// One tamper-evident record of something auditors care about: a shadow-write failure, a discrepancy, a chaos
/// configuration change, an admin action. Records are appended, never changed; each one's `contentHash` covers
/// its fields and the previous record's hash, so rewriting any record breaks the chain from there on.
public struct EvidenceRecord: Sendable, Equatable, Codable {
    public var id: UUID
    /// 1, 2, 3… without gaps: the position in the chain.
    public var seq: Int64
    /// Microseconds since the Unix epoch (shown as RFC 3339 UTC).
    public var occurredAtMicros: Int64
    public var controlId: String
    public var category: String
    public var eventType: String
    public var eventOutcome: String
    public var entityType: String?
    public var entityId: String?
    public var requestId: String?
    /// Canonical JSON text of the details object (sorted keys, no white space). Never personal data.
    public var details: String
    public var previousHash: String
    public var contentHash: String

    public init(id: UUID, seq: Int64, occurredAtMicros: Int64, controlId: String, category: String,
                eventType: String, eventOutcome: String, entityType: String?, entityId: String?, requestId: String?,
                details: String, previousHash: String, contentHash: String) {
        self.id = id
        self.seq = seq
        self.occurredAtMicros = occurredAtMicros
        self.controlId = controlId
        self.category = category
        self.eventType = eventType
        self.eventOutcome = eventOutcome
        self.entityType = entityType
        self.entityId = entityId
        self.requestId = requestId
        self.details = details
        self.previousHash = previousHash
        self.contentHash = contentHash
    }

    /// The hash a chain starts from.
    public static let genesisHash = String(repeating: "0", count: 64)
}

/// What a caller supplies; the log fills in id, seq, time and the hashes.
public struct EvidenceEvent: Sendable, Equatable {
    public var controlId: String
    public var category: String
    public var eventType: String
    public var eventOutcome: String
    public var entityType: String?
    public var entityId: String?
    public var requestId: String?
    public var details: CanonicalJSON
    /// What makes this event one event (`shadow-failure:listing:ID:VERSION`): an append that meets a key already
    /// in the log writes nothing, so a batch written again after its commit's answer was lost, or an event noticed
    /// by two processes, is recorded once. Not part of the record's hashed content.
    public var key: String?

    public init(controlId: String, category: String, eventType: String, eventOutcome: String,
                entityType: String? = nil, entityId: String? = nil, requestId: String? = nil,
                details: CanonicalJSON = .object([:]), key: String? = nil) {
        self.controlId = controlId
        self.category = category
        self.eventType = eventType
        self.eventOutcome = eventOutcome
        self.entityType = entityType
        self.entityId = entityId
        self.requestId = requestId
        self.details = details
        self.key = key
    }
}

/// The event types and controls the marketplace writes (SPEC §5, §7).
public enum EvidenceType {
    public static let shadowWriteFailure = "SHADOW_WRITE_FAILURE"
    public static let shadowWriteDiscrepancy = "SHADOW_WRITE_DISCREPANCY"
    /// The verifier made the shadow match the primary for a discrepancy it had recorded.
    public static let shadowWriteRepaired = "SHADOW_WRITE_REPAIRED"
    public static let chaosConfigChanged = "CHAOS_CONFIG_CHANGED"
    public static let notificationDeadLettered = "NOTIFICATION_DEAD_LETTERED"
    public static let adminAction = "ADMIN_ACTION"
    public static let invariantViolation = "INVARIANT_VIOLATION"
}

public enum EvidenceControl {
    /// System monitoring: shadow and chaos events.
    public static let systemMonitoring = "CC-7.2"
    /// Change management: admin actions.
    public static let changeManagement = "CC-8.1"
}

public enum EvidenceCategory {
    public static let processingIntegrity = "ProcessingIntegrity"
    public static let changeManagement = "ChangeManagement"
}
