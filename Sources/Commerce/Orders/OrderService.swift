import ChaosKit
import DomainValues
import Foundation
import Metrics
import SQLKit
import Storage

/// Orders: where an order takes stock and payment (``place(_:quote:buyer:in:)``), and where a cancel gives
/// both back. Each is one transaction of conditional updates; any failure rolls back all of it.
public struct OrderService: Sendable {
    let database: Database
    let wallets: WalletService
    let failpoints: Failpoints
    let metrics: any MetricsFactory
    let reads: ReadFaults
    let events: EventBus?

    /// Failpoints inside order transactions, for tests that prove rollback.
    public enum Failpoint {
        public static let placeAfterStockUpdate = "order.place.after_stock_update"
        public static let placeAfterPayment = "order.place.after_payment"
        public static let cancelAfterStockReturn = "order.cancel.after_stock_return"
    }

    public init(
        database: Database, wallets: WalletService, failpoints: Failpoints, metrics: any MetricsFactory, reads: ReadFaults = .none,
        events: EventBus? = nil
    ) {
        self.events = events
        self.database = database
        self.wallets = wallets
        self.failpoints = failpoints
        self.metrics = metrics
        self.reads = reads
    }

    // MARK: Placing

    /// In the caller's transaction: takes stock from each product in product-id order (so two orders over the
    /// same products lock them in the same order and cannot deadlock), charges the buyer's wallet subtotal +
    /// shipping (the platform holds the revenue), writes the order and its items, and writes the outbox rows for
    /// the buyer's confirmation email and each seller's push. The quote was fetched before the transaction.
    public func place(_ request: OrderRequest, quote: ShippingQuote, buyer: User, in sql: Transaction) async throws -> Order {
        let id = OrderID()
        var items: [OrderItem] = []
        for item in request.items {
            items.append(try await takeStock(item, sql))
        }
        try failpoints.hit(Failpoint.placeAfterStockUpdate)

        var subtotal: Int64 = 0
        for item in items {
            let (line, lineOverflow) = item.unitPriceMinor.multipliedReportingOverflow(by: item.quantity)
            let (sum, sumOverflow) = subtotal.addingReportingOverflow(line)
            guard !lineOverflow, !sumOverflow else { throw tooExpensive() }
            subtotal = sum
        }
        let (total, overflow) = subtotal.addingReportingOverflow(quote.amountMinor)
        guard !overflow, let charge = Amount(total) else { throw tooExpensive() }

        // The payment, then the order and its items (no row of an order may exist without its payment; the
        // ledger row is linked to the order by id). The payment is the wallets' own prepared statement; on
        // PostgreSQL the order and its items are then one more statement (on SQLite, with no data-modifying CTEs,
        // two). The stock rows just locked are held across both round trips: one more than when the order's rows
        // rode in the payment's statement, the price of wallets that know orders only by id.
        _ = try await wallets.pay(order: id, from: request.walletId, total: charge, buyer: buyer, sql)
        let now = StoredTime.nowMicros()
        let orderColumns: SQLQueryString = """
            orders (id, buyer_id, wallet_id, status, subtotal, shipping, total, shipping_source, destination_country,
                    destination_postal_code, created_at_micros, updated_at_micros)
            """
        let orderValues: SQLQueryString = """
            \(bind: id.description), \(bind: buyer.id.description), \(bind: request.walletId.description), 'paid',
            \(bind: subtotal), \(bind: quote.amountMinor), \(bind: total), \(bind: quote.source.rawValue),
            \(bind: request.destination.country), \(bind: request.destination.postalCode), \(bind: now), \(bind: now)
            """
        var itemValues: SQLQueryString = ""
        for (index, item) in items.enumerated() {
            itemValues += index == 0 ? "" : ", "
            itemValues += """
                (\(bind: id.description), \(bind: item.productId.description), \(bind: item.sellerId.description),
                 \(bind: item.quantity), \(bind: item.unitPriceMinor))
                """
        }
        let itemColumns: SQLQueryString = "order_items (order_id, product_id, seller_id, quantity, unit_price)"
        if database.dialect == .postgres {
            try await sql.raw("""
                WITH o AS (INSERT INTO \(orderColumns) VALUES (\(orderValues)) RETURNING id)
                INSERT INTO \(itemColumns)
                SELECT v.order_id, v.product_id, v.seller_id, v.quantity, v.unit_price
                FROM o, (VALUES \(itemValues)) AS v (order_id, product_id, seller_id, quantity, unit_price)
                """).run()
        } else {
            try await sql.raw("INSERT INTO \(orderColumns) VALUES (\(orderValues))").run()
            try await sql.raw("INSERT INTO \(itemColumns) VALUES \(itemValues)").run()
        }
        try failpoints.hit(Failpoint.placeAfterPayment)

        try await Outbox.enqueue(Self.notifications(order: id, buyer: buyer.id, items: items, total: total), in: sql)
        let created = StoredTime.date(fromMicros: now)
        return Order(
            id: id, buyerId: buyer.id, walletId: request.walletId, status: .paid, items: items, subtotalMinor: subtotal,
            shippingMinor: quote.amountMinor, totalMinor: total, shippingSource: quote.source, destination: request.destination,
            createdAt: created, updatedAt: created)
    }

