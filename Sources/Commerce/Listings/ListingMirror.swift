import Storage

/// What a listing change did, as a mirror of the listing sees it.
public enum ListingChange: String, Sendable, CaseIterable {
    case create, update, delete
}

/// Where a committed listing change goes besides the primary store. Commerce owns this seam, so listings know
/// nothing of who mirrors them; the shadow writer (Operations) is the one implementation.
public protocol ListingMirror: Sendable {
    /// Records `change` inside the listing's own transaction, so no commit happens without it on record; answers
    /// the hand-off to make once the transaction committed (never before: a rolled-back change is never mirrored).
    func record(_ listing: Listing, _ change: ListingChange, requestId: String?, in transaction: Transaction) async throws
        -> MirrorHandoff
}

/// One recorded change, to be handed to its mirror after the commit. Handing off never waits and never throws.
public struct MirrorHandoff: Sendable {
    private let send: @Sendable () -> Void

    public init(_ send: @escaping @Sendable () -> Void) {
        self.send = send
    }

    /// Hands the change over; call it once, after the transaction that recorded it committed.
    public func handOff() { send() }
}
