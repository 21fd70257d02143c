import AsyncHTTPClient
import BallastConfig
import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import SQLKit
import Storage
import Synchronization
import Testing

extension ChildProcesses {
    /// The nemesis: what production does to processes, done to real `ballast serve` processes sharing one store,
    /// under bounded load on loopback: one is killed (-9) and restarted, one is paused (SIGSTOP) past its claims and
    /// leases, the primary PostgreSQL crashes and comes back, the shadow store goes away and comes back. Meanwhile
    /// shadow writes, notifications and a job (the verifier, every two seconds) run. Afterwards: I1–I5, I7, I9 through
    /// the API and the store, no notification delivered by two processes at once, no two runs of one job at once,
    /// one evidence chain without duplicates, and after a repair the verifier finds nothing.
    @Suite("Nemesis", .serialized, .timeLimit(.minutes(10)))
    struct NemesisTests {
        static let adminToken = String(repeating: "n", count: 40)

        /// Short claims and leases, so a pause of a dozen seconds outlives them all.
        static func environment(primary: String, shadow: String, webhook: String) -> [String: String] {
            [
                "APP_ENV": "test", "DATABASE_URL": primary, "SHADOW_DATABASE_URL": shadow, "BALLAST_ADMIN_TOKEN": adminToken,
                "LOG_LEVEL": "warning", "NOTIFY_WEBHOOK_URL": webhook, "NOTIFY_RETRY_BASE_MS": "200", "NOTIFY_RETRY_MAX_MS": "1000",
                "NOTIFY_CLAIM_SECONDS": "10", "SHADOW_CLAIM_SECONDS": "10", "JOB_LEASE_SECONDS": "3",
                "IDEMPOTENCY_ABANDON_SECONDS": "2", "SHADOW_VERIFIER_INTERVAL": "2", "DATABASE_POOL_SIZE": "8",
                "CHAOS_ENABLED": "true", "CHAOS_SCOPE": "shadow_write_only", "CHAOS_FAIL_RATE": "0.2", "CHAOS_SEED": "nemesis",
                "CHAOS_ABORT_ERROR_RATE": "1",
            ]
        }

        @Test(.enabled(if: TestStores.postgresServer != nil, "the nemesis on PostgreSQL needs BALLAST_TEST_POSTGRES_URL"))
        func processesSurviveKillsPausesAndOutagesOnPostgreSQL() async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let primary = try await PostgresCluster.create(port: try freeLoopbackPort())
            let shadow = try await PostgresCluster.create(port: try freeLoopbackPort())
            do {
                try await primary.createDatabase("ballast")
                try await shadow.createDatabase("shadow")
                try await Self.run(primaryURL: primary.url("ballast"), shadowURL: shadow.url("shadow"), folder: folder,
                                   primary: primary, shadow: shadow)
            } catch {
                await primary.destroy()
                await shadow.destroy()
                throw error
            }
            await primary.destroy()
            await shadow.destroy()
        }

