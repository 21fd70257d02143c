import BallastCore
import ChaosKit
import DomainValues
import Foundation
import Metrics
import SQLKit
import Storage

/// Wallets and their ledger. Every change is one transaction of conditional updates plus ledger rows; no
/// balance is ever read into Swift and written back.
///
/// The `…(in:)` variants run inside a caller's transaction (the idempotency layer stores its key in the same
/// transaction as the effect); the plain variants open their own.
public struct WalletService: Sendable {
    let database: Database
    let failpoints: Failpoints
    let metrics: any MetricsFactory
    let reads: ReadFaults
    /// Gathers concurrent debits without a key into one statement (``debitAlone(_:_:_:_:)``).
    let debits: DistinctBatcher<WalletID, Debit, DebitOutcome>

    /// How many batches of debits run at once, and how many debits one holds at most.
    static let debitRunners = 3
    static let debitBatchSize = 64

    /// Failpoints inside wallet transactions, for tests that prove rollback.
    public enum Failpoint {
        public static let debitAfterBalanceUpdate = "wallet.debit.after_balance_update"
        public static let creditAfterBalanceUpdate = "wallet.credit.after_balance_update"
        public static let transferBetweenWallets = "wallet.transfer.between_wallets"
    }

    public init(database: Database, failpoints: Failpoints, metrics: any MetricsFactory, reads: ReadFaults = .none) {
        self.database = database
        self.failpoints = failpoints
        self.metrics = metrics
        self.reads = reads
        self.debits = DistinctBatcher(
            runners: Self.debitRunners, maximumBatch: Self.debitBatchSize,
            run: { [database] debits in await Self.run(debits, on: database) },
            alone: { [database] debit in await Self.runAlone(debit, on: database) })
    }

    // MARK: Reading

    /// The wallet, if `caller` may see it (its owner or an admin); another user's wallet is "not found".
    public func wallet(_ id: WalletID, for caller: User, requestId: String? = nil) async throws -> Wallet {
        try await reads.strike(.readWallet, entityId: id.description, requestId: requestId)
        return try await visibleWallet(id, for: caller)
    }

    private func visibleWallet(_ id: WalletID, for caller: User) async throws -> Wallet {
        let row = try await database.read { sql in try await Self.fetch(id, sql) }
        guard let wallet = try row?.wallet(), caller.isAdmin || wallet.ownerId == caller.id else {
            throw AppError.notFound("wallet")
        }
        return wallet
    }

    /// Ledger entries, newest first, after the cursor (an entry number), at most `limit`.
    public func transactions(
        _ id: WalletID, for caller: User, beforeEntryNo: Int64?, limit: Int, requestId: String? = nil
    ) async throws -> (entries: [LedgerEntry], next: Int64?) {
        try await reads.strike(.readWallet, entityId: id.description, requestId: requestId)
        _ = try await visibleWallet(id, for: caller)
        let rows = try await database.read { sql in
            var select = sql.select().columns(LedgerRow.columns.map { SQLColumn($0) }).from("wallet_transactions")
                .where("wallet_id", .equal, SQLBind(id.description))
            if let beforeEntryNo { select = select.where("entry_no", .lessThan, SQLBind(beforeEntryNo)) }
            return try await select.orderBy("entry_no", .descending).limit(limit + 1).all(decoding: LedgerRow.self)
        }
        let entries = try rows.prefix(limit).map { try $0.entry() }
        return (entries, rows.count > limit ? entries.last?.entryNo : nil)
    }

    // MARK: Changing

    public func create(owner: User, currency: Currency) async throws -> Wallet {
        let id = WalletID()
        let now = StoredTime.nowMicros()
        try await database.transaction { sql in
            try await sql.raw("""
                INSERT INTO wallets (id, owner_id, currency, balance, created_at_micros)
                VALUES (\(bind: id.description), \(bind: owner.id.description), \(bind: currency.code), 0, \(bind: now))
                """).run()
        }
        count(.create, "success")
        return Wallet(id: id, ownerId: owner.id, currency: currency, balanceMinor: 0, createdAt: StoredTime.date(fromMicros: now))
    }