    /// An order without an idempotency key, in its own transaction: on PostgreSQL, when its lines name distinct
    /// products and no failpoint of the placement is armed, as one statement (``OrderStatement``: two round trips
    /// where the transaction takes six, and row locks held for one); when that statement places nothing (a line
    /// without its units, a product not for sale, too little money, too large a total), or on SQLite, by
    /// ``place(_:quote:buyer:in:)`` in a transaction, which either places it after all (the stock or the balance
    /// changed meanwhile) or says exactly why not.
    public func placeWithoutKey(_ request: OrderRequest, quote: ShippingQuote, buyer: User) async throws -> Order {
        if let order = try await placeInOneStatement(request, quote: quote, buyer: buyer) { return order }
        return try await database.transaction { transaction in try await place(request, quote: quote, buyer: buyer, in: transaction) }
    }

    private func placeInOneStatement(_ request: OrderRequest, quote: ShippingQuote, buyer: User) async throws -> Order? {
        guard database.dialect == .postgres, !failpoints.isArmed(Failpoint.placeAfterStockUpdate),
              !failpoints.isArmed(Failpoint.placeAfterPayment), !failpoints.isArmed(WalletService.Failpoint.debitAfterBalanceUpdate),
              Set(request.items.map(\.productId)).count == request.items.count
        else { return nil }
        let id = OrderID()
        let now = StoredTime.nowMicros()
        let lines = try await database.transactionOfOne({
            OrderStatement(order: id, request: request, quote: quote, buyer: buyer.id, nowMicros: now)
        }, then: { rows, _ in rows })
        guard let lines, let subtotal = lines.first?.subtotal else { return nil }
        // Every line or none: `w` charges only when each line found its product.
        guard lines.count == request.items.count else {
            throw StorageError.missingReturnedRow("order \(id) placed with \(lines.count) of \(request.items.count) lines")
        }
        let created = StoredTime.date(fromMicros: now)
        return Order(
            id: id, buyerId: buyer.id, walletId: request.walletId, status: .paid, items: lines.map(\.item), subtotalMinor: subtotal,
            shippingMinor: quote.amountMinor, totalMinor: subtotal + quote.amountMinor, shippingSource: quote.source,
            destination: request.destination, createdAt: created, updatedAt: created)
    }

    /// One conditional update: the product must be active, not deleted, and have the units. When it takes
    /// nothing, a read says why: 422 for a product that cannot be ordered, 409 insufficient_stock otherwise.
    private func takeStock(_ item: ShippedItem, _ sql: Transaction) async throws -> OrderItem {
        let taken = try await sql.raw("""
            UPDATE products SET stock = stock - \(bind: item.quantity)
            WHERE id = \(bind: item.productId.description) AND status = 'active' AND deleted_at_micros IS NULL
              AND stock >= \(bind: item.quantity)
            RETURNING seller_id, price
            """).first(decoding: TakenStock.self)
        if let taken, let seller = UserID(taken.seller_id) {
            return OrderItem(productId: item.productId, sellerId: seller, quantity: item.quantity, unitPriceMinor: taken.price)
        }
        let productId = item.productId.description
        guard let product = try await ProductService.fetch(item.productId, sql)?.product(), product.deletedAt == nil else {
            throw AppError(.validationFailed, "product \(productId) does not exist",
                           details: ["field": "items", "productId": .string(productId)])
        }
        guard product.status == .active else {
            throw AppError(.validationFailed, "product \(productId) is not for sale (it is \(product.status.rawValue))",
                           details: ["field": "items", "productId": .string(productId), "status": .string(product.status.rawValue)])
        }
        throw AppError(.insufficientStock, "product \(productId) has \(product.stock) in stock; the order asks for \(item.quantity)",
                       details: ["productId": .string(productId), "available": .integer(product.stock),
                                 "requested": .integer(item.quantity)])
    }

