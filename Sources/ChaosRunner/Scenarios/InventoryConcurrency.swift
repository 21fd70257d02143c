import Foundation

/// Buyers racing for a few products with little stock, while some cancel, the seller restocks and the admin
/// ships; shadow writes, notifications, events and shipping quotes fail at the chosen rate meanwhile.
final class InventoryConcurrencyScenario: Scenario {
    let scenario = ScenarioName.inventoryConcurrency
    let chaos: ChaosPlan? = ChaosPlan(scope: "all_writes")
    private let shop = Shop(opening: 300_000)

    func prepare(_ context: ScenarioContext) async throws {
        try await shop.open(context, sellers: 1, products: 6, stock: 25, price: 500...3_000, buyers: 12)
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let roll = Double.random(in: 0..<1, using: &random)
        if roll < 0.7 {
            try await shop.order(&random, context, maxLines: 3, refusals: ["insufficient_stock", "insufficient_funds"])
        } else if roll < 0.82 {
            try await shop.cancel(&random, context)
        } else if roll < 0.92 {
            try await shop.restock(&random, context)
        } else {
            try await shop.ship(&random, context)
        }
    }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        try await shop.audit(context).checks
    }
}
