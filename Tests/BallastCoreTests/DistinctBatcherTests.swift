import BallastCore
import Synchronization
import Testing

@Suite("Distinct batcher")
struct DistinctBatcherTests {
    /// What the batcher did, seen from its `run` and `alone`.
    final class Record: Sendable {
        let batches = Mutex<[[Int]]>([])
        let alone = Mutex<[Int]>([])
        let running = Atomic<Int>(0)
        let mostRunning = Atomic<Int>(0)
    }

    /// 800 concurrent requests over 40 keys (request n has key n % 40; its answer is n × 2, or an error for every
    /// 13th). Every request gets its own answer; no batch holds a key twice or more than the maximum; at most the
    /// allowed number of batches run at once; each request ran exactly once (in a batch or alone); and batches of
    /// more than one request formed.
    @Test func everyRequestGetsItsOwnAnswerOnce() async throws {
        struct Refused: Error, Equatable { let request: Int }
        let record = Record()
        let runners = 3, maximum = 16
        let batcher = DistinctBatcher<Int, Int, Int>(
            runners: runners, maximumBatch: maximum,
            run: { requests in
                let now = record.running.add(1, ordering: .relaxed).newValue
                record.mostRunning.max(now, ordering: .relaxed)
                record.batches.withLock { $0.append(requests) }
                try? await Task.sleep(for: .milliseconds(2))
                record.running.subtract(1, ordering: .relaxed)
                return requests.map { $0 % 13 == 0 ? .failure(Refused(request: $0)) : .success($0 * 2) }
            },
            alone: { request in
                record.alone.withLock { $0.append(request) }
                try? await Task.sleep(for: .milliseconds(1))
                return request % 13 == 0 ? .failure(Refused(request: request)) : .success(request * 2)
            })
        let answers = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            for request in 0..<800 {
                group.addTask { (request, await batcher.submit(request, key: request % 40)) }
            }
            return await group.reduce(into: [Int: Result<Int, any Error>]()) { $0[$1.0] = $1.1 }
        }
        #expect(answers.count == 800)
        for (request, answer) in answers {
            switch answer {
            case .success(let value):
                #expect(request % 13 != 0 && value == request * 2, "request \(request) got \(value)")
            case .failure(let error):
                #expect(request % 13 == 0 && (error as? Refused) == Refused(request: request), "request \(request): \(error)")
            }
        }
        let batches = record.batches.withLock { $0 }
        let alone = record.alone.withLock { $0 }
        for batch in batches {
            #expect(Set(batch.map { $0 % 40 }).count == batch.count, "a batch held a key twice: \(batch)")
            #expect(batch.count <= maximum)
        }
        #expect((batches.flatMap { $0 } + alone).sorted() == Array(0..<800), "each request ran exactly once")
        #expect(record.mostRunning.load(ordering: .relaxed) <= runners)
        #expect(batches.contains { $0.count > 1 }, "requests were gathered into batches")
    }

    /// A leader whose caller went away (its task cancelled) still runs the others' requests of its batch in full:
    /// here B's task is cancelled while B waits behind A's batch; B then leads the batch [B, C], whose run sees no
    /// cancellation, so C is answered.
    @Test func aCancelledLeaderDoesNotCancelTheOthersInItsBatch() async throws {
        let batcher = DistinctBatcher<Int, Int, Int>(
            runners: 1, maximumBatch: 8,
            run: { requests in
                try? await Task.sleep(for: .milliseconds(200))
                let cancelled = Task.isCancelled
                return requests.map { cancelled ? .failure(CancellationError()) : .success($0) }
            },
            alone: { _ in .failure(CancellationError()) })
        let a = Task { await batcher.submit(1, key: 1) }
        try await Task.sleep(for: .milliseconds(50))
        let b = Task { await batcher.submit(2, key: 2) }
        try await Task.sleep(for: .milliseconds(20))
        let c = Task { await batcher.submit(3, key: 3) }
        try await Task.sleep(for: .milliseconds(20))
        b.cancel()
        #expect(try await a.value.get() == 1)
        #expect(try await c.value.get() == 3, "the batch B led was not cancelled with B")
        _ = await b.value
    }

    /// Under no load each request runs at once in a batch of its own, and nothing is left running.
    @Test func aLoneRequestRunsAtOnce() async throws {
        let batches = Mutex<[[Int]]>([])
        let batcher = DistinctBatcher<Int, Int, Int>(
            runners: 2, maximumBatch: 8,
            run: { requests in
                batches.withLock { $0.append(requests) }
                return requests.map { .success($0 + 1) }
            },
            alone: { _ in .failure(CancellationError()) })
        for request in 0..<50 {
            #expect(try await batcher.submit(request, key: 7).get() == request + 1)
        }
        #expect(batches.withLock { $0 } == (0..<50).map { [$0] })
    }
}
