import AsyncHTTPClient
import BallastConfig
import BallastTestSupport
import Foundation
import Commerce
import Storage
import Testing

extension ChildProcesses {
    @Suite("The ballast command", .serialized)
    struct CLITests {
        static func scratchFolder() throws -> URL {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ballast-cli-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return folder
        }

        @Test func helpListsTheCommands() async throws {
            let result = try await BallastProcess.run(["--help"], environment: [:])
            #expect(result.status == 0)
            for command in ["serve", "migrate", "users"] { #expect(result.stdout.contains(command)) }
            let serve = try await BallastProcess.run(["serve", "--help"], environment: [:])
            for flag in ["--port", "--host", "--database-url", "--shadow-database-url", "--env", "--database-wait-seconds"] {
                #expect(serve.stdout.contains(flag), "serve --help mentions \(flag)")
            }
        }

        @Test func chaosInProductionNeverOpensThePort() async throws {
            let folder = try Self.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let port = try freeLoopbackPort()
            let child = try BallastProcess(["serve"], environment: [
                "APP_ENV": "production", "CHAOS_ENABLED": "true", "PORT": String(port),
                "DATABASE_URL": "sqlite:\(folder.path)/primary.sqlite", "SHADOW_DATABASE_URL": "none",
            ], workingDirectory: folder)
            var sawPortOpen = false
            let deadline = ContinuousClock.now + .seconds(30)
            while child.process.isRunning, ContinuousClock.now < deadline {
                sawPortOpen = sawPortOpen || isListening(port: port)
                try await Task.sleep(for: .milliseconds(10))
            }
            let status = try await child.wait(timeout: .seconds(1))
            #expect(status != 0)
            #expect(!sawPortOpen)
            let lines = child.readStderr().split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.first == "FATAL: CHAOS_ENABLED=true is forbidden in production.")
            #expect(lines.count == 2)
            #expect(child.readStdout().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("primary.sqlite").path))
        }

        @Test(arguments: [
            ("PORT", "abc"), ("CHAOS_FAIL_RATE", "1.5"), ("CHAOS_SCOPE", "everything"),
            ("DATABASE_URL", "mysql://u@h/db"), ("BALLAST_ADMIN_TOKEN", "short"),
        ])
        func aBadSettingStopsStartUpWithOneLine(variable: String, value: String) async throws {
            let result = try await BallastProcess.run(["serve"], environment: [variable: value])
            #expect(result.status == 2)
            let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.count == 1)
            #expect(lines.first?.contains(variable) == true)
            #expect(lines.first?.contains("expected") == true)
        }

        @Test func aFlagThatDoesNotParseIsReportedLikeItsVariable() async throws {
            let result = try await BallastProcess.run(["serve", "--port", "eighty"], environment: [:])
            #expect(result.status == 2)
            #expect(result.stderr.contains("PORT"))
        }