    /// A top-up (admins only: money entering the system). Refused with 422 if the balance would pass
    /// ``Wallet/maximumBalance``. Arguments: wallet, amount, reference, caller, the transaction.
    public func credit(_ id: WalletID, _ amount: Amount, _ reference: String?, _ caller: User, _ sql: Transaction) async throws -> WalletMovement {
        guard caller.isAdmin else { throw AppError.forbidden("only admins can credit a wallet") }
        do {
            let wallet = try await addToBalance(id, amount, sql)
            try failpoints.hit(Failpoint.creditAfterBalanceUpdate)
            let entry = try await appendLedger(wallet, .credit, amount, reference, sql)
            count(.credit, "success")
            return WalletMovement(wallet: wallet, entry: entry)
        } catch let error as AppError {
            count(.credit, error.code.rawValue)
            throw error
        }
    }

    /// A withdrawal by the owner or an admin: one conditional update (`balance >= amount`) and its ledger row.
    /// Arguments: wallet, amount, reference, caller, the transaction (credit and debit share one shape, so a
    /// route can take either).
    public func debit(_ id: WalletID, _ amount: Amount, _ reference: String?, _ caller: User, _ sql: Transaction) async throws -> WalletMovement {
        do {
            let movement = try await take(Debit(wallet: id, amount: amount, reference: reference, caller: caller), sql)
            count(.debit, "success")
            return movement
        } catch let error as AppError {
            count(.debit, error.code.rawValue)
            throw error
        }
    }

    /// A debit that is all its transaction holds (no idempotency key to store with it). On PostgreSQL it runs with
    /// no `BEGIN` or `COMMIT` (``Database/transactionOfOne(_:then:)``), and concurrent ones share one statement: the
    /// debits that arrive while earlier ones run are gathered (``DistinctBatcher``, at most one per wallet in a
    /// batch, ``debitBatchSize`` at most) into ``DebitBatchStatement``, which takes from each wallet and writes each
    /// ledger row, all or nothing, and commits them together: one round trip, one commit and one disk flush for the
    /// batch. A debit alone runs the one-debit statement of ``take(_:_:)``. Each debit's answer is the one it gets
    /// alone: its movement, or, when its wallet row did not qualify, the reason read afterwards (a read that
    /// decides nothing). A batch the server refuses outright changed nothing; its debits then run one by one, so
    /// no debit fails for another's sake. A batch whose outcome is unknown (the connection lost, no confirmation)
    /// answers each of its debits 503, as a lone debit would.
    ///
    /// `nil` when it cannot take that path (SQLite, or a test has armed the failpoint between the two writes; a
    /// test arms it before it sends the debit): the caller runs ``debit(_:_:_:_:_:)`` in a transaction.
    public func debitAlone(_ id: WalletID, _ amount: Amount, _ reference: String?, _ caller: User) async throws -> WalletMovement? {
        guard database.dialect == .postgres, !failpoints.isArmed(Failpoint.debitAfterBalanceUpdate) else { return nil }
        let debit = Debit(wallet: id, amount: amount, reference: reference, caller: caller)
        do {
            var outcome = try await debits.submit(debit, key: id).get()
            if case .skipped = outcome {
                // Its wallet row was held when its batch ran: it waits for the row alone, not in the batch.
                outcome = try await Self.runAlone(debit, on: database).get()
            }
            guard case .taken(let row) = outcome else {
                try await database.read { sql -> Void in try await debitFailure(debit, sql) }
                throw StorageError.missingReturnedRow("a refused debit's reason")
            }
            let movement = try row.movement()
            count(.debit, "success")
            return movement
        } catch let error as AppError {
            count(.debit, error.code.rawValue)
            throw error
        }
    }

    /// Runs a batch of debits without keys (see ``debitAlone(_:_:_:_:)``): each one's outcome (taken, refused, or
    /// skipped because another transaction held its wallet row: its caller runs it alone), or the error that
    /// stopped it.
    static func run(_ debits: [Debit], on database: Database) async -> [Result<DebitOutcome, any Error>] {
        guard debits.count > 1 else { return await eachAlone(debits, on: database) }
        do {
            let statement = { DebitBatchStatement(debits, nowMicros: StoredTime.nowMicros()) }
            // The answer runs no SQL: an error the server answered there would look like a refused batch below, and
            // the batch, committed by then, would run again.
            guard let rows = try await database.transactionOfOne(statement, then: { rows, _ in rows }) else {
                throw StorageError.unavailable("a batch of debits runs on PostgreSQL only")
            }
            var outcomes = [DebitOutcome?](repeating: nil, count: debits.count)
            for (index, outcome) in rows {
                // Cannot happen (each index is answered once); were it to, the batch has committed, so its debits'
                // outcome is unknown to the callers (503), not refused.
                guard outcomes.indices.contains(index), outcomes[index] == nil else {
                    throw StorageError.unavailable("a batch of debits answered row \(index + 1) twice or out of range")
                }
                outcomes[index] = outcome
            }
            // A debit with no answer row found its wallet row and took nothing: refused.
            return outcomes.map { .success($0 ?? .refused) }
        } catch where StorageError.isRefusedByTheServer(error) {
            // Nothing of the batch was written: each debit alone, so one the server refuses fails by itself.
            return await eachAlone(debits, on: database)
        } catch {
            return debits.map { _ in .failure(error) }
        }
    }

