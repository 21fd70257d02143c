/// The identifiers of the domain's entities: UUIDs, lower-case in storage and in the API, typed so that one kind
/// cannot be passed for another. Here, below every domain module, so that a module can name another's entity (a
/// ledger row names its order) without depending on it.
public enum UserTag {}
public typealias UserID = TypedID<UserTag>
public enum WalletTag {}
public typealias WalletID = TypedID<WalletTag>
public enum TransferTag {}
public typealias TransferID = TypedID<TransferTag>
public enum LedgerEntryTag {}
public typealias LedgerEntryID = TypedID<LedgerEntryTag>
public enum ProductTag {}
public typealias ProductID = TypedID<ProductTag>
public enum OrderTag {}
public typealias OrderID = TypedID<OrderTag>
public enum ListingTag {}
public typealias ListingID = TypedID<ListingTag>
public enum NotificationTag {}
public typealias NotificationID = TypedID<NotificationTag>
