// Debits over HTTP with a fixed number of concurrent workers, each sending its next request as soon as the
// previous one answered (closed loop), for a fixed time. Prints throughput and latency percentiles.
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Synchronization

/// The wallet ids the seeding script creates: the text form of md5("w" + n) as a UUID, n = 1…10,000, and
/// md5("hot") for the hot wallet (the same expression the SQL side uses).
func benchWalletID(_ seed: String) -> String {
    let hex = Insecure.MD5.hash(data: Data(seed.utf8)).map { String(format: "%02x", $0) }.joined()
    let characters = Array(hex)
    return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
}

func option(_ arguments: [String], _ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

final class LatencyLog: Sendable {
    private let samples = Mutex<[Double]>([])
    private let failures = Mutex<[UInt: Int]>([:])
    func add(_ seconds: Double) { samples.withLock { $0.append(seconds) } }
    func fail(_ status: UInt) { failures.withLock { $0[status, default: 0] += 1 } }
    var all: [Double] { samples.withLock { $0 } }
    var failed: [UInt: Int] { failures.withLock { $0 } }
}

func runHTTPDebits(_ arguments: [String]) async throws {
    guard let url = option(arguments, "--url"), let token = option(arguments, "--token"),
          let mode = option(arguments, "--wallets"), mode == "hot" || mode == "spread"
    else {
        FileHandle.standardError.write(Data("http-debits needs --url, --token and --wallets hot|spread\n".utf8))
        exit(2)
    }
    let concurrency = Int(option(arguments, "--concurrency") ?? "16") ?? 16
    let seconds = Double(option(arguments, "--seconds") ?? "10") ?? 10
    let wallets = mode == "hot" ? [benchWalletID("hot")] : (1...10_000).map { benchWalletID("w\($0)") }

    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let log = LatencyLog()
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let started = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var index = worker
                while ContinuousClock.now < deadline {
                    let wallet = wallets[index % wallets.count]
                    index = index &+ 7919
                    var request = HTTPClientRequest(url: "\(url)/api/wallets/\(wallet)/debit")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: #"{"amount":1}"#))
                    let sent = ContinuousClock.now
                    do {
                        let response = try await client.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        if response.status.code == 200 {
                            let elapsed = ContinuousClock.now - sent
                            log.add(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                        } else {
                            log.fail(response.status.code)
                        }
                    } catch {
                        log.fail(0)
                    }
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - started
    try await client.shutdown()
    let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let sorted = log.all.sorted()
    func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
    print(String(format: "tps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d failed=%@",
                 Double(sorted.count) / wall, percentile(0.50), percentile(0.99), sorted.count, "\(log.failed)"))
}
