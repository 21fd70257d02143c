import ChaosKit
import Commerce
import Foundation

/// One row to mirror into the shadow store: the entity's full current state after a primary commit.
public struct ShadowWrite: Sendable, Equatable {
    /// The one entity type with a shadow copy (the label value of the shadow metrics and evidence).
    public static let shadowedEntityType = "listing"

    /// The change mirrored: the listings' own ``ListingChange``.
    public typealias Operation = ListingChange

    public let entityType: String
    public let operation: Operation
    public let listing: Listing
    /// The request whose commit this mirrors, for the failure's log line and evidence.
    public let requestId: String?
    /// The outbox row this write completes (its version and the claim that may complete it); nil for writes made
    /// without the outbox (tools, benchmarks).
    public let outbox: ShadowOutboxKey?
    /// The W3C `traceparent` of the request whose commit this mirrors, when it was traced: the write continues it.
    public let traceParent: String?
    /// Set when the write was decided to be held (a latency fault): the worker waits this long first.
    var delay: Duration?

    public init(
        _ listing: Listing, _ operation: Operation, requestId: String?, outbox: ShadowOutboxKey? = nil, traceParent: String? = nil
    ) {
        self.entityType = Self.shadowedEntityType
        self.operation = operation
        self.listing = listing
        self.requestId = requestId
        self.outbox = outbox
        self.traceParent = traceParent
        self.delay = nil
    }

    /// What makes one write's failure one event in the evidence log.
    var failureKey: String { "shadow-failure:\(entityType):\(entityId):\(outbox?.version ?? listing.version)" }

    /// `shadow.<entity>.<operation>`.
    public var point: FaultPoint {
        switch operation {
        case .create: return .shadowListingCreate
        case .update: return .shadowListingUpdate
        case .delete: return .shadowListingDelete
        }
    }

    public var entityId: String { listing.id.description }
}

/// Why a shadow write did not land.
public enum ShadowFailure: String, Sendable, CaseIterable {
    /// A fault injected at its fault point.
    case injected
    /// The shadow store answered with an error or could not be reached.
    case error
    /// The shadow store did not answer within the write timeout.
    case timeout
    /// The queue was full (or closed at shutdown) and the write was not kept.
    case dropped
}
