// The load driver shared by the HTTP benchmarks: a fixed number of workers, each sending its next request as
// soon as the previous one answered (closed loop), until told to stop.
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// Outcomes by status, and the latencies of the requests that count.
final class OutcomeLog: Sendable {
    private let samples = Mutex<[Double]>([])
    private let statuses = Mutex<[UInt: Int]>([:])
    /// Hands out request numbers to the workers.
    private let issued = Atomic<Int>(0)

    func next() -> Int { issued.wrappingAdd(1, ordering: .relaxed).oldValue }
    func add(_ status: UInt, seconds: Double?) {
        if let seconds { samples.withLock { $0.append(seconds) } }
        statuses.withLock { $0[status, default: 0] += 1 }
    }
    var byStatus: [UInt: Int] { statuses.withLock { $0 } }

    /// Measured requests and their p50 and p99 latency in milliseconds.
    func latency() -> (count: Int, p50: Double, p99: Double) {
        let sorted = samples.withLock { $0 }.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000
        }
        return (sorted.count, percentile(0.50), percentile(0.99))
    }
}

enum ClosedLoop {
    /// Runs `concurrency` workers; request number n is `request(n)`, sent while `keepGoing(n)`. A request whose
    /// status `counts` has its latency measured; every answer's status is tallied (0: no answer).
    static func run(
        concurrency: Int, keepGoing: @escaping @Sendable (Int) -> Bool,
        request: @escaping @Sendable (Int) -> HTTPClientRequest, counts: @escaping @Sendable (UInt) -> Bool
    ) async throws -> (log: OutcomeLog, wallSeconds: Double) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let log = OutcomeLog()
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let number = log.next()
                        guard keepGoing(number) else { return }
                        let sent = ContinuousClock.now
                        do {
                            let response = try await client.execute(request(number), timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 1 << 16)
                            let status = response.status.code
                            log.add(status, seconds: counts(status) ? seconds(ContinuousClock.now - sent) : nil)
                        } catch {
                            log.add(0, seconds: nil)
                        }
                    }
                }
            }
        }
        let wall = seconds(ContinuousClock.now - started)
        try await client.shutdown()
        return (log, wall)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// A JSON POST with the bearer token.
    static func post(_ url: String, token: String, body: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        return request
    }
}