        @Test func processesSurviveKillsAndPausesOnSQLite() async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            try await Self.run(primaryURL: "sqlite:\(folder.path)/primary.sqlite", shadowURL: "sqlite:\(folder.path)/shadow.sqlite",
                               folder: folder, primary: nil, shadow: nil)
        }

        // MARK: The run

        static func run(primaryURL: String, shadowURL: String, folder: URL, primary: PostgresCluster?, shadow: PostgresCluster?) async throws {
            try await FakeWebhook.with { webhook in
                let environment = Self.environment(primary: primaryURL, shadow: shadowURL, webhook: webhook.url)
                let ports = [try freeLoopbackPort(), try freeLoopbackPort()]
                let fleet = Fleet(environment: environment, folder: folder, ports: ports)
                try await fleet.start(0)
                try await fleet.start(1)
                defer { fleet.killAll() }
                let world = try await World.setUp(fleet.client(0))
                let load = Load(world: world, fleet: fleet)
                let running = Task { await load.run(clients: 8) }

                try await Task.sleep(for: .seconds(3))
                // 1. A process dies mid-load and comes back.
                fleet.kill(0)
                try await Task.sleep(for: .seconds(2))
                try await fleet.start(0)
                try await Task.sleep(for: .seconds(3))

                // 2. A process stops past every claim and lease it holds, then carries on.
                fleet.signal(1, SIGSTOP)
                try await Task.sleep(for: .seconds(13))
                fleet.signal(1, SIGCONT)
                try await Task.sleep(for: .seconds(3))

                if let primary {
                    // 3. The database crashes: requests answer 503 with Retry-After promptly and nothing hangs; once it is
                    // back, every process serves requests again within two seconds, without a restart.
                    try await primary.stopImmediately()
                    for index in 0..<2 {
                        let started = ContinuousClock.now
                        let reply = try await fleet.client(index).call(.GET, "/api/wallets/\(world.members[0].wallet)",
                                                                       world.members[0].token, nil, timeout: .seconds(20))
                        #expect(reply.status == 503 && reply.retryAfter != nil, "process \(index) during the outage: \(reply.status)")
                        #expect(ContinuousClock.now - started < .seconds(12), "process \(index) answered near its 5 s lease timeout")
                    }
                    try await Task.sleep(for: .seconds(8))
                    try await primary.start()
                    let back = ContinuousClock.now
                    for index in 0..<2 {
                        var recovered: Duration?
                        while ContinuousClock.now - back < .seconds(15) {
                            let reply = try? await fleet.client(index).call(
                                .GET, "/api/wallets/\(world.members[0].wallet)", world.members[0].token, nil, timeout: .seconds(5))
                            if reply?.status == 200 { recovered = ContinuousClock.now - back; break }
                            try await Task.sleep(for: .milliseconds(50))
                        }
                        #expect(recovered != nil && recovered! < .seconds(5), "process \(index) recovered after \(String(describing: recovered))")
                    }
                    try await Task.sleep(for: .seconds(3))
                }
                if let shadow {
                    // 4. The shadow store goes away and comes back: sales never notice.
                    try await shadow.stopImmediately()
                    try await Task.sleep(for: .seconds(5))
                    try await shadow.start()
                    try await Task.sleep(for: .seconds(3))
                }

                load.stop()
                await running.value
                print("nemesis: load stopped at \(Date())")
                #expect(load.acknowledged.withLock { $0.orders.count } >= 20, "the load got orders through")
                try await Self.settle(fleet, world)
                try await Self.check(fleet, world, load, webhook, primaryURL: primaryURL)
            }
        }

        /// Waits until every shadow write is applied or recorded and every notification sent.
        static func settle(_ fleet: Fleet, _ world: World) async throws {
            let api = fleet.client(0)
            _ = try await api.call(.PUT, "/api/admin/chaos", adminToken, #"{"enabled":false}"#)
            for _ in 0..<240 {
                let outbox = try await fleet.count("SELECT count(*) AS n FROM shadow_outbox")
                let pending = try await fleet.count("SELECT count(*) AS n FROM notifications WHERE status = 'pending'")
                if outbox == 0 && pending == 0 { return }
                try await Task.sleep(for: .milliseconds(250))
            }
            let outbox = try await fleet.count("SELECT count(*) AS n FROM shadow_outbox")
            let pending = try await fleet.count("SELECT count(*) AS n FROM notifications WHERE status = 'pending'")
            struct State: Decodable {
                let status: String
                let claimed: Int64
                let n: Int64
            }
            let states = try await fleet.withDatabase { database in
                try await database.read { sql in
                    try await sql.raw("""
                        SELECT status, CAST(CASE WHEN claimed_until_micros IS NULL THEN 0 ELSE 1 END AS BIGINT) AS claimed,
                               CAST(count(*) AS BIGINT) AS n
                        FROM notifications GROUP BY status, CASE WHEN claimed_until_micros IS NULL THEN 0 ELSE 1 END
                        """).all(decoding: State.self)
                }
            }
            // On PostgreSQL, what every session is doing and who blocks whom: a stall is usually a lock held open.
            struct Session: Decodable {
                let pid: Int32
                let state: String?
                let wait: String?
                let seconds: Double?
                let blockers: String?
                let query: String?
            }
            let sessions = try? await fleet.withDatabase { database -> [Session] in
                guard database.dialect == .postgres else { return [] }
                return try await database.read { sql in
                    try await sql.raw("""
                        SELECT pid, state, wait_event_type || ':' || wait_event AS wait,
                               CAST(EXTRACT(EPOCH FROM now() - xact_start) AS DOUBLE PRECISION) AS seconds,
                               CAST(pg_blocking_pids(pid) AS TEXT) AS blockers, left(query, 160) AS query
                        FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                        """).all(decoding: Session.self)
                }
            }
            let activity = (sessions ?? []).map {
                "\($0.pid) \($0.state ?? "-") \($0.wait ?? "-") \(Int($0.seconds ?? 0)) s blocked by \($0.blockers ?? "-"): \($0.query ?? "")"
            }.joined(separator: "\n")
            Issue.record("the fleet did not settle: outbox \(outbox), pending notifications \(pending), \(states)\n\(activity)\n\(fleet.logs())")
        }

        static func check(_ fleet: Fleet, _ world: World, _ load: Load, _ webhook: FakeWebhook, primaryURL: String) async throws {
            let api = fleet.client(0)
            let acknowledged = load.acknowledged.withLock { $0 }
            try await fleet.withDatabase { database in
                try await database.read { sql in try await CrashSafetyTests.checkInvariants(sql) }
                // I9 and I5: every acknowledged debit is in the ledger exactly once; no key took effect twice.
                struct Repeat: Decodable { let reference: String }
                let repeated = try await database.read { sql in
                    try await sql.raw("""
                        SELECT reference FROM wallet_transactions WHERE reference LIKE 'nemesis-%'
                        GROUP BY reference HAVING count(*) > 1
                        """).all(decoding: Repeat.self)
                }
                #expect(repeated.isEmpty, "keys applied twice: \(repeated.map(\.reference).prefix(5))")
                let references = try await database.read { sql in
                    try await sql.raw("SELECT reference FROM wallet_transactions WHERE reference LIKE 'nemesis-%'").all(decoding: Repeat.self)
                }.map(\.reference)
                #expect(Set(acknowledged.debits).isSubset(of: Set(references)), "an acknowledged debit is missing (I5)")
                // No two runs of one job at once: every run but the last of each job has its end recorded (by itself, or,
                // when its process died, by the next run), and it ended before the next began.
                struct Run: Decodable {
                    let name: String
                    let fence: Int64
                    let started_at_micros: Int64
                    let finished_at_micros: Int64?
                    let status: String?
                }
                let runs = try await database.read { sql in
                    try await sql.raw("SELECT name, fence, started_at_micros, finished_at_micros, status FROM job_runs ORDER BY name, fence")
                        .all(decoding: Run.self)
                }
                #expect(runs.count >= 3, "the verifier ran during the load")
                for (earlier, later) in zip(runs, runs.dropFirst()) where earlier.name == later.name {
                    // A run that could not record its end is recorded by the next run to take the lease.
                    guard let finished = earlier.finished_at_micros else {
                        Issue.record("\(earlier.name) run \(earlier.fence) has no recorded end though run \(later.fence) followed it")
                        continue
                    }
                    #expect(finished <= later.started_at_micros,
                            "\(earlier.name) run \(earlier.fence) (\(earlier.status ?? "-")) overlapped run \(later.fence)")
                }
                // One record per shadow-write failure, however many processes saw it.
                struct Twice: Decodable { let entity_id: String }
                let doubled = try await database.read { sql in
                    try await sql.raw("""
                        SELECT entity_id FROM evidence_records WHERE event_type = 'NOTIFICATION_DEAD_LETTERED'
                        GROUP BY entity_id, details HAVING count(*) > 1
                        """).all(decoding: Twice.self)
                }
                #expect(doubled.isEmpty)
            }
            // I4/I5: every acknowledged order exists, paid.
            for order in acknowledged.orders {
                let reply = try await api.call(.GET, "/api/orders/\(order)", adminToken, nil)
                #expect(reply.status == 200, "acknowledged order \(order) is missing")
            }
            // I1–I4 as the server's auditor sees them.
            let audit = try await api.call(.POST, "/api/admin/jobs/ledger-invariant-auditor/trigger", adminToken, nil)
            #expect(((audit.json["result"] as? [String: Any])?["violations"] as? Int) == 0, "\(audit.json)")
            // I7: the chain verifies.
            let verification = try await api.call(.GET, "/api/admin/evidence/verify", adminToken, nil)
            #expect(verification.json["valid"] as? Bool == true, "\(verification.json)")
            // No notification delivered by two processes at once.
            #expect(webhook.overlapping.isEmpty, "delivered twice at once: \(webhook.overlapping.prefix(5))")
            // After a repair, the verifier finds nothing at all.
            let repaired = try await api.trigger("shadow-discrepancy-verifier", repair: true)
            let after = try await api.trigger("shadow-discrepancy-verifier")
            let open = try await api.call(.GET, "/api/admin/discrepancies?status=open", adminToken, nil).body
            if after.isEmpty {
                let jobs = try await api.call(.GET, "/api/admin/jobs", adminToken, nil).body
                Issue.record("the verifier could not be triggered: jobs \(jobs)\n\(fleet.logs())")
            }
            for field in ["missingInShadow", "missingInPrimary", "mismatched", "unexplained", "inFlight"] {
                #expect(after[field] as? Int == 0, "\(field) after repair \(repaired): \(after); open: \(open.prefix(1500))")
            }
        }
    }
}

