// Orders over HTTP: a flash sale (a fixed number of single-unit orders for one product, at a fixed concurrency,
// as fast as the server answers) or orders spread over 1,000 products for a fixed time. Buyers pay from the
// 10,000 seeded wallets in turn. Prints throughput, latency percentiles and how many orders were created.
import Foundation

func runHTTPOrders(_ arguments: [String]) async throws {
    guard let url = option(arguments, "--url"), let token = option(arguments, "--token"),
          let mode = option(arguments, "--products"), mode == "flash" || mode == "spread"
    else {
        FileHandle.standardError.write(Data("http-orders needs --url, --token and --products flash|spread\n".utf8))
        exit(2)
    }
    let concurrency = Int(option(arguments, "--concurrency") ?? "64") ?? 64
    let total = Int(option(arguments, "--orders") ?? "5000") ?? 5000
    let seconds = Double(option(arguments, "--seconds") ?? "10") ?? 10
    let products = mode == "flash" ? [benchWalletID("flash")] : (1...1000).map { benchWalletID("p\($0)") }
    let wallets = (1...10_000).map { benchWalletID("w\($0)") }

    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let (log, wall) = try await ClosedLoop.run(
        concurrency: concurrency,
        keepGoing: { number in mode == "flash" ? number < total : ContinuousClock.now < deadline },
        request: { number in
            ClosedLoop.post("\(url)/api/orders", token: token, body: """
                {"walletId":"\(wallets[number % wallets.count])","items":[{"productId":"\(products[(number &* 7919) % products.count])",\
                "quantity":1}],"destination":{"country":"US","postalCode":"94107"}}
                """)
        },
        counts: { $0 != 0 })
    let latency = log.latency()
    let statuses = log.byStatus
    print(String(format: "tps=%.0f p50_ms=%.2f p99_ms=%.2f answered=%d created=%d insufficient_stock=%d other=%@",
                 Double(latency.count) / wall, latency.p50, latency.p99, latency.count, statuses[201] ?? 0,
                 statuses[409] ?? 0, "\(statuses.filter { $0.key != 201 && $0.key != 409 })"))
}
