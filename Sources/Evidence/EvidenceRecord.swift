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

/// The kinds of event the marketplace writes (SPEC §5, §7). Each kind has its one control and category, so a
/// producer names only the kind and its outcome (``EvidenceEvent/init(_:outcome:entityType:entityId:requestId:details:key:)``).
/// The log itself stores strings: it keeps, verifies and lists records of kinds this version does not know.
public enum EvidenceType: String, Sendable, CaseIterable {
    case shadowWriteFailure = "SHADOW_WRITE_FAILURE"
    case shadowWriteDiscrepancy = "SHADOW_WRITE_DISCREPANCY"
    /// The verifier made the shadow match the primary for a discrepancy it had recorded.
    case shadowWriteRepaired = "SHADOW_WRITE_REPAIRED"
    case chaosConfigChanged = "CHAOS_CONFIG_CHANGED"
    case notificationDeadLettered = "NOTIFICATION_DEAD_LETTERED"
    case adminAction = "ADMIN_ACTION"
    case invariantViolation = "INVARIANT_VIOLATION"

    /// Admin actions are change management; everything else is system monitoring.
    public var control: EvidenceControl { self == .adminAction ? .changeManagement : .systemMonitoring }
    public var category: EvidenceCategory { self == .adminAction ? .changeManagement : .processingIntegrity }
}

/// How the recorded event came out.
public enum EvidenceOutcome: String, Sendable, CaseIterable {
    case success = "SUCCESS"
    case failure = "FAILURE"
    case discrepancy = "DISCREPANCY"
}

public enum EvidenceControl: String, Sendable, CaseIterable {
    /// System monitoring: shadow and chaos events.
    case systemMonitoring = "CC-7.2"
    /// Change management: admin actions.
    case changeManagement = "CC-8.1"
}

public enum EvidenceCategory: String, Sendable, CaseIterable {
    case processingIntegrity = "ProcessingIntegrity"
    case changeManagement = "ChangeManagement"
}

extension EvidenceEvent {
    /// An event of one of the marketplace's own kinds: its control and category follow from the kind.
    public init(_ type: EvidenceType, outcome: EvidenceOutcome, entityType: String? = nil, entityId: String? = nil,
                requestId: String? = nil, details: CanonicalJSON = .object([:]), key: String? = nil) {
        self.init(controlId: type.control.rawValue, category: type.category.rawValue, eventType: type.rawValue,
                  eventOutcome: outcome.rawValue, entityType: entityType, entityId: entityId, requestId: requestId,
                  details: details, key: key)
    }
}