// MARK: The fleet

/// Two `ballast serve` processes on fixed ports, started, killed, paused and restarted by the test.
final class Fleet: Sendable {
    let environment: [String: String]
    let folder: URL
    let ports: [Int]
    private let children = Mutex<[Int: BallastProcess]>([:])

    init(environment: [String: String], folder: URL, ports: [Int]) {
        self.environment = environment
        self.folder = folder
        self.ports = ports
    }

    func client(_ index: Int) -> NemesisClient { NemesisClient(base: "http://127.0.0.1:\(ports[index])") }

    /// Starts process `index` and waits until it is ready.
    func start(_ index: Int) async throws {
        let child = try BallastProcess(["serve", "--port", String(ports[index])], environment: environment, workingDirectory: folder)
        children.withLock { $0[index] = child }
        for _ in 0..<600 {
            if (try? await client(index).call(.GET, "/health/ready", nil, nil, timeout: .seconds(2)))?.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BallastProcess.TimedOut(what: "ballast serve \(index) to become ready: \(child.readStdout().suffix(2000))")
    }

    func kill(_ index: Int) { children.withLock { $0[index] }?.stop() }

    /// The end of each running process's log, for a failure's message.
    func logs() -> String {
        children.withLock { $0 }.sorted { $0.key < $1.key }.map { index, child in
            // Without the expected noise of injected shadow faults.
            let lines = child.readStdout().split(separator: "\n").filter {
                !$0.contains("\"fault injected\"") && !$0.contains("\"shadow write failed\"")
            }
            return "process \(index):\n" + lines.suffix(40).joined(separator: "\n") + String(child.readStderr().suffix(3000))
        }.joined(separator: "\n")
    }

    func signal(_ index: Int, _ signal: Int32) { children.withLock { $0[index] }?.signal(signal) }

    func killAll() {
        for child in children.withLock({ Array($0.values) }) {
            child.signal(SIGCONT)
            child.stop()
        }
    }

    /// The primary store, opened by the test itself.
    func withDatabase<R: Sendable>(_ body: @Sendable (Database) async throws -> R) async throws -> R {
        guard let url = DatabaseURL.parse(environment["DATABASE_URL"]!) else { throw BallastProcess.TimedOut(what: "a database URL") }
        return try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger, body)
    }