    private func tooExpensive() -> AppError {
        AppError.invalidField("items", "the order total would exceed \(Amount.maximum) minor units")
    }

    /// The buyer's confirmation email and one push per seller: ids and figures only.
    static func notifications(order: OrderID, buyer: UserID, items: [OrderItem], total: Int64) -> [OutboxMessage] {
        var messages = [OutboxMessage(
            channel: .email, recipient: buyer, template: "order_confirmation",
            data: ["orderId": .string(order.description), "total": .integer(total), "lines": .integer(Int64(items.count))],
            order: order)]
        var sellers: [UserID] = []
        for item in items where !sellers.contains(item.sellerId) { sellers.append(item.sellerId) }
        for seller in sellers {
            let own = items.filter { $0.sellerId == seller }
            messages.append(OutboxMessage(
                channel: .push, recipient: seller, template: "new_order",
                data: ["orderId": .string(order.description),
                       "productIds": .array(own.map { .string($0.productId.description) }),
                       "units": .integer(own.reduce(0) { $0 + $1.quantity })],
                order: order))
        }
        return messages
    }

    // MARK: Reading

    /// The order, for its buyer or an admin; anyone else gets "not found".
    public func order(_ id: OrderID, for caller: User, requestId: String? = nil) async throws -> Order {
        try await reads.strike(.readOrder, entityId: id.description, requestId: requestId)
        let order = try await database.read { sql in try await Self.fetch(id, sql) }
        guard let order, caller.isAdmin || order.buyerId == caller.id else { throw AppError.notFound("order") }
        return order
    }

    // MARK: Moving along

    /// paid → shipped (admins).
    public func ship(_ id: OrderID, by caller: User) async throws -> Order {
        try await move(id, from: .paid, to: .shipped, by: caller)
    }

    /// shipped → delivered (admins).
    public func deliver(_ id: OrderID, by caller: User) async throws -> Order {
        try await move(id, from: .shipped, to: .delivered, by: caller)
    }

    private func move(_ id: OrderID, from: OrderStatus, to: OrderStatus, by caller: User) async throws -> Order {
        guard caller.isAdmin else { throw AppError.forbidden("only admins can mark an order \(to.rawValue)") }
        let order: Order = try await database.transaction { sql in
            guard try await claimTransition(id, from: from, to: to, buyer: nil, sql) else {
                try await transitionRefused(id, from: from, to: to, caller: caller, sql)
            }
            guard let order = try await Self.fetch(id, sql) else { throw StorageError.missingReturnedRow("orders \(id)") }
            return order
        }
        countTransition(to)
        return order
    }

    /// paid → cancelled by the buyer or an admin: the status change, every unit back on its product (in
    /// product-id order) and the refund, in one transaction. Exactly one of a cancel and a ship racing on one
    /// order wins: both are conditional on the order still being paid. After the commit, `order.cancelled`.
    public func cancel(_ id: OrderID, by caller: User, requestId: String? = nil) async throws -> Order {
        let order: Order = try await database.transaction { sql in
            guard try await claimTransition(id, from: .paid, to: .cancelled, buyer: caller.isAdmin ? nil : caller.id, sql) else {
                try await transitionRefused(id, from: .paid, to: .cancelled, caller: caller, sql)
            }
            guard let order = try await Self.fetch(id, sql) else { throw StorageError.missingReturnedRow("orders \(id)") }
            for item in order.items {
                try await sql.raw("""
                    UPDATE products SET stock = stock + \(bind: item.quantity) WHERE id = \(bind: item.productId.description)
                    """).run()
            }
            try failpoints.hit(Failpoint.cancelAfterStockReturn)
            guard let total = Amount(order.totalMinor) else { throw StorageError.missingReturnedRow("orders \(id) total") }
            _ = try await wallets.refund(order: id, to: order.walletId, total: total, sql)
            return order
        }
        countTransition(.cancelled)
        events?.publish(.orderCancelled(order), requestId: requestId)
        return order
    }

