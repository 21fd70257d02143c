// Seeds a migrated store for the HTTP benchmarks: one admin holding --token, one hot wallet and 10,000
// spread wallets (ids from benchWalletID), each topped up to the maximum balance (with its ledger row) so no
// debit runs dry; for the order
// benchmark, a flash-sale product with 1,000 units and 1,000 products with stock that never runs out, all
// active and sold by that admin.
import BallastConfig
import Foundation
import Commerce
import SQLKit
import Storage

let benchAdminID = "00000000-0000-0000-0000-0000000000b1"

func runSeed(_ arguments: [String]) async throws {
    guard let text = option(arguments, "--database-url"), let url = DatabaseURL.parse(text),
          let token = option(arguments, "--token")
    else {
        FileHandle.standardError.write(Data("seed needs --database-url and --token\n".utf8))
        exit(2)
    }
    try await Database.withRunning(url, poolSize: 2, logger: logger) { database in
        try await Migrator(database: database, logger: logger).migrate()
        try await database.transaction { sql in
            try await sql.raw("""
                INSERT INTO users (id, name, role, token_hash, created_at_micros)
                VALUES (\(bind: benchAdminID), 'bench', 'admin', \(bind: AccessToken.hash(token)), 0)
                """).run()
            let ids = [benchWalletID("hot")] + (1...10_000).map { benchWalletID("w\($0)") }
            for start in stride(from: 0, to: ids.count, by: 500) {
                var insert = sql.insert(into: "wallets").columns("id", "owner_id", "currency", "balance", "created_at_micros")
                for id in ids[start..<min(start + 500, ids.count)] {
                    insert = insert.values(SQLBind(id), SQLBind(benchAdminID), SQLBind("USD"), SQLBind(Wallet.maximumBalance), SQLBind(0))
                }
                try await insert.run()
                // Each balance arrives as a top-up in its ledger, so the store starts balanced (I2) and the
                // invariant auditor of a run against it reports only what the run did.
                var credits = sql.insert(into: "wallet_transactions").columns(
                    "id", "wallet_id", "kind", "amount", "balance_after", "reference", "order_id", "created_at_micros")
                for id in ids[start..<min(start + 500, ids.count)] {
                    credits = credits.values(SQLBind("seed-\(id)"), SQLBind(id), SQLBind("credit"), SQLBind(Wallet.maximumBalance),
                                             SQLBind(Wallet.maximumBalance), SQLBind("seed"), SQLBind(String?.none), SQLBind(0))
                }
                try await credits.run()
            }
            let products = [(benchWalletID("flash"), Int64(1000))]
                + (1...1000).map { (benchWalletID("p\($0)"), Int64(1_000_000_000)) }
            for start in stride(from: 0, to: products.count, by: 500) {
                var insert = sql.insert(into: "products").columns(
                    "id", "seller_id", "sku", "name", "price", "stock", "units_stocked", "status", "created_at_micros",
                    "updated_at_micros")
                for (id, stock) in products[start..<min(start + 500, products.count)] {
                    insert = insert.values(SQLBind(id), SQLBind(benchAdminID), SQLBind("sku-\(id.prefix(8))"), SQLBind("Bench"),
                                           SQLBind(Int64(250)), SQLBind(stock), SQLBind(stock), SQLBind("active"), SQLBind(0), SQLBind(0))
                }
                try await insert.run()
            }
        }
    }
    print("seeded 10,001 wallets and 1,001 products")
}

/// Prints the flash-sale product's oversell (units sold in orders that are not cancelled beyond the units it
/// was ever stocked with) and whether stock + units sold = units stocked: `0 ok` is the only right answer.
func runOversold(_ arguments: [String]) async throws {
    guard let text = option(arguments, "--database-url"), let url = DatabaseURL.parse(text) else {
        FileHandle.standardError.write(Data("oversold needs --database-url\n".utf8))
        exit(2)
    }
    struct Row: Decodable {
        let stock: Int64
        let units_stocked: Int64
        let sold: Int64
    }
    let row = try await Database.withRunning(url, poolSize: 1, logger: logger) { database in
        try await database.read { sql in
            try await sql.raw("""
                SELECT p.stock, p.units_stocked,
                       CAST((SELECT COALESCE(SUM(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id
                             WHERE i.product_id = p.id AND o.status <> 'cancelled') AS BIGINT) AS sold
                FROM products p WHERE p.id = \(bind: benchWalletID("flash"))
                """).first(decoding: Row.self)
        }
    }
    guard let row else {
        print("missing")
        return
    }
    print("\(max(0, row.sold - row.units_stocked)) \(row.stock >= 0 && row.stock + row.sold == row.units_stocked ? "ok" : "MISMATCH")")
}