    func count(_ query: SQLQueryString) async throws -> Int64 {
        try await withDatabase { database in
            try await database.read { sql in try await sql.raw(query).first()!.decode(column: "n", as: Int64.self) }
        }
    }
}

/// A small HTTP client for the fleet: status, JSON body and Retry-After.
struct NemesisClient: Sendable {
    let base: String

    struct Reply: Sendable {
        let status: UInt
        let body: String
        let retryAfter: String?
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    func call(
        _ method: HTTPMethod, _ path: String, _ token: String?, _ body: String?, key: String? = nil,
        timeout: Duration = .seconds(10)
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let key { request.headers.add(name: "Idempotency-Key", value: key) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return Reply(status: response.status.code, body: String(buffer: bytes), retryAfter: response.headers.first(name: "Retry-After"))
    }

    /// Triggers a job (waiting out a run in progress) and answers its result.
    func trigger(_ job: String, repair: Bool = false) async throws -> [String: Any] {
        for _ in 0..<120 {
            let reply = try await call(.POST, "/api/admin/jobs/\(job)/trigger\(repair ? "?repair=true" : "")",
                                       ChildProcesses.NemesisTests.adminToken, nil,
                                       timeout: .seconds(60))
            if reply.status == 409 { try await Task.sleep(for: .milliseconds(500)); continue }
            return reply.json["result"] as? [String: Any] ?? ["status": reply.status, "body": reply.body]
        }
        return [:]
    }
}

// MARK: The world and its load

/// What the load works on: members with funded wallets, products on sale, listings.
struct World: Sendable {
    struct Member: Sendable {
        let token: String
        let wallet: String
    }

