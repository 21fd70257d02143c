import BallastCore
import DomainValues
import Evidence
import Foundation
import SQLKit
import Storage

/// What taking a product off sale would touch: its open orders and the money in them.
public struct ProductImpact: Sendable, Equatable {
    public let productId: ProductID
    public let status: ProductStatus
    public let stock: Int64
    /// Paid or shipped orders with this product.
    public var openOrders: Int64 { awaitingShipment + inTransit }
    /// Paid orders (not shipped yet).
    public let awaitingShipment: Int64
    /// Shipped orders (not delivered yet).
    public let inTransit: Int64
    public let unitsInOpenOrders: Int64
    /// What this product's lines in open orders were paid: money that a refund would give back.
    public let revenueAtRiskMinor: Int64

    public var json: JSONValue {
        .object([
            "productId": .string(productId.description), "status": .string(status.rawValue), "stock": .integer(stock),
            "openOrders": .integer(openOrders), "awaitingShipment": .integer(awaitingShipment),
            "inTransit": .integer(inTransit), "unitsInOpenOrders": .integer(unitsInOpenOrders),
            "revenueAtRisk": .integer(revenueAtRiskMinor),
        ])
    }
}

/// The guarded status changes (SPEC §5): impact preview, disable, archive, delete, restore, bulk disable. The
/// status check and the open-order count run in the transaction that changes the status, with the product row
/// held, and a new order needs the product active, so a destructive step cannot race an order.
extension ProductService {
    /// The impact preview, for the seller or an admin.
    public func impact(_ id: ProductID, for caller: User) async throws -> ProductImpact {
        try await database.read { sql in
            guard let product = try await Self.fetch(id, sql)?.product(), product.isManageable(by: caller),
                  product.deletedAt == nil
            else { throw AppError.notFound("product") }
            return try await Self.impacts(of: [product], sql)[0]
        }
    }

    /// active → disabled. Open orders do not block it (they are shown in the preview); it needs `confirm`.
    public func disable(_ id: ProductID, confirm: Bool, by caller: User, requestId: String?) async throws -> Product {
        let (product, changed) = try await auditedChange("disable", id, by: caller, requestId: requestId) { before, sql in
            switch before.status {
            case .disabled: return nil
            case .draft, .archived:
                throw Self.refusedTransition(before, "only an active product can be disabled")
            case .active:
                try await Self.requireConfirmation(confirm, "disabling takes the product off sale", before, sql)
                return try await update(id, sql, "status = 'disabled'")
            }
        }
        if changed { events?.publish(.productDisabled(product), requestId: requestId) }
        return product
    }

    /// disabled → archived, once every order with the product is delivered or cancelled.
    public func archive(_ id: ProductID, confirm: Bool, by caller: User, requestId: String?) async throws -> Product {
        try await audited("archive", id, by: caller, requestId: requestId) { before, sql in
            switch before.status {
            case .archived: return nil
            case .active:
                throw Self.refusedTransition(before, "an active product cannot be archived; disable it first (POST …/disable)")
            case .draft:
                throw Self.refusedTransition(before, "only a disabled product can be archived")
            case .disabled:
                try await Self.refuseWhileOpen(before, "archived", sql)
                try await Self.requireConfirmation(confirm, "archiving retires the product", before, sql)
                return try await update(id, sql, "status = 'archived'")
            }
        }
    }

    /// Soft delete (from draft, disabled or archived), once every order with the product is final. It keeps its
    /// status and can be restored for 30 days.
    public func delete(_ id: ProductID, confirm: Bool, by caller: User, requestId: String?) async throws -> Product {
        try await audited("delete", id, by: caller, requestId: requestId) { before, sql in
            guard before.status != .active else {
                throw Self.refusedTransition(before, "an active product cannot be deleted; disable it first (POST …/disable)")
            }
            try await Self.refuseWhileOpen(before, "deleted", sql)
            try await Self.requireConfirmation(confirm, "deleting hides the product (it can be restored for 30 days)", before, sql)
            return try await update(id, sql, "deleted_at_micros = \(bind: StoredTime.nowMicros())")
        }
    }

    /// Undoes a delete within 30 days; the product comes back disabled.
    public func restore(_ id: ProductID, by caller: User, requestId: String?) async throws -> Product {
        do {
            return try await restoreOnce(id, by: caller, requestId: requestId)
        } catch StorageError.uniqueViolation {
            // Another restore or create of the same SKU committed between the check below and the update.
            throw AppError(.conflict, "another product of this seller now uses this product's sku; change that one's sku first",
                           details: ["field": "sku", "productId": .string(id.description)])
        }
    }

