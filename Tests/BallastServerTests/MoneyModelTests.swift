import BallastTestSupport
import Foundation
import HTTPTypes
import Commerce
import Testing

/// Model-based concurrency (a bank test in miniature): rounds of random credits, debits, transfers, orders,
/// cancels, and retries that reuse an Idempotency-Key, sent by concurrent clients; after every round the store is
/// compared with a small in-memory model built only from what the API acknowledged, and I1–I4 and I9 are checked.
///
/// A refusal is accepted only when some interleaving of the round explains it: a debit refused for insufficient
/// funds must ask for more than the wallet held at its lowest during the round, a cancel refused must have lost a
/// race to another cancel, a retry refused as "in use" must have had its twin in flight.
///
/// `BALLAST_MODEL_SEED` replays a run (the seed is printed when a check fails).
@Suite("Money model", .timeLimit(.minutes(10)))
struct MoneyModelTests {
    static let rounds = 20
    static let operationsPerRound = 16
    static let openingBalance: Int64 = 20_000
    static let openingStock: Int64 = 40

    @Test(arguments: TestStores.kinds)
    func randomConcurrentMoneyAndStockOperationsMatchTheModel(kind: StoreKind) async throws {
        let seed = ProcessInfo.processInfo.environment["BALLAST_MODEL_SEED"].flatMap { UInt64($0) } ?? 0x0BA1_1A57
        try await TestApp.run(kind) { app in
            var model = try await MoneyModel.setUp(app, members: 4, products: 3)
            for round in 0..<Self.rounds {
                var random = SplitMix64(seed: seed &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15)
                let operations = model.draw(Self.operationsPerRound, round: round, using: &random)
                let outcomes = try await Self.send(operations, app)
                let problems = model.apply(outcomes)
                #expect(problems.isEmpty, "seed \(seed) round \(round): \(problems.joined(separator: "; "))")
                let differences = try await model.compare(with: app)
                #expect(differences.isEmpty, "seed \(seed) round \(round): \(differences.joined(separator: "; "))")
                if !problems.isEmpty || !differences.isEmpty { return }
            }
            #expect(model.acknowledged >= Self.rounds * Self.operationsPerRound / 3, "too few operations succeeded to prove much")
        }
    }

    /// Sends every operation of a round at once; a retried one goes out twice, concurrently, with one key.
    static func send(_ operations: [MoneyModel.Operation], _ app: TestApp) async throws -> [MoneyModel.Outcome] {
        try await withThrowingTaskGroup(of: MoneyModel.Outcome.self) { group in
            for (index, operation) in operations.enumerated() {
                for copy in 0..<(operation.sentTwice ? 2 : 1) {
                    group.addTask {
                        var headers: HTTPFields = [:]
                        if let key = operation.key { headers[HTTPField.Name("Idempotency-Key")!] = key }
                        let reply = try await app.request(.post, operation.path, token: operation.token, headers: headers,
                                                          body: operation.body)
                        return MoneyModel.Outcome(index: index, copy: copy, operation: operation, reply: reply)
                    }
                }
            }
            var outcomes: [MoneyModel.Outcome] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { ($0.index, $0.copy) < ($1.index, $1.copy) }
        }
    }
}

/// What the API acknowledged so far, and nothing else.
struct MoneyModel {
    struct Member {
        let token: String
        let wallet: String
    }

    struct Product {
        let id: String
        let price: Int64
    }

    struct PlacedOrder {
        let id: String
        let buyer: Int
        let items: [(product: Int, quantity: Int64)]
        let total: Int64
        var cancelled: Bool
    }

    enum Kind: Equatable {
        case credit(wallet: Int, amount: Int64)
        case debit(wallet: Int, amount: Int64)
        case transfer(from: Int, to: Int, amount: Int64)
        case order(buyer: Int, items: [Int: Int64])
        case cancel(order: String)
    }

    struct Operation: Sendable {
        let kind: Kind
        let path: String
        let body: String?
        let token: String
        let key: String?
        /// Sent twice at once with the same key: must take effect once (I9).
        let sentTwice: Bool
    }

