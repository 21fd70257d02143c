// Orders over HTTP: a flash sale (a fixed number of single-unit orders for one product, at a fixed concurrency,
// as fast as the server answers) or orders spread over 1,000 products for a fixed time. Buyers pay from the
// 10,000 seeded wallets in turn. Prints throughput, latency percentiles and how many orders were created.
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// Outcomes by status and latencies of every answered request.
final class OutcomeLog: Sendable {
    private let samples = Mutex<[Double]>([])
    private let statuses = Mutex<[UInt: Int]>([:])
    func add(_ status: UInt, _ seconds: Double) {
        samples.withLock { $0.append(seconds) }
        statuses.withLock { $0[status, default: 0] += 1 }
    }
    func fail() { statuses.withLock { $0[0, default: 0] += 1 } }
    /// Hands out request numbers to the workers.
    private let issued = Atomic<Int>(0)
    func next() -> Int { issued.wrappingAdd(1, ordering: .relaxed).oldValue }
    var latencies: [Double] { samples.withLock { $0 } }
    var byStatus: [UInt: Int] { statuses.withLock { $0 } }
}

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

    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let log = OutcomeLog()
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let started = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                while true {
                    let number = log.next()
                    if mode == "flash" ? number >= total : ContinuousClock.now >= deadline { return }
                    let product = products[(number &* 7919) % products.count]
                    let wallet = wallets[number % wallets.count]
                    var request = HTTPClientRequest(url: "\(url)/api/orders")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: """
                        {"walletId":"\(wallet)","items":[{"productId":"\(product)","quantity":1}],\
                        "destination":{"country":"US","postalCode":"94107"}}
                        """))
                    let sent = ContinuousClock.now
                    do {
                        let response = try await client.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        let elapsed = ContinuousClock.now - sent
                        log.add(response.status.code, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                    } catch {
                        log.fail()
                    }
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - started
    try await client.shutdown()
    let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let sorted = log.latencies.sorted()
    func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
    let statuses = log.byStatus
    print(String(format: "tps=%.0f p50_ms=%.2f p99_ms=%.2f answered=%d created=%d insufficient_stock=%d other=%@",
                 Double(sorted.count) / wall, percentile(0.50), percentile(0.99), sorted.count, statuses[201] ?? 0,
                 statuses[409] ?? 0, "\(statuses.filter { $0.key != 201 && $0.key != 409 })"))
}
