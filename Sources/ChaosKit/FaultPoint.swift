/// A named place in the code where an injected fault may strike, e.g. `shadow.listing.create`.
/// Declared once here so a reader sees every place chaos can reach, and a test can target one.
public struct FaultPoint: Hashable, Sendable, CustomStringConvertible {
    /// Which scopes may touch a point. Primary transactions have no kind: no runtime scope reaches them
    /// (tests reach them through ``Failpoints``).
    public enum Kind: String, Sendable {
        case shadowWrite, nonCriticalWrite, read
    }

    public let name: String
    public let kind: Kind
    /// Metric labels of `chaos_injected_faults_total`.
    public let entityType: String
    public let operation: String

    public init(_ name: String, kind: Kind, entityType: String, operation: String) {
        self.name = name
        self.kind = kind
        self.entityType = entityType
        self.operation = operation
    }

    public var description: String { name }

    public static let shadowListingCreate = FaultPoint("shadow.listing.create", kind: .shadowWrite, entityType: "listing", operation: "create")
    public static let shadowListingUpdate = FaultPoint("shadow.listing.update", kind: .shadowWrite, entityType: "listing", operation: "update")
    public static let shadowListingDelete = FaultPoint("shadow.listing.delete", kind: .shadowWrite, entityType: "listing", operation: "delete")
    public static let notifyEmail = FaultPoint("notify.email", kind: .nonCriticalWrite, entityType: "notification", operation: "email")
    public static let notifyPush = FaultPoint("notify.push", kind: .nonCriticalWrite, entityType: "notification", operation: "push")
    public static let eventsDispatch = FaultPoint("events.dispatch", kind: .nonCriticalWrite, entityType: "event", operation: "dispatch")
    public static let shippingQuote = FaultPoint("shipping.quote", kind: .nonCriticalWrite, entityType: "shipping", operation: "quote")
    public static let readListing = FaultPoint("read.listing", kind: .read, entityType: "listing", operation: "read")
    public static let readProduct = FaultPoint("read.product", kind: .read, entityType: "product", operation: "read")
    public static let readOrder = FaultPoint("read.order", kind: .read, entityType: "order", operation: "read")
    public static let readWallet = FaultPoint("read.wallet", kind: .read, entityType: "wallet", operation: "read")

    /// Every point the marketplace declares.
    public static let all: [FaultPoint] = [
        .shadowListingCreate, .shadowListingUpdate, .shadowListingDelete, .notifyEmail, .notifyPush, .eventsDispatch,
        .shippingQuote, .readListing, .readProduct, .readOrder, .readWallet,
    ]
}