    struct Outcome: Sendable {
        let index: Int
        let copy: Int
        let operation: Operation
        let reply: TestReply
    }

    let adminToken = TestApp.adminToken
    var members: [Member] = []
    var products: [Product] = []
    var balances: [Int64] = []
    var stock: [Int64] = []
    var unitsStocked: [Int64] = []
    var orders: [PlacedOrder] = []
    /// Money that came in minus money that went out (credits and debits; transfers and orders move it inside).
    var external: Int64 = 0
    var acknowledged = 0
    private var keys = 0

    static func setUp(_ app: TestApp, members count: Int, products productCount: Int) async throws -> MoneyModel {
        var model = MoneyModel()
        for index in 0..<count {
            let (token, wallet) = try await app.buyer("member-\(index)", funds: Int(MoneyModelTests.openingBalance))
            model.members.append(Member(token: token, wallet: wallet))
            model.balances.append(MoneyModelTests.openingBalance)
            model.external += MoneyModelTests.openingBalance
        }
        let seller = try await app.createUser(name: "seller")
        for index in 0..<productCount {
            let price = Int64(300 + 200 * index)
            let id = try await app.createProduct(token: seller, sku: "model-\(index)", price: Int(price),
                                                 stock: Int(MoneyModelTests.openingStock))
            model.products.append(Product(id: id, price: price))
            model.stock.append(MoneyModelTests.openingStock)
            model.unitsStocked.append(MoneyModelTests.openingStock)
        }
        return model
    }

    // MARK: Drawing a round

    mutating func draw(_ count: Int, round: Int, using random: inout SplitMix64) -> [Operation] {
        var operations: [Operation] = []
        var cancelling: Set<String> = []
        for _ in 0..<count {
            let wallet = random.below(members.count)
            let amount = Int64(1 + random.below(3000))
            let kind: Kind
            switch random.below(10) {
            case 0, 1: kind = .credit(wallet: wallet, amount: Int64(1 + random.below(2000)))
            case 2, 3: kind = .debit(wallet: wallet, amount: amount)
            case 4, 5:
                kind = .transfer(from: wallet, to: (wallet + 1 + random.below(members.count - 1)) % members.count, amount: amount)
            case 6, 7, 8:
                var items: [Int: Int64] = [:]
                for _ in 0..<(1 + random.below(2)) { items[random.below(products.count), default: 0] += Int64(1 + random.below(4)) }
                kind = .order(buyer: wallet, items: items)
            default:
                let open = orders.filter { !$0.cancelled && !cancelling.contains($0.id) }
                guard !open.isEmpty else { continue }
                let order = open[random.below(open.count)]
                cancelling.insert(order.id)
                kind = .cancel(order: order.id)
            }
            operations.append(operation(kind, retried: random.below(5) == 0, round: round))
            // Now and then two cancels of one order race: exactly one may win.
            if case .cancel = kind, random.below(4) == 0 { operations.append(operation(kind, retried: false, round: round)) }
        }
        return operations
    }

