import BallastCore
import DomainValues
import Storage

/// A whole order without an idempotency key as one statement (PostgreSQL; ``OrderService/placeWithoutKey(_:quote:buyer:)``):
/// what ``OrderService/place(_:quote:buyer:in:)`` does in six round trips, in one, run as a transaction of its own.
///
/// - `stock` locks every ordered product that can give its units, in product-id order (the order the transaction
///   path takes them in, so the two cannot deadlock), re-checking each row once it holds its lock.
/// - `w` charges the buyer's own USD wallet subtotal + shipping, only if every line found its product (`lines`
///   equals the number of lines), the total is an amount (1 to 10^12) and the balance covers it.
/// - Only if `w` took the money: `taken` takes the units (from the rows `stock` holds), `l` writes the ledger row,
///   `o` the order, `i` its items and `n` the outbox rows (the buyer's email, one push per seller, in the order the
///   transaction path writes them, with the same data text).
///
/// One row per line, in line order, when the order was placed; no row when anything was missing, and then nothing
/// was changed (each write hangs on `w`). Lines must name distinct products: two lines of one product would each
/// be checked against the whole stock, so such orders take the transaction path.
struct OrderStatement: PreparedQuery {
    static let name = "ballast.order.place"
    static let sql = """
        WITH want AS (
            SELECT * FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS want(product_id, quantity, n)
        ), stock AS (
            SELECT products.id, products.seller_id, products.price, want.quantity, want.n
            FROM products JOIN want ON products.id = want.product_id
            WHERE products.status = 'active' AND products.deleted_at_micros IS NULL AND products.stock >= want.quantity
            ORDER BY products.id
            FOR NO KEY UPDATE OF products
        ), sums AS (
            SELECT count(*) AS lines, coalesce(sum(stock.price::numeric * stock.quantity), 0) AS subtotal FROM stock
        ), w AS (
            UPDATE wallets SET balance = wallets.balance - (sums.subtotal + $6)::bigint
            FROM sums
            WHERE sums.lines = cardinality($1::text[]) AND sums.subtotal + $6 BETWEEN 1 AND $12
                AND wallets.id = $5 AND wallets.owner_id = $4 AND wallets.currency = 'USD'
                AND wallets.balance >= sums.subtotal + $6
            RETURNING wallets.id, wallets.balance, sums.subtotal::bigint AS subtotal, sums.lines
        ), taken AS (
            UPDATE products SET stock = products.stock - stock.quantity
            FROM stock, w
            WHERE products.id = stock.id
            RETURNING products.id
        ), l AS (
            INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros)
            SELECT $11, w.id, 'debit', w.subtotal + $6, w.balance, 'order:' || $3, $3, $10 FROM w
            RETURNING id
        ), o AS (
            INSERT INTO orders (id, buyer_id, wallet_id, status, subtotal, shipping, total, shipping_source,
                                destination_country, destination_postal_code, created_at_micros, updated_at_micros)
            SELECT $3, $4, $5, 'paid', w.subtotal, $6, w.subtotal + $6, $7, $8, $9, $10, $10 FROM w
            RETURNING id
        ), i AS (
            INSERT INTO order_items (order_id, product_id, seller_id, quantity, unit_price)
            SELECT o.id, stock.id, stock.seller_id, stock.quantity, stock.price FROM o, stock
            RETURNING product_id
        ), sellers AS (
            SELECT stock.seller_id, row_number() OVER (ORDER BY min(stock.n)) AS rank,
                   string_agg('"' || stock.id || '"', ',' ORDER BY stock.n) AS products, sum(stock.quantity)::bigint AS units
            FROM stock GROUP BY stock.seller_id
        ), n AS (
            INSERT INTO notifications (id, channel, recipient, template, data, order_id, status, attempts,
                                       next_attempt_at_micros, created_at_micros, updated_at_micros, trace_parent)
            SELECT message.id, message.channel, message.recipient, message.template, message.data, $3, 'pending', 0,
                   \(Database.postgresNowMicros), \(Database.postgresNowMicros), \(Database.postgresNowMicros), $14
            FROM w, (
                SELECT ($13::text[])[1] AS id, 'email' AS channel, $4 AS recipient, 'order_confirmation' AS template,
                       '{"lines":' || w.lines || ',"orderId":"' || $3 || '","total":' || (w.subtotal + $6) || '}' AS data
                FROM w
                UNION ALL
                SELECT ($13::text[])[1 + sellers.rank], 'push', sellers.seller_id, 'new_order',
                       '{"orderId":"' || $3 || '","productIds":[' || sellers.products || '],"units":' || sellers.units || '}'
                FROM sellers
            ) AS message
            RETURNING id
        )
        SELECT stock.n, stock.id, stock.seller_id, stock.quantity, stock.price, w.subtotal FROM w, stock ORDER BY stock.n
        """
    static let parameters: [TypedParameter] = [
        .texts, .integers, .text, .text, .text, .integer, .text, .text, .text, .integer, .text, .integer, .texts, .text,
    ]

    struct Line: Sendable {
        let item: OrderItem
        let subtotal: Int64
    }

    let order: OrderID
    let request: OrderRequest
    let quote: ShippingQuote
    let buyer: UserID
    let nowMicros: Int64
    let entry = LedgerEntryID()
    /// The email's id, then one for each seller (there are at most as many sellers as lines).
    let notifications: [String]
    let traceParent: String?

    init(order: OrderID, request: OrderRequest, quote: ShippingQuote, buyer: UserID, nowMicros: Int64) {
        self.order = order
        self.request = request
        self.quote = quote
        self.buyer = buyer
        self.nowMicros = nowMicros
        self.notifications = (0...request.items.count).map { _ in NotificationID().description }
        self.traceParent = Traces.currentTraceParent()
    }

    var values: [TypedValue] {
        [.texts(request.items.map(\.productId.description)), .integers(request.items.map(\.quantity)), .text(order.description),
         .text(buyer.description), .text(request.walletId.description), .integer(quote.amountMinor), .text(quote.source.rawValue),
         .text(request.destination.country), .text(request.destination.postalCode), .integer(nowMicros), .text(entry.description),
         .integer(Amount.maximum), .texts(notifications), .text(traceParent)]
    }

    func decode(_ row: TypedRow) throws -> Line {
        guard let product = ProductID(try row.text(1)), let seller = UserID(try row.text(2)) else {
            throw StorageError.missingReturnedRow("an order line's product or seller is unreadable")
        }
        return Line(item: OrderItem(productId: product, sellerId: seller, quantity: try row.integer(3), unitPriceMinor: try row.integer(4)),
                    subtotal: try row.integer(5))
    }
}