    private func restoreOnce(_ id: ProductID, by caller: User, requestId: String?) async throws -> Product {
        try await audited("restore", id, by: caller, requestId: requestId, includeDeleted: true) { before, sql in
            guard let deletedAt = before.deletedAt else {
                throw Self.refusedTransition(before, "the product is not deleted")
            }
            let deletedMicros = StoredTime.micros(from: deletedAt)
            guard StoredTime.nowMicros() - deletedMicros <= Self.restoreWindowMicros else {
                throw AppError(.invalidTransition, "the product was deleted more than 30 days ago and can no longer be restored",
                               details: ["productId": .string(id.description),
                                         "deletedAt": .string(EvidenceTime.rfc3339(micros: deletedMicros))])
            }
            let clash = try await sql.raw("""
                SELECT id FROM products WHERE seller_id = \(bind: before.sellerId.description) AND sku = \(bind: before.sku)
                  AND deleted_at_micros IS NULL
                """).first()
            if clash != nil {
                throw AppError(.conflict, "another product of this seller now uses sku \(before.sku); change that one's sku first",
                               details: ["field": "sku", "productId": .string(id.description)])
            }
            return try await update(id, sql, "status = 'disabled', deleted_at_micros = NULL")
        }
    }

    /// Disables up to 500 active products at once (admins): every product is checked first and all change or
    /// none does. Each id that is missing, deleted or not active is listed in `details.problems`: 404 when any is
    /// missing or deleted, else 409 invalid_transition.
    public func bulkDisable(_ ids: [ProductID], confirm: Bool, by caller: User, requestId: String?) async throws -> [Product] {
        guard caller.isAdmin else { throw AppError.forbidden() }
        let disabled: [Product] = try await database.transaction { sql in
            let lock = database.dialect == .postgres ? " FOR UPDATE" : ""
            var query: SQLQueryString = "SELECT \(unsafeRaw: ProductRow.columnList) FROM products WHERE id IN ("
            for (index, id) in ids.sorted(by: { $0.description < $1.description }).enumerated() {
                query += index == 0 ? "\(bind: id.description)" : ", \(bind: id.description)"
            }
            query += ") ORDER BY id\(unsafeRaw: lock)"
            let found = try await sql.raw(query).all(decoding: ProductRow.self).map { try $0.product() }
            let byId = Dictionary(uniqueKeysWithValues: found.map { ($0.id, $0) })
            var problems: [JSONValue] = []
            var missing = false
            for id in ids {
                let problem: String?
                switch byId[id] {
                case nil:
                    problem = "not_found"
                    missing = true
                case let product? where product.deletedAt != nil:
                    problem = "deleted"
                    missing = true
                case let product? where product.status != .active: problem = "not_active (\(product.status.rawValue))"
                default: problem = nil
                }
                if let problem { problems.append(.object(["id": .string(id.description), "problem": .string(problem)])) }
            }
            // Every problem is listed; a product that is not there (or deleted) makes it a 404, one in another
            // status a 409 invalid_transition, as for a single disable.
            guard problems.isEmpty else {
                throw AppError(missing ? .notFound : .invalidTransition,
                               "\(problems.count) of \(ids.count) products cannot be disabled; nothing was changed",
                               details: ["field": "ids", "problems": .array(problems)])
            }
            let products = ids.compactMap { byId[$0] }
            guard confirm else {
                let impacts = try await Self.impacts(of: products, sql)
                throw AppError(.confirmationRequired,
                               "disabling takes \(products.count) products off sale; send confirm: true to go ahead",
                               details: ["impacts": .array(impacts.map(\.json)),
                                         "openOrders": .integer(impacts.reduce(0) { $0 + $1.openOrders })])
            }
            var update: SQLQueryString = """
                UPDATE products SET status = 'disabled', updated_at_micros = \(bind: StoredTime.nowMicros()) WHERE id IN (
                """
            for (index, product) in products.enumerated() {
                update += index == 0 ? "\(bind: product.id.description)" : ", \(bind: product.id.description)"
            }
            update += ") RETURNING \(unsafeRaw: ProductRow.columnList)"
            let changed = try await sql.raw(update).all(decoding: ProductRow.self).map { try $0.product() }
            guard changed.count == products.count else { throw StorageError.missingReturnedRow("products bulk update") }
            try failpoints.hit(Failpoint.afterChange)
            let actor = AuditActor(user: caller, requestId: requestId)
            let after = Dictionary(uniqueKeysWithValues: changed.map { ($0.id, $0) })
            try await evidence.append(products.map { product in
                AdminAction.event(
                    "bulk_disable", entityType: "product", entityId: product.id.description, by: actor,
                    before: AdminAction.state(product), after: AdminAction.state(after[product.id] ?? product),
                    extra: ["batchSize": .integer(Int64(products.count))])
            }, in: sql)
            return products.compactMap { after[$0.id] }
        }
        for product in disabled { events?.publish(.productDisabled(product), requestId: requestId) }
        return disabled
    }

