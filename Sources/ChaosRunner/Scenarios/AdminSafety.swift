import BallastCore
import BallastWire
import Foundation
import NIOHTTP1
import Synchronization

/// Buyers ordering while an admin disables, archives, deletes, restores and publishes the same products, with
/// and without confirmation. Destructive changes must need confirm, never happen with open orders, and each
/// change must leave exactly one ADMIN_ACTION record whose before/after states chain up to the product's state.
final class AdminSafetyScenario: Scenario {
    let scenario = ScenarioName.adminSafety
    let chaos: ChaosPlan? = ChaosPlan(scope: "all_writes")
    private let shop = Shop(opening: 500_000)

    private struct Action: Sendable {
        let product: String
        let action: String
        let confirmed: Bool
        let status: Int?
    }

    private let actions = Mutex<[String: Action]>([:])

    func prepare(_ context: ScenarioContext) async throws {
        try await shop.open(context, sellers: 1, products: 5, stock: 200, price: 500...2_000, buyers: 10)
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let roll = Double.random(in: 0..<1, using: &random)
        if roll < 0.5 {
            // Two of the five products are never ordered, so archive and delete succeed on them as well.
            try await shop.order(&random, context, maxLines: 2, among: 3, refusals: ["insufficient_stock", "insufficient_funds", "validation_failed"])
        } else if roll < 0.6 {
            try await shop.cancel(&random, context)
        } else if roll < 0.7 {
            try await shop.ship(&random, context)
        } else {
            try await adminAction(&random, context)
        }
    }

    private func adminAction(_ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let products = shop.products
        let product = products[Int.random(in: 0..<products.count, using: &random)]
        let requestId = context.key(&random, "chaos-admin-")
        let roll = Double.random(in: 0..<1, using: &random)
        let (method, path, action, confirmed): (HTTPMethod, String, String, Bool) =
            switch roll {
            case ..<0.25: (.POST, "/disable", "disable", true)
            case ..<0.35: (.POST, "/disable", "disable", false)
            case ..<0.45: (.POST, "/archive", "archive", true)
            case ..<0.6: (.DELETE, "", "delete", true)
            case ..<0.65: (.DELETE, "", "delete", false)
            case ..<0.75: (.POST, "/restore", "restore", true)
            default: (.POST, "/publish", "publish", true)
            }
        let body: JSONValue? = ["disable", "archive", "delete"].contains(action) ? ["confirm": .bool(confirmed)] : nil
        let reply = try await context.call(
            method, "/api/products/\(product)\(path)", body: body, headers: ["X-Request-Id": requestId],
            refusals: ["confirmation_required", "invalid_transition", "blocked", "404", "validation_failed"])
        actions.withLock { $0[requestId] = Action(product: product, action: action, confirmed: confirmed, status: reply?.status) }
    }

    static func isDeleted(_ product: ProductBody?) -> Bool { product?.deletedAt != nil }
    /// Archived or deleted: a state the product may reach only without open orders.
    static func isGone(_ product: ProductBody?) -> Bool { product?.status == "archived" || isDeleted(product) }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        let audit = try await shop.audit(context)
        var checks = audit.checks
        let actions = actions.withLock { $0 }
        let products = shop.products
        let records = try await concurrentMap(products, width: context.concurrency) { product in
            try await context.api.all("read admin evidence", "/api/admin/evidence?eventType=ADMIN_ACTION&entityType=product&entityId=\(product)",
                                      of: EvidenceBody.self)
                .sorted { $0.seq < $1.seq }
        }

        // Unconfirmed or refused requests left no record; no request left two.
        var wrongRecords: [String] = []
        var seenRequests: [String: Int] = [:]
        for record in records.joined() {
            guard let requestId = record.requestId else { continue }
            seenRequests[requestId, default: 0] += 1
            guard let action = actions[requestId] else { continue }
            if !action.confirmed || !(200..<300).contains(action.status ?? 200) {
                wrongRecords.append("\(action.action) of \(action.product) (confirm \(action.confirmed), answered \(action.status.map(String.init) ?? "nothing")) left a record")
            }
        }
        let twice = seenRequests.filter { $0.value > 1 }.map { "request \($0.key) left \($0.value) records" }
        let unconfirmed = actions.values.filter { !$0.confirmed }.count
        checks.append(Check(
            scenario: name, invariant: "§5", name: "unconfirmed or refused changes leave nothing", holds: wrongRecords.isEmpty && twice.isEmpty,
            figures: [Figure("admin requests", actions.count), Figure("unconfirmed", unconfirmed),
                      Figure("refused", actions.values.filter { !(200..<300).contains($0.status ?? 0) }.count),
                      Figure("wrong records", wrongRecords.count + twice.count)],
            detail: (wrongRecords + twice).prefix(5).joined(separator: "; ")))

        // Each product's trail of records chains before → after and ends in its current state.
        var broken: [String] = []
        for (product, trail) in zip(products, records) {
            var previous: (String, Bool)?
            for record in trail {
                let details = record.details
                let before = (details["before"]?["status"]?.string ?? "?", details["before"]?["deleted"]?.bool ?? false)
                let after = (details["after"]?["status"]?.string ?? "?", details["after"]?["deleted"]?.bool ?? false)
                if let previous, previous != before {
                    broken.append("product \(product): record \(record.seq) starts from \(before) but the one before ended at \(previous)")
                }
                previous = after
            }
            let current = audit.products[product]
            let now = (current?.status ?? "?", Self.isDeleted(current))
            if let previous, previous != now {
                broken.append("product \(product): the last record ends at \(previous) but the product is \(now)")
            }
        }
        checks.append(Check(
            scenario: name, invariant: "I7", name: "each product's evidence trail replays to its state", holds: broken.isEmpty,
            figures: [Figure("products", products.count), Figure("records", records.reduce(0) { $0 + $1.count }),
                      Figure("breaks", broken.count)],
            detail: broken.prefix(5).joined(separator: "; ")))

        // Archived or deleted products have no open orders.
        var blockedMissed: [String] = []
        for order in shop.orders where ["paid", "shipped"].contains(audit.statuses[order.id] ?? "") {
            for product in order.items.keys where Self.isGone(audit.products[product]) {
                blockedMissed.append("order \(order.id) is \(audit.statuses[order.id]!) but product \(product) is archived or deleted")
            }
        }
        let gone = products.filter { Self.isGone(audit.products[$0]) }
        checks.append(Check(
            scenario: name, invariant: "§5", name: "nothing archived or deleted with open orders", holds: blockedMissed.isEmpty,
            figures: [Figure("archived or deleted", gone.count),
                      Figure("409 answers", actions.values.filter { $0.status == 409 }.count),
                      Figure("open orders on them", blockedMissed.count)],
            detail: blockedMissed.prefix(5).joined(separator: "; ")))
        return checks
    }
}
