import BallastCore
import BallastWire
import Foundation

/// Orders while shipping quotes, emails, pushes and event handlers fail at the chosen rate: every order must
/// still go through, with a valid shipping price, and none of its notifications may be lost.
final class ExternalServicesScenario: Scenario {
    let scenario = ScenarioName.externalServices
    let chaos: ChaosPlan? = ChaosPlan(scope: "all_writes")
    private let shop = Shop(opening: 50_000_000)
    static let fallbackUS: Int64 = 500
    static let fallbackOther: Int64 = 1_500

    func prepare(_ context: ScenarioContext) async throws {
        try await shop.open(context, sellers: 2, products: 4, stock: 1_000_000, price: 500...2_000, buyers: 10)
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        try await shop.order(&random, context, maxLines: 2, refusals: [])
    }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        var checks = try await shop.audit(context).checks
        let orders = shop.orders
        let totals = context.timeline.totals(name)

        // Every order answered 201 despite the faults, with a shipping price that is the provider's or the table's.
        let wrongShipping = orders.filter { order in
            switch order.shippingSource {
            case "fallback": return order.shipping != (order.country == "US" ? Self.fallbackUS : Self.fallbackOther)
            case "provider": return order.shipping < 0 || order.shipping > 10_000_000
            default: return true
            }
        }
        checks.append(Check(
            scenario: name, invariant: "I6", name: "every order placed despite failing services",
            holds: totals.errors == 0 && totals.refused == 0 && wrongShipping.isEmpty,
            figures: [Figure("orders", orders.count), Figure("failed", totals.errors + totals.refused),
                      Figure("fallback quotes", orders.filter { $0.shippingSource == "fallback" }.count),
                      Figure("wrong shipping", wrongShipping.count)],
            detail: wrongShipping.prefix(3).map { "order \($0.id): shipping \($0.shipping) from \($0.shippingSource) to \($0.country)" }
                .joined(separator: "; ") + (totals.errors + totals.refused > 0 ? " \(totals.errors + totals.refused) orders failed" : "")))

        // None lost: one email to the buyer and one push to each seller per order, each once, in some state.
        let ours = Set(orders.map(\.id))
        // Pending first: one that moves on while the lists are read is then seen twice (kept once, in its
        // later state), never missed.
        var found: [String: [String: NotificationBody]] = [:]
        for status in ["pending", "sent", "dead"] {
            let items = try await context.api.all("read notifications", "/api/admin/notifications?status=\(status)",
                                                  of: NotificationBody.self) { $0.createdAt < context.startedAt }
            for item in items {
                guard let order = item.orderId, ours.contains(order) else { continue }
                found[order, default: [:]][item.id] = item
            }
        }
        var byStatus: [String: Int] = [:]
        for item in found.values.flatMap(\.values) { byStatus[item.status, default: 0] += 1 }
        var lost: [String] = []
        var expectedCount = 0
        for order in orders {
            let sellers = Set(order.items.keys.map { shop.seller(of: $0).id })
            expectedCount += 1 + sellers.count
            let items = Array((found[order.id] ?? [:]).values)
            let emails = items.filter { $0.channel == "email" }.count
            let pushes = items.filter { $0.channel == "push" }.count
            if emails != 1 || pushes != sellers.count {
                lost.append("order \(order.id): \(emails) emails and \(pushes) pushes for \(sellers.count) sellers")
            }
        }
        checks.append(Check(
            scenario: name, invariant: "I6", name: "no notification lost or doubled",
            holds: lost.isEmpty,
            figures: [Figure("expected", expectedCount), Figure("sent", byStatus["sent", default: 0]),
                      Figure("pending", byStatus["pending", default: 0]), Figure("dead", byStatus["dead", default: 0]),
                      Figure("off", lost.count)],
            detail: lost.prefix(5).joined(separator: "; ")))

        // Each dead notification has its NOTIFICATION_DEAD_LETTERED record.
        let dead = found.values.flatMap(\.values).filter { $0.status == "dead" }.map(\.id)
        let records = try await context.api.all(
            "read dead-letter evidence", "/api/admin/evidence?eventType=NOTIFICATION_DEAD_LETTERED&since=\(APITime.since(context.startedAt))",
            of: EvidenceBody.self)
        var recorded: [String: Int] = [:]
        for record in records { if let id = record.entityId { recorded[id, default: 0] += 1 } }
        let unrecorded = dead.filter { recorded[$0] != 1 }
        checks.append(Check(
            scenario: name, invariant: "I7", name: "each dead letter has one evidence record", holds: unrecorded.isEmpty,
            figures: [Figure("dead", dead.count), Figure("without exactly one record", unrecorded.count)],
            detail: unrecorded.prefix(5).map { "notification \($0): \(recorded[$0] ?? 0) records" }.joined(separator: "; ")))
        return checks
    }
}
