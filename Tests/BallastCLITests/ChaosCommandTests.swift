import BallastTestSupport
import BallastWire
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import Testing

extension ChildProcesses {
    /// `ballast chaos run` as a process: it fails (exit 1, naming the invariant) against a target whose wallet
    /// balances disagree with their ledgers, refuses production, and restores chaos settings on Ctrl-C.
    @Suite("Chaos command", .serialized)
    struct ChaosCommandTests {
        static let adminToken = String(repeating: "k", count: 40)

        @Test
        func aBalanceThatDisagreesWithItsLedgerFailsTheRun() async throws {
            try await LyingTarget.with(environment: "staging") { target in
                let run = try await BallastProcess.run(
                    ["chaos", "run", "--target", target.url, "--token", Self.adminToken, "--scenario", "wallet-concurrency",
                     "--duration", "2", "--concurrency", "4", "--seed", "lie"],
                    environment: [:], timeout: .seconds(120))
                #expect(run.status == 1, "stdout: \(run.stdout) stderr: \(run.stderr)")
                #expect(run.stdout.contains("FAILED: I2 every balance equals its ledger (wallet-concurrency)"), "\(run.stdout)")
                #expect(run.stdout.contains("mismatched 4"), "every wallet is named as off")
                #expect(run.stdout.contains("FAILED: wallet-concurrency I2 every balance equals its ledger: wallet "), "offenders are named")
                // The replays are honoured, so that check holds: only what the target lies about fails.
                #expect(run.stdout.contains("applied twice 0"))
                // Checks that hold are still reported as such: the lie is in the balance, not in the ledgers.
                #expect(run.stdout.contains("I1         no wallet below zero"))
                #expect(run.stderr.contains("wallet-concurrency"), "progress went to stderr")
            }
        }

        @Test
        func aProductionTargetIsRefusedWithoutARequestBeyondHealth() async throws {
            try await LyingTarget.with(environment: "production") { target in
                let run = try await BallastProcess.run(
                    ["chaos", "run", "--target", target.url, "--token", Self.adminToken, "--scenario", "all", "--duration", "5"],
                    environment: [:], timeout: .seconds(60))
                #expect(run.status == 3)
                #expect(run.stdout.contains("REFUSED: the target says it is production"), "\(run.stdout)")
                #expect(target.paths == ["GET /health"])
            }
        }

        @Test
        func badArgumentsAreRefusedWithTheirName() async throws {
            let run = try await BallastProcess.run(
                ["chaos", "run", "--token", Self.adminToken, "--scenario", "everything"], environment: [:])
            #expect(run.status == 64)
            #expect(run.stderr.contains("--scenario must be one of wallet-concurrency"), "\(run.stderr)")
            let rate = try await BallastProcess.run(
                ["chaos", "run", "--token", Self.adminToken, "--scenario", "bank", "--fail-rate", "1.5"], environment: [:])
            #expect(rate.status == 64)
            #expect(rate.stderr.contains("--fail-rate must be from 0.0 to 1.0"))
            let wait = try await BallastProcess.run(
                ["chaos", "run", "--token", Self.adminToken, "--scenario", "bank", "--request-timeout", "0"], environment: [:])
            #expect(wait.status == 64)
            #expect(wait.stderr.contains("--request-timeout must be from 1 to 600 seconds"))
        }