    // MARK: The guards

    static func refusedTransition(_ product: Product, _ message: String) -> AppError {
        AppError(.invalidTransition, message,
                 details: ["productId": .string(product.id.description), "status": .string(product.status.rawValue)])
    }

    /// 409 confirmation_required with the impact preview, unless `confirm`.
    static func requireConfirmation(_ confirm: Bool, _ what: String, _ product: Product, _ sql: any SQLDatabase) async throws {
        guard !confirm else { return }
        let impact = try await impacts(of: [product], sql)[0]
        throw AppError(.confirmationRequired, "\(what); review details.impact and send confirm: true to go ahead",
                       details: ["impact": impact.json])
    }

    /// 409 blocked, naming (up to 20 of) the open orders, while any order with the product is paid or shipped.
    static func refuseWhileOpen(_ product: Product, _ verb: String, _ sql: any SQLDatabase) async throws {
        struct OpenOrder: Decodable {
            let id: String
            let status: String
        }
        let open = try await sql.raw("""
            SELECT o.id, o.status FROM order_items i JOIN orders o ON o.id = i.order_id
            WHERE i.product_id = \(bind: product.id.description) AND o.status IN ('paid', 'shipped')
            ORDER BY o.created_at_micros, o.id LIMIT 21
            """).all(decoding: OpenOrder.self)
        guard !open.isEmpty else { return }
        let count = open.count > 20 ? try await impacts(of: [product], sql)[0].openOrders : Int64(open.count)
        throw AppError(.blocked,
                       "the product cannot be \(verb) while \(count) order(s) with it are open; ship and deliver or cancel them first",
                       details: ["productId": .string(product.id.description), "openOrderCount": .integer(count),
                                 "openOrders": .array(open.prefix(20).map {
                                     .object(["id": .string($0.id), "status": .string($0.status)])
                                 })])
    }

    /// The impact of each product (in the order given), from one grouped query.
    static func impacts(of products: [Product], _ sql: any SQLDatabase) async throws -> [ProductImpact] {
        guard !products.isEmpty else { return [] }
        struct Row: Decodable {
            let product_id: String
            let status: String
            let orders: Int64
            let units: Int64
            let revenue: Int64
        }
        var query: SQLQueryString = """
            SELECT i.product_id, o.status, CAST(count(*) AS BIGINT) AS orders, CAST(SUM(i.quantity) AS BIGINT) AS units,
                   CAST(SUM(i.quantity * i.unit_price) AS BIGINT) AS revenue
            FROM order_items i JOIN orders o ON o.id = i.order_id
            WHERE o.status IN ('paid', 'shipped') AND i.product_id IN (
            """
        for (index, product) in products.enumerated() {
            query += index == 0 ? "\(bind: product.id.description)" : ", \(bind: product.id.description)"
        }
        query += ") GROUP BY i.product_id, o.status"
        let rows = try await sql.raw(query).all(decoding: Row.self)
        return products.map { product in
            let mine = rows.filter { $0.product_id == product.id.description }
            let paid = mine.first { $0.status == "paid" }, shipped = mine.first { $0.status == "shipped" }
            return ProductImpact(
                productId: product.id, status: product.status, stock: product.stock,
                awaitingShipment: paid?.orders ?? 0, inTransit: shipped?.orders ?? 0,
                unitsInOpenOrders: mine.reduce(0) { $0 + $1.units }, revenueAtRiskMinor: mine.reduce(0) { $0 + $1.revenue })
        }
    }
}
