// Seeds a migrated store for the HTTP debit benchmark: one admin holding --token, one hot wallet and 10,000
// spread wallets (ids from benchWalletID), each with the maximum balance so no debit runs dry.
import BallastConfig
import Foundation
import Marketplace
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
            }
        }
    }
    print("seeded 10,001 wallets")
}