        @Test
        func ctrlCRestoresTheChaosSettings() async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let environment = [
                "APP_ENV": "staging", "MIGRATE_ON_START": "true", "BALLAST_ADMIN_TOKEN": Self.adminToken, "LOG_LEVEL": "warning",
                "DATABASE_URL": "sqlite:" + folder.appendingPathComponent("p.sqlite").path,
                "SHADOW_DATABASE_URL": "sqlite:" + folder.appendingPathComponent("s.sqlite").path,
            ]
            let port = try freeLoopbackPort()
            let server = try BallastProcess(["serve", "--port", String(port)], environment: environment, workingDirectory: folder)
            defer { server.stop() }
            let api = APIClient(base: "http://127.0.0.1:\(port)", adminToken: Self.adminToken)
            var ready = false
            for _ in 0..<600 where !ready {
                ready = (try? await api.call(.GET, "/health/ready", nil, nil))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(ready, "ballast serve started: \(server.readStderr())")
            let before = try await api.call(.GET, "/api/admin/chaos", Self.adminToken, nil).json

            let runner = try BallastProcess(
                ["chaos", "run", "--target", "http://127.0.0.1:\(port)", "--token", Self.adminToken, "--scenario", "shadow-write",
                 "--duration", "120", "--concurrency", "4", "--fail-rate", "0.5"],
                environment: [:], workingDirectory: folder)
            defer { runner.stop() }
            var live = false
            for _ in 0..<600 where !live {
                live = (try await api.call(.GET, "/api/admin/chaos", Self.adminToken, nil).json["enabled"] as? Bool) == true
                if !live { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(live, "the run switched chaos on: \(runner.readStderr())")
            try await Task.sleep(for: .seconds(1))
            runner.signal(SIGINT)
            let status = try await runner.wait(timeout: .seconds(60))
            #expect(status == 130, "stdout: \(runner.readStdout()) stderr: \(runner.readStderr())")
            #expect(runner.readStdout().contains("INTERRUPTED"))

            let after = try await api.call(.GET, "/api/admin/chaos", Self.adminToken, nil).json
            #expect(after["enabled"] as? Bool == false)
            for field in ["failRate", "scope", "seed", "latencyMilliseconds"] {
                #expect("\(after[field] ?? "nil")" == "\(before[field] ?? "nil")", "\(field) restored")
            }
            #expect((after["reason"] as? String)?.contains("previous settings restored") == true)
        }
    }
}

/// A small HTTP server that speaks just enough of the Ballast API for the wallet-concurrency scenario, in the
/// API's own wire types, and lies: every wallet it shows has one cent more than its ledger holds.
final class LyingTarget: Sendable {
    struct Entry: Sendable {
        let id: String
        let kind: String
        let amount: Int64
        let balanceAfter: Int64
    }

    struct Wallet: Sendable {
        var owner: String
        var ledger: [Entry] = []
        var balance: Int64 { ledger.reduce(0) { $0 + ($1.kind == "credit" ? $1.amount : -$1.amount) } }
    }

    struct State: Sendable {
        var users: [String: String] = [:]
        var wallets: [String: Wallet] = [:]
        var replies: [String: (HTTPResponse.Status, String)] = [:]
        var paths: [String] = []
    }

    let environment: String
    private let state = Mutex(State())
    private let address = Mutex("http://127.0.0.1:0")
    static let epoch = Date(timeIntervalSince1970: 1_780_000_000)

    init(environment: String) { self.environment = environment }

    var url: String { address.withLock { $0 } }
    var paths: [String] { state.withLock { $0.paths } }

    static func with(environment: String, _ body: (LyingTarget) async throws -> Void) async throws {
        let target = LyingTarget(environment: environment)
        try await LoopbackHTTPServer.run(target.router()) { server in
            target.address.withLock { $0 = server.url }
            try await body(target)
        }
    }

    /// Chaos off, as the API shows it.
    private static let chaos = ChaosBody(enabled: false, failRate: 0, scope: "shadow_write_only", seed: "s", expiresAt: nil,
                                         durationSeconds: nil, latencyMilliseconds: 0, abortErrorRate: 0, version: 1, reason: nil)

    private static func text(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    private func reply(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: Self.text(value))))
    }