    private mutating func operation(_ kind: Kind, retried: Bool, round: Int) -> Operation {
        keys += 1
        let key = "model-\(round)-\(keys)"
        switch kind {
        case .credit(let wallet, let amount):
            return Operation(kind: kind, path: "/api/wallets/\(members[wallet].wallet)/credit", body: #"{"amount":\#(amount)}"#,
                             token: adminToken, key: key, sentTwice: retried)
        case .debit(let wallet, let amount):
            return Operation(kind: kind, path: "/api/wallets/\(members[wallet].wallet)/debit", body: #"{"amount":\#(amount)}"#,
                             token: members[wallet].token, key: key, sentTwice: retried)
        case .transfer(let from, let to, let amount):
            return Operation(kind: kind, path: "/api/transfers", body: """
                {"fromWalletId":"\(members[from].wallet)","toWalletId":"\(members[to].wallet)","amount":\(amount)}
                """, token: members[from].token, key: key, sentTwice: retried)
        case .order(let buyer, let items):
            let lines = items.keys.sorted().map { #"{"productId":"\#(products[$0].id)","quantity":\#(items[$0]!)}"# }
            return Operation(kind: kind, path: "/api/orders", body: """
                {"walletId":"\(members[buyer].wallet)","items":[\(lines.joined(separator: ","))],"destination":{"country":"US","postalCode":"94107"}}
                """, token: members[buyer].token, key: key, sentTwice: retried)
        case .cancel(let order):
            let buyer = orders.first { $0.id == order }!.buyer
            return Operation(kind: kind, path: "/api/orders/\(order)/cancel", body: nil, token: members[buyer].token, key: nil,
                             sentTwice: false)
        }
    }

    // MARK: Applying what was acknowledged

    /// Applies the round's acknowledged effects and answers every refusal no interleaving explains.
    mutating func apply(_ outcomes: [Outcome]) -> [String] {
        var problems: [String] = []
        let startBalances = balances, startStock = stock
        // What left each wallet and product during the round (acknowledged): the lowest they can have been.
        var outflow = [Int64](repeating: 0, count: members.count)
        var taken = [Int64](repeating: 0, count: products.count)
        var cancelsWon: Set<String> = []
        let byIndex = Dictionary(grouping: outcomes, by: \.index)

        var refusals: [(operation: Operation, reply: TestReply)] = []
        for index in byIndex.keys.sorted() {
            let copies = byIndex[index]!
            let operation = copies[0].operation
            let succeeded = copies.filter { (200..<300).contains($0.reply.status.code) }
            for copy in copies where !(200..<300).contains(copy.reply.status.code) {
                // A retry that met its twin still in flight is told so; any other refusal must be explained.
                if operation.sentTwice, copy.reply.errorCode == "idempotency_key_in_use" { continue }
                refusals.append((operation, copy.reply))
            }
            if operation.sentTwice {
                // I9: at most one effect; a second 2xx is the first answer replayed, byte for byte.
                let fresh = succeeded.filter { $0.reply.headers[HTTPField.Name("Idempotent-Replayed")!] == nil }
                if fresh.count > 1 { problems.append("\(operation.path): one key took effect \(fresh.count) times") }
                if succeeded.count == 2, succeeded[0].reply.body != succeeded[1].reply.body {
                    problems.append("\(operation.path): a replay answered differently from the first answer")
                }
            }
            guard let winner = succeeded.first else {
                // Refused: judged after every effect of the round is known.
                continue
            }
            acknowledged += 1
            let json = winner.reply.json
            switch operation.kind {
            case .credit(let wallet, let amount):
                balances[wallet] += amount
                external += amount
            case .debit(let wallet, let amount):
                balances[wallet] -= amount
                outflow[wallet] += amount
                external -= amount
            case .transfer(let from, let to, let amount):
                balances[from] -= amount
                outflow[from] += amount
                balances[to] += amount
            case .order(let buyer, let items):
                guard let id = json["id"] as? String, let total = (json["total"] as? NSNumber)?.int64Value else {
                    problems.append("an acknowledged order without id or total: \(winner.reply.body)")
                    continue
                }
                let subtotal = items.reduce(Int64(0)) { $0 + products[$1.key].price * $1.value }
                if total != subtotal + FallbackShippingRates.domesticMinor {
                    problems.append("order \(id) charged \(total), not \(subtotal) + shipping")
                }
                balances[buyer] -= total
                outflow[buyer] += total
                for (product, quantity) in items {
                    stock[product] -= quantity
                    taken[product] += quantity
                }
                orders.append(PlacedOrder(id: id, buyer: buyer, items: items.map { ($0.key, $0.value) }, total: total, cancelled: false))
            case .cancel(let id):
                guard let position = orders.firstIndex(where: { $0.id == id }) else { continue }
                if cancelsWon.contains(id) { problems.append("order \(id) was cancelled twice"); continue }
                cancelsWon.insert(id)
                orders[position].cancelled = true
                balances[orders[position].buyer] += orders[position].total
                for item in orders[position].items { stock[item.product] += item.quantity }
            }
        }

        // Every refusal must be explained by some interleaving of this round.
        for (operation, reply) in refusals {
            let code = reply.errorCode ?? "status \(reply.status.code)"
            switch (operation.kind, code) {
            case (.debit(let wallet, let amount), "insufficient_funds"), (.transfer(let wallet, _, let amount), "insufficient_funds"):
                if amount <= startBalances[wallet] - outflow[wallet] {
                    problems.append("\(operation.path) of \(amount) refused for insufficient funds, but the wallet never held less than \(startBalances[wallet] - outflow[wallet])")
                }
            case (.order(let buyer, let items), "insufficient_funds"):
                let total = items.reduce(Int64(0)) { $0 + products[$1.key].price * $1.value } + FallbackShippingRates.domesticMinor
                if total <= startBalances[buyer] - outflow[buyer] {
                    problems.append("an order of \(total) refused for insufficient funds, but the wallet never held less than \(startBalances[buyer] - outflow[buyer])")
                }
            case (.order(_, let items), "insufficient_stock"):
                if items.allSatisfy({ $0.value <= startStock[$0.key] - taken[$0.key] }) {
                    problems.append("an order refused for insufficient stock, but every product kept enough: \(reply.body)")
                }
            case (.cancel(let id), "invalid_transition"):
                if !cancelsWon.contains(id) { problems.append("cancel of \(id) refused, and no other cancel won") }
            default:
                problems.append("\(operation.path) answered \(reply.status.code): \(reply.body)")
            }
        }
        return problems
    }

    // MARK: Comparing with the store

    /// The store against the model, and I1–I4 checked on the store itself.
    func compare(with app: TestApp) async throws -> [String] {
        var differences: [String] = []
        for (index, member) in members.enumerated() {
            let wallet = try await app.request(.get, "/api/wallets/\(member.wallet)", token: member.token)
            let balance = (wallet.json["balance"] as? NSNumber)?.int64Value
            if balance != balances[index] { differences.append("wallet \(index): the API shows \(balance.map(String.init) ?? "nothing"), the model \(balances[index])") }
            if let balance, balance < 0 { differences.append("I1: wallet \(index) is below zero") }
            let ledger = try await app.ledgerSum(member.wallet)
            if ledger != balances[index] { differences.append("I2: wallet \(index)'s ledger sums to \(ledger), its balance is \(balances[index])") }
        }
        let money = try await app.moneyConserved()
        if money.held != money.external || money.external != external {
            differences.append("I2: balances + revenue held = \(money.held), money in - out = \(money.external), the model \(external)")
        }
        for (index, product) in products.enumerated() {
            let stored = try await app.stock(product.id)
            if stored != stock[index] { differences.append("product \(index): stock \(stored), the model \(stock[index])") }
            let sold = try await app.unitsSold(product.id)
            if stored < 0 || stored + sold != unitsStocked[index] {
                differences.append("I3: product \(index): stock \(stored) + units in orders \(sold) != units stocked \(unitsStocked[index])")
            }
        }
        let stored = try await app.orderCount()
        if stored != Int64(orders.count) { differences.append("I4: \(stored) orders stored, \(orders.count) acknowledged") }
        for order in orders {
            let reply = try await app.request(.get, "/api/orders/\(order.id)", token: members[order.buyer].token)
            let status = reply.json["status"] as? String
            if status != (order.cancelled ? "cancelled" : "paid") { differences.append("order \(order.id) is \(status ?? "missing")") }
        }
        // I1–I4 as the server's own auditor sees them (each order's payment and refund included).
        let audit = try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: adminToken)
        let violations = ((audit.json["result"] as? [String: Any])?["violations"] as? NSNumber)?.intValue
        if violations != 0 { differences.append("the auditor found \(violations.map(String.init) ?? "?") violations: \(audit.body)") }
        return differences
    }
}

/// A small, fixed pseudo-random generator (SplitMix64): the same seed draws the same rounds on every machine.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
