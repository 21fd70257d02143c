import Evidence
import Foundation

/// Who did an admin action, for its evidence record: a user (id and role, never the name) or the system.
public struct AuditActor: Sendable, Equatable {
    public let id: String
    public let role: String
    /// The request that carried the action, if one did.
    public let requestId: String?

    public init(user: User, requestId: String?) {
        id = user.id.description
        role = user.role.rawValue
        self.requestId = requestId
    }

    public init(system name: String) {
        id = name
        role = "system"
        requestId = nil
    }
}

/// ADMIN_ACTION evidence (SOC 2 CC-8.1, change management): written in the same transaction as the change, so
/// a change without its record (or a record without its change) can never commit.
public enum AdminAction {
    public static func event(
        _ action: String, entityType: String, entityId: String, by actor: AuditActor,
        before: CanonicalJSON, after: CanonicalJSON, extra: [String: CanonicalJSON] = [:]
    ) -> EvidenceEvent {
        var details: [String: CanonicalJSON] = [
            "action": .string(action),
            "actorId": .string(actor.id),
            "actorRole": .string(actor.role),
            "before": before,
            "after": after,
        ]
        details.merge(extra) { current, _ in current }
        return EvidenceEvent(
            .adminAction, outcome: .success, entityType: entityType, entityId: entityId,
            requestId: actor.requestId, details: .object(details))
    }

    /// A product's state as evidence shows it: status, price, stock and whether it is deleted (no names).
    public static func state(_ product: Product) -> CanonicalJSON {
        [
            "status": .string(product.status.rawValue),
            "price": .integer(product.priceMinor),
            "stock": .integer(product.stock),
            "deleted": .bool(product.deletedAt != nil),
        ]
    }
}
