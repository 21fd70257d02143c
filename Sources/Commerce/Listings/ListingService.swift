import ChaosKit
import DomainValues
import Foundation
import SQLKit
import Storage

/// Listings on the primary store. Each change is recorded with its mirror (the shadow writer, when shadow writes
/// are on) in the change's own transaction, and handed to it after the commit; the response never waits for it.
public struct ListingService: Sendable {
    let database: Database
    let mirror: (any ListingMirror)?
    let reads: ReadFaults

    public init(database: Database, mirror: (any ListingMirror)?, reads: ReadFaults = .none) {
        self.database = database
        self.mirror = mirror
        self.reads = reads
    }

    public func create(_ new: NewListing, owner: User, requestId: String?) async throws -> Listing {
        let id = ListingID()
        let now = StoredTime.nowMicros()
        let (listing, handoff) = try await database.transaction { sql in
            guard let row = try await sql.raw("""
                INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros)
                VALUES (\(bind: id.description), \(bind: owner.id.description), \(bind: new.title), \(bind: new.priceMinor), 1,
                        \(bind: now), \(bind: now))
                RETURNING \(unsafeRaw: ListingRow.columnList)
                """).first(decoding: ListingRow.self)
            else { throw StorageError.missingReturnedRow("listings insert") }
            let listing = try row.listing()
            return (listing, try await mirror?.record(listing, .create, requestId: requestId, in: sql))
        }
        // After the commit: the change, already on record, goes to its mirror off the request path.
        handoff?.handOff()
        return listing
    }

    /// A listing that is not deleted; any signed-in user may read it.
    public func listing(_ id: ListingID, requestId: String? = nil) async throws -> Listing {
        try await reads.strike(.readListing, entityId: id.description, requestId: requestId)
        let row = try await database.read { sql in try await Self.fetch(id, sql) }
        guard let listing = try row?.listing(), listing.deletedAtMicros == nil else { throw AppError.notFound("listing") }
        return listing
    }

    /// Listings that are not deleted, oldest first, after `cursor`.
    public func list(after cursor: ListingCursor?, limit: Int, requestId: String? = nil) async throws
        -> (listings: [Listing], next: ListingCursor?)
    {
        try await reads.strike(.readListing, requestId: requestId)
        let rows = try await database.read { sql in
            var query: SQLQueryString = "SELECT \(unsafeRaw: ListingRow.columnList) FROM listings WHERE deleted_at_micros IS NULL"
            if let cursor { query += cursor.condition }
            query += " ORDER BY created_at_micros, id LIMIT \(bind: limit + 1)"
            return try await sql.raw(query).all(decoding: ListingRow.self)
        }
        let listings = try rows.prefix(limit).map { try $0.listing() }
        let next = rows.count > limit ? listings.last.map { ListingCursor(createdAtMicros: $0.createdAtMicros, id: $0.id) } : nil
        return (listings, next)
    }

    /// Changes title and/or price (owner or admin; anyone else gets 404) and raises the version.
    public func update(_ id: ListingID, _ edit: ListingEdit, by caller: User, requestId: String?) async throws -> Listing {
        try await change(id, .update, by: caller, requestId: requestId, """
            title = COALESCE(\(bind: edit.title), title), price = COALESCE(\(bind: edit.priceMinor), price)
            """)
    }

    /// Soft delete (owner or admin): the row keeps its data, gets `deleted_at` and a new version.
    public func delete(_ id: ListingID, by caller: User, requestId: String?) async throws -> Listing {
        try await change(id, .delete, by: caller, requestId: requestId, "deleted_at_micros = \(bind: StoredTime.nowMicros())")
    }

    /// One conditional update of a live listing the caller may change; the version goes up by one. The change is
    /// recorded with its mirror in the same transaction and handed to it after the commit.
    private func change(
        _ id: ListingID, _ change: ListingChange, by caller: User, requestId: String?, _ assignments: SQLQueryString
    ) async throws -> Listing {
        let (listing, handoff) = try await database.transaction { sql in
            guard let row = try await sql.raw("""
                UPDATE listings SET \(assignments), version = version + 1, updated_at_micros = \(bind: StoredTime.nowMicros())
                WHERE id = \(bind: id.description) AND deleted_at_micros IS NULL
                  AND (owner_id = \(bind: caller.id.description) OR \(bind: caller.isAdmin ? 1 : 0) = 1)
                RETURNING \(unsafeRaw: ListingRow.columnList)
                """).first(decoding: ListingRow.self)
            else { throw AppError.notFound("listing") }
            let listing = try row.listing()
            return (listing, try await mirror?.record(listing, change, requestId: requestId, in: sql))
        }
        handoff?.handOff()
        return listing
    }

    /// The current rows of `ids` (deleted ones included), by id.
    package static func rows(_ ids: [String], _ sql: any SQLDatabase) async throws -> [String: Listing] {
        guard !ids.isEmpty else { return [:] }
        var query: SQLQueryString = "SELECT \(unsafeRaw: ListingRow.columnList) FROM listings WHERE id IN ("
        for (index, id) in ids.enumerated() { query += index == 0 ? "\(bind: id)" : ", \(bind: id)" }
        query += ")"
        var listings: [String: Listing] = [:]
        for row in try await sql.raw(query).all(decoding: ListingRow.self) { listings[row.id] = try row.listing() }
        return listings
    }

    static func fetch(_ id: ListingID, _ sql: any SQLDatabase) async throws -> ListingRow? {
        try await sql.raw("SELECT \(unsafeRaw: ListingRow.columnList) FROM listings WHERE id = \(bind: id.description)")
            .first(decoding: ListingRow.self)
    }
}

struct ListingRow: Decodable {
    static let columnList = "id, owner_id, title, price, version, created_at_micros, updated_at_micros, deleted_at_micros"
    let id: String
    let owner_id: String
    let title: String
    let price: Int64
    let version: Int64
    let created_at_micros: Int64
    let updated_at_micros: Int64
    let deleted_at_micros: Int64?

    func listing() throws -> Listing {
        guard let id = ListingID(id), let owner = UserID(owner_id) else {
            throw StorageError.missingReturnedRow("listings row \(self.id) is unreadable")
        }
        return Listing(id: id, ownerId: owner, title: title, priceMinor: price, version: version, createdAtMicros: created_at_micros,
                       updatedAtMicros: updated_at_micros, deletedAtMicros: deleted_at_micros)
    }
}