    /// Each debit as a transaction of its own, all at once; their results in order.
    private static func eachAlone(_ debits: [Debit], on database: Database) async -> [Result<DebitOutcome, any Error>] {
        guard debits.count > 1 else { return debits.isEmpty ? [] : [await runAlone(debits[0], on: database)] }
        return await withTaskGroup(of: (Int, Result<DebitOutcome, any Error>).self) { group in
            for (index, debit) in debits.enumerated() {
                group.addTask { (index, await runAlone(debit, on: database)) }
            }
            var results = [Result<DebitOutcome, any Error>](repeating: .success(.refused), count: debits.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
    }

    /// One debit as a transaction of its own: taken, or refused when its wallet row did not qualify.
    static func runAlone(_ debit: Debit, on database: Database) async -> Result<DebitOutcome, any Error> {
        do {
            guard let row = try await database.transactionOfOne(debit.statement, then: { rows, _ in rows.first }) else {
                throw StorageError.unavailable("a debit without a transaction runs on PostgreSQL only")
            }
            return .success(row.map { .taken($0) } ?? .refused)
        } catch {
            return .failure(error)
        }
    }

    /// An order's payment: `total` from the buyer's own USD wallet (an admin cannot pay from someone else's),
    /// its ledger row linked to the order by id. Runs in the order's transaction; the order's own rows are the
    /// caller's to write (the ledger knows an order only by its id).
    public func pay(
        order: OrderID, from id: WalletID, total: Amount, buyer: User, _ sql: Transaction
    ) async throws -> WalletMovement {
        try await take(Debit(wallet: id, amount: total, reference: "order:\(order)", caller: buyer, ownerOnly: true,
                             currency: .usd, order: order), sql)
    }

    /// An order's refund: `total` back to the wallet that paid it, linked to the order. Runs in the cancel's
    /// transaction.
    public func refund(order: OrderID, to id: WalletID, total: Amount, _ sql: Transaction) async throws -> WalletMovement {
        let wallet = try await addToBalance(id, total, sql)
        return WalletMovement(wallet: wallet, entry: try await appendLedger(wallet, .credit, total, "refund:order:\(order)", order: order, sql))
    }

    /// Moves `amount` between two wallets of one currency. Both wallets are updated in ascending id order, so
    /// two transfers in opposite directions take their row locks in the same order and cannot deadlock.
    public func transfer(
        from source: WalletID, to target: WalletID, amount: Amount, by caller: User, in sql: Transaction
    ) async throws -> TransferResult {
        do {
            guard source != target else { throw AppError.invalidField("toWalletId", "cannot transfer a wallet to itself") }
            guard let sourceRow = try await Self.fetch(source, sql), caller.isAdmin || sourceRow.owner_id == caller.id.description else {
                throw AppError.notFound("wallet")
            }
            guard let targetRow = try await Self.fetch(target, sql) else { throw AppError.notFound("wallet") }
            guard sourceRow.currency == targetRow.currency else {
                // Nothing of another user's wallet is told (SPEC I11), not even its currency: to a caller who does
                // not own the target, a wallet of another currency is one that cannot be paid, as if absent.
                guard caller.isAdmin || targetRow.owner_id == caller.id.description else { throw AppError.notFound("wallet") }
                throw AppError(.validationFailed, "the two wallets hold different currencies; a transfer needs one currency",
                               details: ["field": "toWalletId"])
            }
            let id = TransferID()
            let reference = "transfer:\(id)"
            var updated: [WalletID: Wallet] = [:]
            for step in source.description < target.description ? [source, target] : [target, source] {
                if step == source {
                    updated[step] = try await takeFromBalance(Debit(wallet: step, amount: amount, reference: nil, caller: caller), sql)
                } else {
                    updated[step] = try await addToBalance(step, amount, sql)
                }
                try failpoints.hit(Failpoint.transferBetweenWallets)
            }
            let from = updated[source]!, to = updated[target]!
            let now = StoredTime.nowMicros()
            // Both ledger rows in one statement: the row locks are held for as few round trips as possible.
            try await sql.raw("""
                INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, created_at_micros)
                VALUES (\(bind: LedgerEntryID().description), \(bind: source.description), 'debit', \(bind: amount.minorUnits),
                        \(bind: from.balanceMinor), \(bind: reference), \(bind: now)),
                       (\(bind: LedgerEntryID().description), \(bind: target.description), 'credit', \(bind: amount.minorUnits),
                        \(bind: to.balanceMinor), \(bind: reference), \(bind: now))
                """).run()
            try await sql.raw("""
                INSERT INTO transfers (id, from_wallet_id, to_wallet_id, amount, created_by, created_at_micros)
                VALUES (\(bind: id.description), \(bind: source.description), \(bind: target.description),
                        \(bind: amount.minorUnits), \(bind: caller.id.description), \(bind: StoredTime.nowMicros()))
                """).run()
            count(.transfer, "success")
            return TransferResult(id: id, from: from, to: to, amountMinor: amount.minorUnits)
        } catch let error as AppError {
            count(.transfer, error.code.rawValue)
            throw error
        }
    }

    // MARK: The conditional updates

    /// What a debit may take, and from whom.
    struct Debit: Sendable {
        let wallet: WalletID
        let amount: Amount
        let reference: String?
        let caller: User
        /// Only the owner may pay (orders); otherwise an admin may take from any wallet.
        var ownerOnly = false
        /// The currency the wallet must hold, when the debit is priced in one.
        var currency: Currency? = nil
        /// The order a payment belongs to.
        var order: OrderID? = nil

        /// The one-statement debit and its ledger row (PostgreSQL), with a new ledger entry id.
        func statement() -> DebitStatement {
            DebitStatement(self, entryId: LedgerEntryID(), nowMicros: StoredTime.nowMicros())
        }

        /// The conditions, besides the balance, that the wallet row must meet.
        var rowConditions: SQLQueryString {
            var conditions: SQLQueryString = "id = \(bind: wallet.description)"
            conditions += ownerOnly
                ? " AND owner_id = \(bind: caller.id.description)"
                : " AND (owner_id = \(bind: caller.id.description) OR \(bind: caller.isAdmin ? 1 : 0) = 1)"
            if let currency { conditions += " AND currency = \(bind: currency.code)" }
            return conditions
        }
    }

    /// The conditional debit and its ledger row. On PostgreSQL one prepared statement (a data-modifying CTE), so a
    /// debit takes the wallet's row lock and writes its ledger row in one round trip (a plain debit then holds it
    /// only until its commit; a payment, until the rest of its order's transaction commits), and the database plans
    /// it once per connection; on SQLite (no data-modifying CTEs, writers serialized anyway) two statements with the
    /// same all-or-nothing.
    func take(_ debit: Debit, _ sql: Transaction) async throws -> WalletMovement {
        if let rows = try await sql.prepared(debit.statement()) {
            let movement = try await taken(rows, debit, sql)
            try failpoints.hit(Failpoint.debitAfterBalanceUpdate)
            return movement
        }
        let amount = debit.amount.minorUnits
        let row = try await sql.raw("""
            UPDATE wallets SET balance = balance - \(bind: amount)
            WHERE \(debit.rowConditions) AND balance >= \(bind: amount)
            RETURNING \(unsafeRaw: WalletRow.columnList)
            """).first(decoding: WalletRow.self)
        guard let row else { try await debitFailure(debit, sql) }
        let wallet = try row.wallet()
        try failpoints.hit(Failpoint.debitAfterBalanceUpdate)
        return WalletMovement(wallet: wallet, entry: try await appendLedger(wallet, .debit, debit.amount, debit.reference, order: debit.order, sql))
    }

    /// What the debit statement's rows say: the movement, or (no row: nothing taken) why not, read on `sql`.
    private func taken(_ rows: [DebitStatement.Row], _ debit: Debit, _ sql: any SQLDatabase) async throws -> WalletMovement {
        guard let row = rows.first else { try await debitFailure(debit, sql) }
        return try row.movement()
    }

    /// After a conditional debit took nothing, says why (a read that decides nothing): 404 for a missing or
    /// foreign wallet, 422 for the wrong currency, else 409 insufficient_funds.
    private func debitFailure(_ debit: Debit, _ sql: any SQLDatabase) async throws -> Never {
        let caller = debit.caller
        guard let current = try await Self.fetch(debit.wallet, sql),
              current.owner_id == caller.id.description || (caller.isAdmin && !debit.ownerOnly)
        else { throw AppError.notFound("wallet") }
        if let currency = debit.currency, current.currency != currency.code {
            throw AppError.invalidField("walletId", "the wallet holds \(current.currency); this is priced in \(currency.code)")
        }
        throw AppError(.insufficientFunds, "wallet balance is \(current.balance); cannot take \(debit.amount)",
                       details: ["walletId": .string(debit.wallet.description), "balance": .integer(current.balance),
                                 "requested": .integer(debit.amount.minorUnits)])
    }

    /// The conditional update alone (transfers write both ledger rows in one statement afterwards).
    private func takeFromBalance(_ debit: Debit, _ sql: Transaction) async throws -> Wallet {
        let row = try await sql.raw("""
            UPDATE wallets SET balance = balance - \(bind: debit.amount.minorUnits)
            WHERE \(debit.rowConditions) AND balance >= \(bind: debit.amount.minorUnits)
            RETURNING \(unsafeRaw: WalletRow.columnList)
            """).first(decoding: WalletRow.self)
        if let row { return try row.wallet() }
        try await debitFailure(debit, sql)
    }

    private func addToBalance(_ id: WalletID, _ amount: Amount, _ sql: Transaction) async throws -> Wallet {
        let row = try await sql.raw("""
            UPDATE wallets SET balance = balance + \(bind: amount.minorUnits)
            WHERE id = \(bind: id.description) AND balance <= \(bind: Wallet.maximumBalance - amount.minorUnits)
            RETURNING \(unsafeRaw: WalletRow.columnList)
            """).first(decoding: WalletRow.self)
        if let row { return try row.wallet() }
        guard try await Self.fetch(id, sql) != nil else { throw AppError.notFound("wallet") }
        throw AppError(.validationFailed, "the balance would exceed the maximum of \(Wallet.maximumBalance)",
                       details: ["field": "amount"])
    }

    private func appendLedger(
        _ wallet: Wallet, _ kind: LedgerEntry.Kind, _ amount: Amount, _ reference: String?, order: OrderID? = nil,
        _ sql: Transaction
    ) async throws -> LedgerEntry {
        let id = LedgerEntryID()
        let now = StoredTime.nowMicros()
        guard let row = try await sql.raw("""
            INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros)
            VALUES (\(bind: id.description), \(bind: wallet.id.description), \(bind: kind.rawValue), \(bind: amount.minorUnits),
                    \(bind: wallet.balanceMinor), \(bind: reference), \(bind: order?.description), \(bind: now))
            RETURNING \(unsafeRaw: LedgerRow.columns.joined(separator: ", "))
            """).first(decoding: LedgerRow.self)
        else { throw StorageError.missingReturnedRow("wallet_transactions insert") }
        return try row.entry()
    }

    static func fetch(_ id: WalletID, _ sql: any SQLDatabase) async throws -> WalletRow? {
        try await sql.raw("SELECT \(unsafeRaw: WalletRow.columnList) FROM wallets WHERE id = \(bind: id.description)")
            .first(decoding: WalletRow.self)
    }

    /// What `wallet_operations_total{operation}` counts.
    public enum Operation: String, Sendable, CaseIterable {
        case create, credit, debit, transfer
    }

    private func count(_ operation: Operation, _ outcome: String) {
        Counter(label: "wallet_operations_total", dimensions: [("operation", operation.rawValue), ("outcome", outcome)], factory: metrics)
            .increment()
    }
}

struct WalletRow: Decodable {
    static let columnList = "id, owner_id, currency, balance, created_at_micros"
    let id: String
    let owner_id: String
    let currency: String
    let balance: Int64
    let created_at_micros: Int64

    func wallet() throws -> Wallet {
        guard let id = WalletID(id), let owner = UserID(owner_id), let currency = Currency(currency) else {
            throw StorageError.missingReturnedRow("wallets row \(self.id) is unreadable")
        }
        return Wallet(id: id, ownerId: owner, currency: currency, balanceMinor: balance, createdAt: StoredTime.date(fromMicros: created_at_micros))
    }
}

/// The debit of ``WalletService/take(_:_:)`` on PostgreSQL, prepared once per connection: the same
/// conditional update and ledger row in one statement, with the row conditions written so that one statement
/// serves every caller (`$4` is true when an admin may take from a wallet it does not own).
struct DebitStatement: PreparedQuery {
    static let name = "ballast.debit"
    static let sql = """
        WITH w AS (
            UPDATE wallets SET balance = balance - $1
            WHERE id = $2 AND (owner_id = $3 OR $4) AND ($5::text IS NULL OR currency = $5) AND balance >= $1
            RETURNING \(WalletRow.columnList)
        ), l AS (
            INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros)
            SELECT $6, w.id, 'debit', $1, w.balance, $7, $8, $9 FROM w
            RETURNING \(LedgerRow.columns.joined(separator: ", "))
        )
        SELECT w.id, w.owner_id, w.currency, w.balance, w.created_at_micros, l.entry_no, l.id AS entry_id,
               l.kind, l.amount, l.balance_after, l.reference, l.created_at_micros AS entry_created_at_micros
        FROM w, l
        """
    static let parameters: [TypedParameter] = [.integer, .text, .text, .boolean, .text, .text, .text, .text, .integer]

    let debit: WalletService.Debit
    let entryId: LedgerEntryID
    let nowMicros: Int64

    init(_ debit: WalletService.Debit, entryId: LedgerEntryID, nowMicros: Int64) {
        self.debit = debit
        self.entryId = entryId
        self.nowMicros = nowMicros
    }

    var values: [TypedValue] {
        [.integer(debit.amount.minorUnits), .text(debit.wallet.description), .text(debit.caller.id.description),
         .boolean(!debit.ownerOnly && debit.caller.isAdmin), .text(debit.currency?.code), .text(entryId.description),
         .text(debit.reference), .text(debit.order?.description), .integer(nowMicros)]
    }

    func decode(_ row: TypedRow) throws -> DebitRow { try DebitRow(row, from: 0) }
}

/// Several debits without keys, of distinct wallets, in one statement (``WalletService/run(_:on:)``): each the
/// conditional update and ledger row of ``DebitStatement``, for a caller that may take from the wallet and with
/// no currency or order. The statement never waits for a row lock: it locks the batch's wallet rows that are free
/// (`FOR NO KEY UPDATE SKIP LOCKED`, the lock the update itself takes, so rows that reference a wallet can still be
/// inserted meanwhile) and updates only those. So a transaction that holds one wallet's row (a paused process, a
/// long order) holds up that wallet's debit only, never the batch, and batches cannot deadlock with anything.
/// Answers one row per debit, with its place in the batch (from 0): taken (with its movement), or skipped (its
/// wallet row was held, or is not there; the caller runs that debit alone). A debit whose wallet row was locked but
/// did not qualify has no row: refused.
struct DebitBatchStatement: PreparedQuery {
    static let name = "ballast.debit.batch"
    static let sql = """
        WITH b AS (
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::boolean[])
                WITH ORDINALITY AS b(amount, wallet_id, caller_id, admin, entry_id, reference, has_reference, n)
        ), locked AS (
            SELECT wallets.id FROM wallets WHERE wallets.id IN (SELECT b.wallet_id FROM b)
            ORDER BY wallets.id FOR NO KEY UPDATE SKIP LOCKED
        ), w AS (
            UPDATE wallets SET balance = wallets.balance - b.amount
            FROM b, locked
            WHERE wallets.id = b.wallet_id AND locked.id = wallets.id AND (wallets.owner_id = b.caller_id OR b.admin)
                AND wallets.balance >= b.amount
            RETURNING wallets.id, wallets.owner_id, wallets.currency, wallets.balance, wallets.created_at_micros,
                b.n, b.entry_id, b.amount AS taken, b.reference, b.has_reference
        ), l AS (
            INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros)
            SELECT w.entry_id, w.id, 'debit', w.taken, w.balance, CASE WHEN w.has_reference THEN w.reference END, NULL, $8
            FROM w ORDER BY w.n
            RETURNING \(LedgerRow.columns.joined(separator: ", "))
        )
        SELECT w.n - 1, FALSE, w.id, w.owner_id, w.currency, w.balance, w.created_at_micros, l.entry_no, l.id,
               l.kind, l.amount, l.balance_after, l.reference, l.created_at_micros
        FROM w JOIN l ON l.id = w.entry_id
        UNION ALL
        SELECT b.n - 1, TRUE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM b WHERE b.wallet_id NOT IN (SELECT locked.id FROM locked)
        """
    static let parameters: [TypedParameter] = [.integers, .texts, .texts, .booleans, .texts, .texts, .booleans, .integer]

    let debits: [WalletService.Debit]
    let entryIds: [LedgerEntryID]
    let nowMicros: Int64

    init(_ debits: [WalletService.Debit], nowMicros: Int64) {
        precondition(debits.allSatisfy { !$0.ownerOnly && $0.currency == nil && $0.order == nil },
                     "a batch holds plain debits only")
        self.debits = debits
        self.entryIds = debits.map { _ in LedgerEntryID() }
        self.nowMicros = nowMicros
    }

    var values: [TypedValue] {
        [.integers(debits.map(\.amount.minorUnits)), .texts(debits.map(\.wallet.description)),
         .texts(debits.map(\.caller.id.description)), .booleans(debits.map(\.caller.isAdmin)),
         .texts(entryIds.map(\.description)), .texts(debits.map { $0.reference ?? "" }),
         .booleans(debits.map { $0.reference != nil }), .integer(nowMicros)]
    }

    func decode(_ row: TypedRow) throws -> (Int, DebitOutcome) {
        let index = Int(try row.integer(0))
        guard !(try row.boolean(1)) else { return (index, .skipped) }
        return (index, .taken(try DebitRow(row, from: 2)))
    }
}

/// What became of a debit without a key (``WalletService/debitAlone(_:_:_:_:)``).
enum DebitOutcome: Sendable {
    /// Taken: the wallet and the ledger row after it.
    case taken(DebitRow)
    /// Its wallet row did not qualify (missing, another's, too little money): nothing taken.
    case refused
    /// Its batch found the wallet row held by another transaction and left it: it runs again alone.
    case skipped
}

struct DebitRow: Decodable, Sendable {
    let id: String
    let owner_id: String
    let currency: String
    let balance: Int64
    let created_at_micros: Int64
    let entry_no: Int64
    let entry_id: String
    let kind: String
    let amount: Int64
    let balance_after: Int64
    let reference: String?
    let entry_created_at_micros: Int64

    /// The debit statements' answer columns, in their order (wallet, then ledger row), from column `first` on.
    init(_ row: TypedRow, from first: Int) throws {
        id = try row.text(first)
        owner_id = try row.text(first + 1)
        currency = try row.text(first + 2)
        balance = try row.integer(first + 3)
        created_at_micros = try row.integer(first + 4)
        entry_no = try row.integer(first + 5)
        entry_id = try row.text(first + 6)
        kind = try row.text(first + 7)
        amount = try row.integer(first + 8)
        balance_after = try row.integer(first + 9)
        reference = try row.optionalText(first + 10)
        entry_created_at_micros = try row.integer(first + 11)
    }

    func movement() throws -> WalletMovement {
        let wallet = try WalletRow(id: id, owner_id: owner_id, currency: currency, balance: balance,
                                   created_at_micros: created_at_micros).wallet()
        let entry = try LedgerRow(entry_no: entry_no, id: entry_id, wallet_id: id, kind: kind, amount: amount,
                                  balance_after: balance_after, reference: reference,
                                  created_at_micros: entry_created_at_micros).entry()
        return WalletMovement(wallet: wallet, entry: entry)
    }
}

struct LedgerRow: Decodable {
    static let columns = ["entry_no", "id", "wallet_id", "kind", "amount", "balance_after", "reference", "created_at_micros"]
    let entry_no: Int64
    let id: String
    let wallet_id: String
    let kind: String
    let amount: Int64
    let balance_after: Int64
    let reference: String?
    let created_at_micros: Int64

    func entry() throws -> LedgerEntry {
        guard let id = LedgerEntryID(id), let wallet = WalletID(wallet_id), let kind = LedgerEntry.Kind(rawValue: kind) else {
            throw StorageError.missingReturnedRow("wallet_transactions row \(self.id) is unreadable")
        }
        return LedgerEntry(id: id, walletId: wallet, kind: kind, amountMinor: amount, balanceAfterMinor: balance_after,
                           reference: reference, createdAt: StoredTime.date(fromMicros: created_at_micros), entryNo: entry_no)
    }
}
