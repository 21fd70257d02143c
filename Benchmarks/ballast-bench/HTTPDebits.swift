// Debits over HTTP from a fixed number of concurrent workers (closed loop), for a fixed time. Prints throughput
// and latency percentiles.
import Crypto
import Foundation

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

    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let (log, wall) = try await ClosedLoop.run(
        concurrency: concurrency, keepGoing: { _ in ContinuousClock.now < deadline },
        request: { number in
            ClosedLoop.post("\(url)/api/wallets/\(wallets[(number &* 7919) % wallets.count])/debit", token: token, body: #"{"amount":1}"#)
        },
        counts: { $0 == 200 })
    let latency = log.latency()
    print(String(format: "tps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d failed=%@", Double(latency.count) / wall, latency.p50,
                 latency.p99, latency.count, "\(log.byStatus.filter { $0.key != 200 })"))
}