    private func caller(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst(7))
        return token == ChildProcesses.ChaosCommandTests.adminToken ? "admin" : state.withLock { $0.users[token] }
    }

    /// The lie: one cent more than the ledger.
    private static func body(_ id: String, _ wallet: Wallet) -> WalletBody {
        WalletBody(id: id, ownerId: wallet.owner, currency: "USD", balance: wallet.balance + 1, createdAt: epoch)
    }

    private static func body(_ entry: Entry) -> LedgerEntryBody {
        LedgerEntryBody(id: entry.id, kind: entry.kind, amount: entry.amount, balanceAfter: entry.balanceAfter, reference: nil,
                        createdAt: epoch)
    }

    private func move(_ request: Request, _ context: BasicRequestContext, kind: String) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        let body = try await request.body.collect(upTo: 1 << 16)
        let amount = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any])?["amount"] as? Int64 ?? 0
        let who = caller(request)
        let key = request.headers[HTTPField.Name("Idempotency-Key")!].map { "\(who ?? "")/\($0)" }
        let (status, text, replayed): (HTTPResponse.Status, String, Bool) = state.withLock { state in
            if let key, let earlier = state.replies[key] { return (earlier.0, earlier.1, true) }
            guard var wallet = state.wallets[id], who == "admin" || who == wallet.owner else {
                return (.notFound, Self.text(ErrorBody(error: .init(code: "not_found", message: "no such wallet", details: [:]))), false)
            }
            if kind == "debit", wallet.balance < amount {
                return (.conflict, Self.text(ErrorBody(error: .init(code: "insufficient_funds", message: "not enough", details: [:]))), false)
            }
            let entry = Entry(id: UUID().uuidString.lowercased(), kind: kind, amount: amount,
                              balanceAfter: wallet.balance + (kind == "credit" ? amount : -amount))
            wallet.ledger.append(entry)
            state.wallets[id] = wallet
            let text = Self.text(MovementBody(wallet: Self.body(id, wallet), transaction: Self.body(entry)))
            if let key { state.replies[key] = (.ok, text) }
            return (.ok, text, false)
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if replayed { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(PathRecorder(target: self))
        router.get("/health") { [self] _, _ in
            reply(.ok, HealthReport(
                status: "ok", version: "lying", environment: environment, uptimeSeconds: 1,
                checks: .init(database: "ok", shadow: "disabled"),
                chaos: .init(enabled: false, failRate: 0, scope: "shadow_write_only", seed: "s", expiresAt: nil, reason: nil)))
        }
        router.get("/metrics") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "")))
        }
        router.get("/api/admin/chaos") { [self] _, _ in reply(.ok, Self.chaos) }
        router.put("/api/admin/chaos") { [self] _, _ in reply(.ok, Self.chaos) }
        router.post("/api/users") { [self] _, _ in
            let (id, token) = (UUID().uuidString.lowercased(), UUID().uuidString)
            state.withLock { $0.users[token] = id }
            return reply(.created, CreatedUser(user: UserBody(id: id, name: "member", role: "member", createdAt: Self.epoch), token: token))
        }
        router.post("/api/wallets") { [self] request, _ in
            let id = UUID().uuidString.lowercased()
            let wallet = Wallet(owner: caller(request) ?? "")
            state.withLock { $0.wallets[id] = wallet }
            return reply(.created, Self.body(id, wallet))
        }
        router.post("/api/wallets/{id}/credit") { [self] request, context in try await move(request, context, kind: "credit") }
        router.post("/api/wallets/{id}/debit") { [self] request, context in try await move(request, context, kind: "debit") }
        router.get("/api/wallets/{id}") { [self] _, context in
            let id = context.parameters.get("id") ?? ""
            guard let wallet = state.withLock({ $0.wallets[id] }) else {
                return reply(.notFound, ErrorBody(error: .init(code: "not_found", message: "no such wallet", details: [:])))
            }
            return reply(.ok, Self.body(id, wallet))
        }
        router.get("/api/wallets/{id}/transactions") { [self] _, context in
            let ledger = state.withLock { $0.wallets[context.parameters.get("id") ?? ""]?.ledger ?? [] }
            return reply(.ok, Page(items: ledger.reversed().map(Self.body), nextCursor: nil))
        }
        router.get("/api/admin/evidence/verify") { [self] _, _ in
            reply(.ok, VerificationBody(records: 0, valid: true, firstInvalidId: nil, firstInvalidSeq: nil, failure: nil, headSeq: 0,
                                        headHash: String(repeating: "0", count: 64)))
        }
        router.post("/api/admin/jobs/ledger-invariant-auditor/trigger") { [self] _, _ in
            reply(.ok, JobRunBody(name: "ledger-invariant-auditor", status: "succeeded", durationSeconds: 0.01,
                                  result: ["violations": 0, "walletsChecked": .integer(Int64(state.withLock { $0.wallets.count })),
                                           "productsChecked": 0]))
        }
        return router
    }

    func record(_ path: String) { state.withLock { $0.paths.append(path) } }
}

/// Remembers "METHOD /path" of every request the lying target gets.
struct PathRecorder: RouterMiddleware {
    let target: LyingTarget
    func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
        target.record("\(request.method.rawValue) \(request.uri.path)")
        return try await next(request, context)
    }
}
