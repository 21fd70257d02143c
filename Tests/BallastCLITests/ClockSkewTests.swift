import BallastConfig
import BallastTestSupport
import DomainValues
import Foundation
import Commerce
import Operations
import SQLKit
import Storage
import Synchronization
import Testing

extension ChildProcesses {
    /// A `ballast serve` whose clock is ten minutes fast shares PostgreSQL with processes whose clocks are right. Every
    /// cross-process question (has this idempotency claim been abandoned? has this job lease expired? has this
    /// notification claim run out?) is asked on the database's clock, so the fast process takes over nothing that a
    /// live process still holds. (On SQLite every process shares one machine and so one clock; this is PostgreSQL's.)
    ///
    /// The skew is real: the process runs with a small preloaded library that moves its wall clock (`clock_gettime`
    /// and `time`) by `BALLAST_TEST_CLOCK_OFFSET_SECONDS`, built here from C with the toolchain's compiler. The test
    /// first checks the skew shows in the process's own log times, so it cannot pass without one.
    @Suite("Clock skew", .serialized, .timeLimit(.minutes(5)))
    struct ClockSkewTests {
        static let adminToken = String(repeating: "k", count: 40)
        static let offsetSeconds = 600

        @Test(.enabled(if: TestStores.postgresServer != nil, "needs BALLAST_TEST_POSTGRES_URL"))
        func aProcessWithAFastClockTakesOverNothingStillHeld() async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let library = try await ClockShift.build(in: folder)
            try await TestStores.withFreshURL(.postgres) { url in
                try await FakeWebhook.with(handling: .zero) { webhook in
                    let port = try freeLoopbackPort()
                    let environment = [
                        "APP_ENV": "test", "DATABASE_URL": CLITests.connectionString(url), "BALLAST_ADMIN_TOKEN": Self.adminToken,
                        "SHADOW_DATABASE_URL": "sqlite:\(folder.path)/shadow.sqlite", "NOTIFY_WEBHOOK_URL": webhook.url,
                        "LOG_LEVEL": "info", "LD_PRELOAD": library.path,
                        "BALLAST_TEST_CLOCK_OFFSET_SECONDS": String(Self.offsetSeconds),
                    ]
                    let migrated = try await BallastProcess.run(["migrate"], environment: environment)
                    try #require(migrated.status == 0, "\(migrated.stderr)")
                    try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                        let fast = try BallastProcess(["serve", "--port", String(port)], environment: environment, workingDirectory: folder)
                        defer { fast.stop() }
                        let api = NemesisClient(base: "http://127.0.0.1:\(port)")
                        try await Self.waitUntilReady(api, fast)
                        try Self.expectSkew(in: fast.readStdout())
                        // Each part on its own: one failing does not hide the others.
                        do { try await Self.idempotencyClaims(api, database) } catch { Issue.record(error, "idempotency claims") }
                        do { try await Self.jobLeases(api, database) } catch { Issue.record(error, "job leases") }
                        do { try await Self.notificationClaims(database, webhook) } catch { Issue.record(error, "notification claims") }
                    }
                }
            }
        }

        static func waitUntilReady(_ api: NemesisClient, _ process: BallastProcess) async throws {
            for _ in 0..<300 {
                if (try? await api.call(.GET, "/health/ready", nil, nil, timeout: .seconds(2)))?.status == 200 { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw BallastProcess.TimedOut(what: "the fast process to become ready: \(process.readStderr().suffix(2000))")
        }

        /// The process's log lines carry its own idea of the time: about ten minutes ahead.
        static func expectSkew(in log: String) throws {
            let line = try #require(log.split(separator: "\n").first { $0.contains("\"time\"") }, "a log line with a time")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let text = try #require(object["time"] as? String)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let logged = try #require(formatter.date(from: text), "a time: \(text)")
            let ahead = logged.timeIntervalSinceNow
            try #require(ahead > Double(offsetSeconds - 60) && ahead < Double(offsetSeconds + 60),
                         "the process's clock is \(Int(ahead)) s ahead, not the \(offsetSeconds) s this test needs")
        }

        /// A claim taken a moment ago by a live process is in use, whatever the fast clock says about its age.
        static func idempotencyClaims(_ api: NemesisClient, _ database: Database) async throws {
            let created = try await api.call(.POST, "/api/users", adminToken, #"{"name":"Skewed","role":"member"}"#)
            let token = try #require(created.json["token"] as? String, "\(created.body)")
            let user = try #require(UserID(created.json["id"] as? String ?? ""), "\(created.body)")
            let wallet = try #require(try await api.call(.POST, "/api/wallets", token, "{}").json["id"] as? String)
            _ = try await api.call(.POST, "/api/wallets/\(wallet)/credit", adminToken, #"{"amount":100}"#)

            let body = #"{"amount":1,"reference":"skew"}"#
            let path = "/api/wallets/\(wallet)/debit"
            let store = IdempotencyStore(database: database)
            let hash = IdempotencyStore.requestHash(method: "POST", path: path, canonicalBody: body)
            guard case .proceed(let claim) = try await store.claim(user: user, key: "skew-1", requestHash: hash) else {
                Issue.record("the key was not free")
                return
            }
            let retry = try await api.call(.POST, path, token, body, key: "skew-1")
            let inUse = retry.status == 409 && retry.body.contains("idempotency_key_in_use")
            #expect(inUse, "\(retry.status) \(retry.body)")
            // The holder finishes: the fast process now replays its answer (so the request above was the same one).
            try await database.transaction { sql in
                try await store.complete(user: user, key: "skew-1", token: claim, status: 201, body: #"{"from":"the holder"}"#, in: sql)
            }
            let replay = try await api.call(.POST, path, token, body, key: "skew-1")
            let replayed = replay.status == 201 && replay.body.contains("the holder")
            #expect(replayed, "\(replay.status) \(replay.body)")
            let balance = try await api.call(.GET, "/api/wallets/\(wallet)", token, nil).json["balance"] as? Int
            #expect(balance == 100, "the fast process applied the debit itself")
        }

        /// A lease a live process renewed a moment ago is held, whatever the fast clock says about its expiry.
        static func jobLeases(_ api: NemesisClient, _ database: Database) async throws {
            let name = "ledger-invariant-auditor"
            let started = Atomic<Bool>(false)
            let finish = Atomic<Bool>(false)
            let holder = JobRunner(database: database, jobs: [Job(name: name, intervalSeconds: 3600, enabled: true) { _ in
                started.store(true, ordering: .relaxed)
                while !finish.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(50)) }
                return .object([:])
            }], logger: TestStores.logger)
            let run = Task {
                // The fast process may be running its own first audit: wait it out.
                for _ in 0..<100 {
                    do { return try await holder.trigger(name) } catch let error as AppError where error.code == .jobRunning {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                throw BallastProcess.TimedOut(what: "the lease on \(name)")
            }
            while !started.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(20)) }
            let stolen = try await api.call(.POST, "/api/admin/jobs/\(name)/trigger", adminToken, nil, timeout: .seconds(30))
            #expect(stolen.status == 409, "the fast process ran \(name) while a live process held it: \(stolen.body)")
            finish.store(true, ordering: .relaxed)
            #expect(try await run.value.status == .succeeded)
            let after = try await api.call(.POST, "/api/admin/jobs/\(name)/trigger", adminToken, nil, timeout: .seconds(30))
            #expect(after.status == 200, "once released, the fast process runs it: \(after.body)")
        }

        /// A notification claimed a moment ago by another dispatcher stays with it; an unclaimed one is delivered.
        static func notificationClaims(_ database: Database, _ webhook: FakeWebhook) async throws {
            let held = UUID().uuidString.lowercased(), free = UUID().uuidString.lowercased()
            try await database.transaction { sql in
                for (id, claimed) in [(held, true), (free, false)] {
                    let now = database.nowMicros
                    let until: SQLQueryString = claimed ? "\(now) + 120000000" : "NULL"
                    try await sql.raw("""
                        INSERT INTO notifications (id, channel, recipient, template, data, status, attempts, next_attempt_at_micros,
                            claimed_until_micros, claim_token, created_at_micros, updated_at_micros)
                        VALUES (\(bind: id), 'email', 'someone', 'skew', '{}', 'pending', 0, \(now), \(until),
                            \(bind: claimed ? "held-elsewhere" : nil as String?), \(now), \(now))
                        """).run()
                }
            }
            var delivered = false
            for _ in 0..<100 where !delivered {
                delivered = webhook.keys.contains(free)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(delivered, "the fast process's dispatcher delivered the unclaimed notification")
            try await Task.sleep(for: .seconds(1))
            #expect(!webhook.keys.contains(held), "the fast process delivered a notification another dispatcher holds")
            let token = try await database.read { sql in
                try await sql.raw("SELECT claim_token FROM notifications WHERE id = \(bind: held)").first()?
                    .decode(column: "claim_token", as: String?.self)
            }
            #expect(token == "held-elsewhere")
        }
    }
}

/// A preloaded library that moves a process's wall clock by `BALLAST_TEST_CLOCK_OFFSET_SECONDS` (its monotonic
/// clocks are left alone).
enum ClockShift {
    static let source = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <stdlib.h>
        #include <time.h>

        static long shift(void) {
            static long seconds;
            static int known;
            if (!known) {
                const char *text = getenv("BALLAST_TEST_CLOCK_OFFSET_SECONDS");
                seconds = text ? atol(text) : 0;
                known = 1;
            }
            return seconds;
        }

        int clock_gettime(clockid_t clock, struct timespec *now) {
            static int (*real)(clockid_t, struct timespec *);
            if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
            int result = real(clock, now);
            if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) now->tv_sec += shift();
            return result;
        }

        time_t time(time_t *out) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            if (out) *out = now.tv_sec;
            return now.tv_sec;
        }
        """

    /// Compiles the library into `folder` with the C compiler on PATH (the toolchain's).
    static func build(in folder: URL) async throws -> URL {
        let file = folder.appendingPathComponent("clock_shift.c")
        let library = folder.appendingPathComponent("clock_shift.so")
        try source.write(to: file, atomically: true, encoding: .utf8)
        let compiler = try ChildProcess("/usr/bin/env", ["clang", "-shared", "-fPIC", "-O1", "-o", library.path, file.path, "-ldl"])
        guard try await compiler.wait(timeout: .seconds(120)) == 0 else {
            throw BallastProcess.TimedOut(what: "the clock library to compile: \(compiler.standardError)")
        }
        return library
    }
}
