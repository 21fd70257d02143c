import ChaosKit
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import SQLKit
import Storage

/// Products and their stock. Stock only ever changes by a relative, conditional update (`stock = stock + n`,
/// `… WHERE stock >= n`): restocks add, orders take (``OrderService``), cancels give back. Nothing writes an
/// absolute stock level, so two changes can never overwrite each other.
///
/// Every change by a seller or an admin writes ADMIN_ACTION evidence in its own transaction (``audited``).
public struct ProductService: Sendable {
    let database: Database
    let evidence: EvidenceLog
    let failpoints: Failpoints
    /// Told about products taken off sale, after commit.
    let events: EventBus?
    let reads: ReadFaults

    /// Failpoints inside product transactions, for tests that prove rollback.
    public enum Failpoint {
        /// After a product row changed, before its evidence record is written.
        public static let afterChange = "product.after_change"
    }

    /// How long a deleted product can be restored.
    public static let restoreWindowMicros: Int64 = 30 * 24 * 3600 * 1_000_000

    public init(
        database: Database, evidence: EvidenceLog, failpoints: Failpoints, events: EventBus? = nil, reads: ReadFaults = .none
    ) {
        self.database = database
        self.evidence = evidence
        self.failpoints = failpoints
        self.events = events
        self.reads = reads
    }

    // MARK: Reading

    /// The product, unless it is deleted (admins may ask for deleted ones with `includeDeleted`).
    public func product(_ id: ProductID, includeDeleted: Bool = false, for caller: User, requestId: String? = nil) async throws -> Product {
        try await reads.strike(.readProduct, entityId: id.description, requestId: requestId)
        let row = try await database.read { sql in try await Self.fetch(id, sql) }
        guard let product = try row?.product(), product.deletedAt == nil || (includeDeleted && caller.isAdmin) else {
            throw AppError.notFound("product")
        }
        return product
    }

    /// Products in creation order, oldest first, after `cursor`; deleted ones only for admins who ask.
    public func list(
        status: ProductStatus?, includeDeleted: Bool, after cursor: ProductCursor?, limit: Int, for caller: User,
        requestId: String? = nil
    ) async throws -> (products: [Product], next: ProductCursor?) {
        try await reads.strike(.readProduct, requestId: requestId)
        let showDeleted = includeDeleted && caller.isAdmin
        let rows = try await database.read { sql in
            var query: SQLQueryString = "SELECT \(unsafeRaw: ProductRow.columnList) FROM products WHERE 1 = 1"
            if let status { query += " AND status = \(bind: status.rawValue)" }
            if !showDeleted { query += " AND deleted_at_micros IS NULL" }
            if let cursor { query += cursor.condition }
            query += " ORDER BY created_at_micros, id LIMIT \(bind: limit + 1)"
            return try await sql.raw(query).all(decoding: ProductRow.self)
        }
        let products = try rows.prefix(limit).map { try $0.product() }
        let next = rows.count > limit
            ? ProductID(rows[limit - 1].id).map { ProductCursor(createdAtMicros: rows[limit - 1].created_at_micros, id: $0) }
            : nil
        return (products, next)
    }

    // MARK: Changing

    public func create(_ new: NewProduct, seller: User) async throws -> Product {
        let id = ProductID()
        let now = StoredTime.nowMicros()
        // One conditional insert: the seller's live SKUs are unique (a partial unique index), and a concurrent
        // create of the same SKU makes this one insert nothing (409) instead of failing on the index.
        let row: ProductRow? = try await database.transaction { sql in
            try await sql.raw("""
                INSERT INTO products (id, seller_id, sku, name, price, stock, units_stocked, status,
                                      created_at_micros, updated_at_micros)
                VALUES (\(bind: id.description), \(bind: seller.id.description), \(bind: new.sku), \(bind: new.name),
                        \(bind: new.priceMinor), \(bind: new.stock), \(bind: new.stock), 'draft', \(bind: now), \(bind: now))
                ON CONFLICT (seller_id, sku) WHERE deleted_at_micros IS NULL DO NOTHING
                RETURNING \(unsafeRaw: ProductRow.columnList)
                """).first(decoding: ProductRow.self)
        }
        guard let row else { throw Self.skuTaken(new.sku) }
        return try row.product()
    }

    static func skuTaken(_ sku: String) -> AppError {
        AppError(.conflict, "you already sell a product with sku \(sku)", details: ["field": "sku"])
    }

    /// Changes name and/or price.
    public func edit(_ id: ProductID, _ edit: ProductEdit, by caller: User, requestId: String?) async throws -> Product {
        try await audited("edit", id, by: caller, requestId: requestId) { _, sql in
            try await update(id, sql, """
                name = COALESCE(\(bind: edit.name), name), price = COALESCE(\(bind: edit.priceMinor), price)
                """)
        }
    }

    /// Adds `quantity` units (1 to ``Product/maximumStockChange``).
    public func restock(_ id: ProductID, quantity: Int64, by caller: User, requestId: String?) async throws -> Product {
        try await audited("restock", id, by: caller, requestId: requestId) { before, sql in
            guard before.unitsStocked <= Product.maximumUnitsStocked - quantity else {
                throw AppError.invalidField("quantity", "this product may be stocked with at most \(Product.maximumUnitsStocked) units in all")
            }
            return try await update(id, sql, """
                stock = stock + \(bind: quantity), units_stocked = units_stocked + \(bind: quantity)
                """)
        }
    }