        @Test(arguments: TestStores.kinds)
        func migrateTwiceThenCreateAUser(kind: StoreKind) async throws {
            let folder = try Self.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            try await TestStores.withFreshURL(kind) { url in
                let environment = [
                    "DATABASE_URL": Self.connectionString(url), "APP_ENV": "staging",
                    "SHADOW_DATABASE_URL": "sqlite:\(folder.path)/shadow.sqlite",
                ]
                let first = try await BallastProcess.run(["migrate"], environment: environment)
                #expect(first.status == 0, "\(first.stderr)")
                #expect(first.stdout.contains("applied migrations"))
                #expect(first.stdout.contains("shadow store: applied migrations 1"))
                let second = try await BallastProcess.run(["migrate"], environment: environment)
                #expect(second.status == 0)
                #expect(second.stdout.contains("schema is up to date"))
                #expect(second.stdout.contains("shadow schema is up to date"))

                let created = try await BallastProcess.run(
                    ["users", "create", "--name", "Ops Admin", "--role", "admin"], environment: environment)
                #expect(created.status == 0, "\(created.stderr)")
                let json = try #require(
                    try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: String])
                #expect(json["role"] == "admin")
                #expect(json["name"] == "Ops Admin")
                let token = try #require(json["token"])
                let user = try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                    try await UserService(database: database).authenticate(token: token)
                }
                #expect(user?.role == .admin)

                let refused = try await BallastProcess.run(
                    ["users", "create", "--name", "X", "--role", "owner"], environment: environment)
                #expect(refused.status == 2)
                #expect(refused.stderr.contains("--role"))
            }
        }

        @Test func anUnreachableDatabaseStopsStartUpNamingItWithoutThePassword() async throws {
            let port = try freeLoopbackPort()
            let result = try await BallastProcess.run(
                ["serve", "--database-wait-seconds", "2"],
                environment: [
                    "DATABASE_URL": "postgres://ballast:hunter2@127.0.0.1:1/market", "SHADOW_DATABASE_URL": "none",
                    "PORT": String(port),
                ],
                timeout: .seconds(60))
            #expect(result.status != 0)
            #expect(result.stderr.contains("postgres://ballast:***@127.0.0.1:1/market"))
            #expect(!result.stderr.contains("hunter2"))
            #expect(!result.stdout.contains("hunter2"))
        }

        /// `ballast serve` as a user runs it: it answers health, metrics, the OpenAPI document and JSON errors, and
        /// SIGTERM stops it cleanly.
        @Test(arguments: TestStores.kinds)
        func serveAnswersAndStopsOnSIGTERM(kind: StoreKind) async throws {
            let folder = try Self.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            try await TestStores.withFreshURL(kind) { url in
                let port = try freeLoopbackPort()
                let child = try BallastProcess(["serve", "--port", String(port)], environment: [
                    "DATABASE_URL": Self.connectionString(url),
                    "SHADOW_DATABASE_URL": "sqlite:\(folder.path)/shadow.sqlite",
                    "BALLAST_ADMIN_TOKEN": String(repeating: "k", count: 40),
                ], workingDirectory: folder)
                defer { child.stop() }
                let base = "http://127.0.0.1:\(port)"
                let client = HTTPClient.shared

                var health: (status: UInt, body: String)?
                for _ in 0..<300 where health == nil {
                    health = try? await Self.get(client, "\(base)/health/ready")
                    if health == nil { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(health?.status == 200, "server did not become ready: \(child.readStderr())")

                let live = try await Self.get(client, "\(base)/health")
                #expect(live.status == 200)
                #expect(live.body.contains(#""status":"ok""#))
                let metrics = try await Self.get(client, "\(base)/metrics")
                #expect(metrics.body.contains("http_requests_total"))
                let openapi = try await Self.get(client, "\(base)/openapi.json")
                #expect(openapi.body.contains(#""openapi":"3.0.3""#))
                let missing = try await Self.get(client, "\(base)/nope")
                #expect(missing.status == 404)
                #expect(missing.body.contains(#""code":"not_found""#))

                child.signal(SIGTERM)
                let status = try await child.wait(timeout: .seconds(20))
                #expect(status == 0, "\(child.readStderr())")
                #expect(!isListening(port: port))
                let logLines = child.readStdout().split(separator: "\n")
                #expect(logLines.contains { $0.contains(#""message":"request""#) && $0.contains(#""route":"/health""#) })
                #expect(!child.readStdout().contains(String(repeating: "k", count: 40)))
                // No OTEL_* endpoint: tracing is off, so no line carries a trace id and start-up says so.
                #expect(!child.readStdout().contains("traceId"))
                #expect(logLines.contains { $0.contains(#""tracing":"off""#) })
            }
        }

        /// A request still arriving when SIGTERM comes is answered in full before the process exits, and no new
        /// connection is accepted meanwhile.
        @Test func aRequestInFlightAtSIGTERMIsStillAnswered() async throws {
            let folder = try Self.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let port = try freeLoopbackPort()
            let adminToken = String(repeating: "d", count: 40)
            let child = try BallastProcess(["serve", "--port", String(port)], environment: [
                "DATABASE_URL": "sqlite:\(folder.path)/primary.sqlite", "SHADOW_DATABASE_URL": "none",
                "BALLAST_ADMIN_TOKEN": adminToken,
            ], workingDirectory: folder)
            defer { child.stop() }
            var ready = false
            for _ in 0..<300 where !ready {
                ready = (try? await Self.get(HTTPClient.shared, "http://127.0.0.1:\(port)/health/ready"))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(ready, "server did not become ready: \(child.readStderr())")

            let body = #"{"name":"Drained","role":"member"}"#
            let connection = try RawConnection(port: port)
            try connection.send("""
                POST /api/users HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(adminToken)\r
                Content-Type: application/json\r
                Content-Length: \(body.utf8.count)\r
                Connection: close\r
                \r
                \(body.prefix(10))
                """)
            try await Task.sleep(for: .milliseconds(300))
            child.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(500))
            #expect(child.process.isRunning, "the server waits for the request in flight")
            try connection.send(String(body.dropFirst(10)))
            let reply = connection.receiveAll()
            #expect(reply.hasPrefix("HTTP/1.1 201"), "\(reply)")
            #expect(reply.contains(#""name":"Drained""#))
            let status = try await child.wait(timeout: .seconds(20))
            #expect(status == 0)
        }

        static func get(_ client: HTTPClient, _ url: String) async throws -> (status: UInt, body: String) {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (response.status.code, String(buffer: body))
        }

        static func connectionString(_ url: DatabaseURL) -> String { url.unredactedText }
    }
}