    let members: [Member]
    let products: [String]

    static func setUp(_ api: NemesisClient) async throws -> World {
        let admin = ChildProcesses.NemesisTests.adminToken
        func user(_ name: String) async throws -> String {
            let reply = try await api.call(.POST, "/api/users", admin, #"{"name":"\#(name)","role":"member"}"#)
            guard let token = reply.json["token"] as? String else { throw BallastProcess.TimedOut(what: "a user: \(reply.body)") }
            return token
        }
        var members: [Member] = []
        for index in 0..<8 {
            let token = try await user("member-\(index)")
            let wallet = try await api.call(.POST, "/api/wallets", token, "{}").json["id"] as? String ?? ""
            _ = try await api.call(.POST, "/api/wallets/\(wallet)/credit", admin, #"{"amount":10000000}"#)
            members.append(Member(token: token, wallet: wallet))
        }
        let seller = try await user("seller")
        var products: [String] = []
        for index in 0..<4 {
            let id = try await api.call(.POST, "/api/products", seller,
                                        #"{"sku":"nemesis-\#(index)","name":"Nemesis \#(index)","price":100,"stock":100000}"#)
                .json["id"] as? String ?? ""
            _ = try await api.call(.POST, "/api/products/\(id)/publish", seller, nil)
            products.append(id)
        }
        return World(members: members, products: products)
    }
}

/// Bounded load from concurrent clients, alternating between the processes: keyed debits and orders (re-sent with
/// their key until they get a definite answer), and listing writes. Remembers what was acknowledged.
final class Load: Sendable {
    struct Acknowledged: Sendable {
        var debits: [String] = []
        var orders: [String] = []
    }

    let world: World
    let fleet: Fleet
    let acknowledged = Mutex(Acknowledged())
    private let stopped = Atomic<Bool>(false)

    init(world: World, fleet: Fleet) {
        self.world = world
        self.fleet = fleet
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func run(clients: Int) async {
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask { await self.client(client) }
            }
        }
    }

    private func client(_ number: Int) async {
        let member = world.members[number % world.members.count]
        var step = 0
        var listing: String?
        // Bounded: at most 10,000 steps per client, and the run stops it within seconds anyway.
        while !stopped.load(ordering: .relaxed), step < 10_000 {
            step += 1
            let target = fleet.client((number + step) % 2)
            switch step % 3 {
            case 0:
                let key = "nemesis-\(number)-\(step)"
                if await keyed(target, .POST, "/api/wallets/\(member.wallet)/debit", member.token,
                               #"{"amount":1,"reference":"\#(key)"}"#, key: key) != nil {
                    acknowledged.withLock { $0.debits.append(key) }
                }
            case 1:
                let product = world.products[step % world.products.count]
                let key = "nemesis-order-\(number)-\(step)"
                if let reply = await keyed(target, .POST, "/api/orders", member.token, """
                    {"walletId":"\(member.wallet)","items":[{"productId":"\(product)","quantity":1}],"destination":{"country":"US","postalCode":"1"}}
                    """, key: key), let id = reply.json["id"] as? String {
                    acknowledged.withLock { $0.orders.append(id) }
                }
            default:
                if let existing = listing {
                    _ = try? await target.call(.PATCH, "/api/listings/\(existing)", member.token, #"{"price":\#(100 + step)}"#, timeout: .seconds(5))
                } else if let reply = try? await target.call(.POST, "/api/listings", member.token,
                                                             #"{"title":"Nemesis \#(number)","price":100}"#, timeout: .seconds(5)) {
                    listing = reply.json["id"] as? String
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Sends a keyed request until it gets a definite answer (2xx, or a refusal that is not "try again"), on
    /// either process; nil when it never got a 2xx.
    private func keyed(_ first: NemesisClient, _ method: HTTPMethod, _ path: String, _ token: String, _ body: String, key: String)
        async -> NemesisClient.Reply?
    {
        var target = first
        for attempt in 0..<60 {
            if let reply = try? await target.call(method, path, token, body, key: key, timeout: .seconds(5)) {
                if (200..<300).contains(reply.status) { return reply }
                if reply.status != 503 && reply.status != 409 { return nil }
                if reply.status == 409, !reply.body.contains("idempotency_key_in_use") { return nil }
            }
            // No answer, 503 or the key in use: the same request again, with the same key, maybe on the other process.
            if attempt % 2 == 1 { target = fleet.client(target.base == fleet.client(0).base ? 1 : 0) }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return nil
    }
}

/// A notification receiver that remembers every Idempotency-Key it was sent and notes any key being handled twice at
/// the same moment.
final class FakeWebhook: Sendable {
    private let inFlight = Mutex<[String: Int]>([:])
    private let twice = Mutex<Set<String>>([])
    private let seen = Mutex<Set<String>>([])
    private let address = Mutex("")

    var url: String { address.withLock { $0 } + "/hooks" }
    var overlapping: Set<String> { twice.withLock { $0 } }
    var keys: Set<String> { seen.withLock { $0 } }

    /// Runs `body` with a receiver that answers 200 after `handling`.
    static func with(handling: Duration = .milliseconds(100), _ body: (FakeWebhook) async throws -> Void) async throws {
        let webhook = FakeWebhook()
        let router = Router()
        router.post("/hooks") { [webhook] request, _ -> Response in
            let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
            _ = webhook.seen.withLock { $0.insert(key) }
            let concurrent = webhook.inFlight.withLock { $0[key, default: 0] += 1; return $0[key]! }
            if concurrent > 1 { _ = webhook.twice.withLock { $0.insert(key) } }
            defer { webhook.inFlight.withLock { $0[key, default: 1] -= 1 } }
            try await Task.sleep(for: handling)
            return Response(status: .ok)
        }
        try await LoopbackHTTPServer.run(router) { server in
            webhook.address.withLock { $0 = server.url }
            try await body(webhook)
        }
    }
}