    /// The conditional status change; `false` when the order is not in `from` (or not the buyer's).
    private func claimTransition(
        _ id: OrderID, from: OrderStatus, to: OrderStatus, buyer: UserID?, _ sql: Transaction
    ) async throws -> Bool {
        var query: SQLQueryString = """
            UPDATE orders SET status = \(bind: to.rawValue), updated_at_micros = \(bind: StoredTime.nowMicros())
            WHERE id = \(bind: id.description) AND status = \(bind: from.rawValue)
            """
        if let buyer { query += " AND buyer_id = \(bind: buyer.description)" }
        query += " RETURNING id"
        return try await sql.raw(query).first() != nil
    }

    private func transitionRefused(
        _ id: OrderID, from: OrderStatus, to: OrderStatus, caller: User, _ sql: any SQLDatabase
    ) async throws -> Never {
        guard let current = try await Self.fetch(id, sql), caller.isAdmin || current.buyerId == caller.id else {
            throw AppError.notFound("order")
        }
        throw AppError(.invalidTransition, "the order is \(current.status.rawValue); only a \(from.rawValue) order can become \(to.rawValue)",
                       details: ["orderId": .string(id.description), "status": .string(current.status.rawValue)])
    }

    /// Counts an order placement's outcome (`created`, `replayed` or an error code) in `orders_total`.
    public func countPlacement(_ outcome: String) {
        Counter(label: "orders_total", dimensions: [("outcome", outcome)], factory: metrics).increment()
    }

    /// Counts a status change in `order_transitions_total{to}`.
    private func countTransition(_ status: OrderStatus) {
        Counter(label: "order_transitions_total", dimensions: [("to", status.rawValue)], factory: metrics).increment()
    }

    static func fetch(_ id: OrderID, _ sql: any SQLDatabase) async throws -> Order? {
        guard let row = try await sql.raw("SELECT \(unsafeRaw: OrderRow.columnList) FROM orders WHERE id = \(bind: id.description)")
            .first(decoding: OrderRow.self)
        else { return nil }
        let items = try await sql.raw("""
            SELECT product_id, seller_id, quantity, unit_price FROM order_items
            WHERE order_id = \(bind: id.description) ORDER BY product_id
            """).all(decoding: OrderItemRow.self)
        return try row.order(items: items.map { try $0.item() })
    }
}

private struct TakenStock: Decodable {
    let seller_id: String
    let price: Int64
}

struct OrderRow: Decodable {
    static let columnList = """
        id, buyer_id, wallet_id, status, subtotal, shipping, total, shipping_source, destination_country,
        destination_postal_code, created_at_micros, updated_at_micros
        """
    let id: String
    let buyer_id: String
    let wallet_id: String
    let status: String
    let subtotal: Int64
    let shipping: Int64
    let total: Int64
    let shipping_source: String
    let destination_country: String
    let destination_postal_code: String
    let created_at_micros: Int64
    let updated_at_micros: Int64

    func order(items: [OrderItem]) throws -> Order {
        guard let id = OrderID(id), let buyer = UserID(buyer_id), let wallet = WalletID(wallet_id),
              let status = OrderStatus(rawValue: status), let source = ShippingQuote.Source(rawValue: shipping_source)
        else { throw StorageError.missingReturnedRow("orders row \(self.id) is unreadable") }
        return Order(
            id: id, buyerId: buyer, walletId: wallet, status: status, items: items, subtotalMinor: subtotal, shippingMinor: shipping,
            totalMinor: total, shippingSource: source,
            destination: Destination(country: destination_country, postalCode: destination_postal_code),
            createdAt: StoredTime.date(fromMicros: created_at_micros), updatedAt: StoredTime.date(fromMicros: updated_at_micros))
    }
}

struct OrderItemRow: Decodable {
    let product_id: String
    let seller_id: String
    let quantity: Int64
    let unit_price: Int64

    func item() throws -> OrderItem {
        guard let product = ProductID(product_id), let seller = UserID(seller_id) else {
            throw StorageError.missingReturnedRow("order_items row for \(product_id) is unreadable")
        }
        return OrderItem(productId: product, sellerId: seller, quantity: quantity, unitPriceMinor: unit_price)
    }
}