    /// Draft or disabled → active. Publishing an active product changes nothing and answers it as it is.
    public func publish(_ id: ProductID, by caller: User, requestId: String?) async throws -> Product {
        try await audited("publish", id, by: caller, requestId: requestId) { before, sql in
            switch before.status {
            case .active: return nil
            case .draft, .disabled: return try await update(id, sql, "status = 'active'")
            case .archived:
                throw AppError(.invalidTransition, "an archived product cannot be published again",
                               details: ["status": .string(before.status.rawValue), "productId": .string(id.description)])
            }
        }
    }

    /// One audited change: locks the product (404 unless the caller is its seller or an admin), lets `change`
    /// decide and write (`nil`: nothing to change, nothing recorded), then writes the ADMIN_ACTION record in the
    /// same transaction.
    func audited(
        _ action: String, _ id: ProductID, by caller: User, requestId: String?, includeDeleted: Bool = false,
        _ change: @escaping @Sendable (Product, Transaction) async throws -> Product?
    ) async throws -> Product {
        try await auditedChange(action, id, by: caller, requestId: requestId, includeDeleted: includeDeleted, change).product
    }

    /// ``audited`` that also says whether anything changed.
    func auditedChange(
        _ action: String, _ id: ProductID, by caller: User, requestId: String?, includeDeleted: Bool = false,
        _ change: @escaping @Sendable (Product, Transaction) async throws -> Product?
    ) async throws -> (product: Product, changed: Bool) {
        try await database.transaction { sql in
            let before = try await lockManageable(id, by: caller, includeDeleted: includeDeleted, sql)
            guard let after = try await change(before, sql) else { return (before, false) }
            try failpoints.hit(Failpoint.afterChange)
            try await evidence.append([AdminAction.event(
                action, entityType: "product", entityId: id.description, by: AuditActor(user: caller, requestId: requestId),
                before: AdminAction.state(before), after: AdminAction.state(after))], in: sql)
            return (after, true)
        }
    }

    // MARK: Helpers shared with the admin actions

    /// Reads the product for a change and holds its row until the transaction ends (PostgreSQL `FOR UPDATE`;
    /// SQLite transactions are `BEGIN IMMEDIATE`, so the whole store is held). 404 when it does not exist, is
    /// deleted, or belongs to another seller and the caller is no admin.
    func lockManageable(_ id: ProductID, by caller: User, includeDeleted: Bool = false, _ sql: Transaction) async throws -> Product {
        let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
        let row = try await sql.raw("""
            SELECT \(unsafeRaw: ProductRow.columnList) FROM products WHERE id = \(bind: id.description)\(unsafeRaw: lock)
            """).first(decoding: ProductRow.self)
        guard let product = try row?.product(), product.isManageable(by: caller),
              includeDeleted || product.deletedAt == nil
        else { throw AppError.notFound("product") }
        return product
    }

    /// Applies `assignments` (SQL with binds) to the product and stamps `updated_at`; answers the new row.
    func update(_ id: ProductID, _ sql: Transaction, _ assignments: SQLQueryString) async throws -> Product {
        let row = try await sql.raw("""
            UPDATE products SET \(assignments), updated_at_micros = \(bind: StoredTime.nowMicros())
            WHERE id = \(bind: id.description)
            RETURNING \(unsafeRaw: ProductRow.columnList)
            """).first(decoding: ProductRow.self)
        guard let row else { throw StorageError.missingReturnedRow("products update") }
        return try row.product()
    }

    static func fetch(_ id: ProductID, _ sql: any SQLDatabase) async throws -> ProductRow? {
        try await sql.raw("SELECT \(unsafeRaw: ProductRow.columnList) FROM products WHERE id = \(bind: id.description)")
            .first(decoding: ProductRow.self)
    }
}

struct ProductRow: Decodable {
    static let columns = ["id", "seller_id", "sku", "name", "price", "stock", "units_stocked", "status",
                          "created_at_micros", "updated_at_micros", "deleted_at_micros"]
    static let columnList = columns.joined(separator: ", ")

    let id: String
    let seller_id: String
    let sku: String
    let name: String
    let price: Int64
    let stock: Int64
    let units_stocked: Int64
    let status: String
    let created_at_micros: Int64
    let updated_at_micros: Int64
    let deleted_at_micros: Int64?

    func product() throws -> Product {
        guard let id = ProductID(id), let seller = UserID(seller_id), let status = ProductStatus(rawValue: status) else {
            throw StorageError.missingReturnedRow("products row \(self.id) is unreadable")
        }
        return Product(
            id: id, sellerId: seller, sku: sku, name: name, priceMinor: price, stock: stock, unitsStocked: units_stocked,
            status: status, createdAt: StoredTime.date(fromMicros: created_at_micros),
            updatedAt: StoredTime.date(fromMicros: updated_at_micros),
            deletedAt: deleted_at_micros.map(StoredTime.date(fromMicros:)))
    }
}
