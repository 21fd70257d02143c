import BallastConfig
import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import HummingbirdTesting
import Commerce
import Storage
import Testing

@Suite("Users, health, metrics and the OpenAPI document", .timeLimit(.minutes(10)))
struct UsersAndOperationsTests {
    @Test(arguments: TestStores.kinds)
    func anAdminCreatesAUserWhoseTokenWorksAndIsStoredHashed(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let reply = try await app.request(
                .post, "/api/users", token: TestApp.adminToken, body: #"{"name":"  Ada  ","role":"member"}"#)
            #expect(reply.status == .created)
            let token = try #require(reply.json["token"] as? String)
            let id = try #require(reply.json["id"] as? String)
            #expect(reply.json["name"] as? String == "Ada")
            #expect(reply.json["role"] as? String == "member")
            #expect(token.hasPrefix("blt_") && token.count >= 4 + 43)
            #expect(UUID(uuidString: id) != nil)

            let me = try await app.request(.get, "/api/users/me", token: token)
            #expect(me.status == .ok)
            #expect(me.json["id"] as? String == id)
            #expect(me.json["token"] == nil, "the token is shown only once")

            let stored = try await app.services.primary.read { sql in
                try await sql.raw("SELECT token_hash FROM users WHERE id = \(bind: id)").first()!
                    .decode(column: "token_hash", as: String.self)
            }
            #expect(stored == AccessToken.hash(token))
            #expect(!stored.contains(token))
        }
    }

    @Test(arguments: TestStores.kinds)
    func theConfiguredAdminExistsOnceAfterRepeatedStarts(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let users = UserService(database: database)
            let token = TestApp.adminToken
            // Several processes starting at once each ensure the admin.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { try await users.ensureAdmin(token: token) } }
                try await group.waitForAll()
            }
            let admin = try #require(try await users.authenticate(token: token))
            #expect(admin.role == .admin)
            let count = try await database.read { sql in
                try await sql.raw("SELECT count(*) AS n FROM users").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func healthReportsChecksAndChaos(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: ["CHAOS_SEED": "seed-7"]) { app in
            let reply = try await app.request(.get, "/health")
            #expect(reply.status == .ok)
            let json = reply.json
            #expect(json["status"] as? String == "ok")
            #expect(json["version"] as? String == BallastVersion.current)
            #expect(json["environment"] as? String == "test")
            #expect(json["uptimeSeconds"] as? Int != nil)
            let checks = try #require(json["checks"] as? [String: Any])
            #expect(checks["database"] as? String == "ok")
            #expect(checks["shadow"] as? String == "disabled")
            let chaos = try #require(json["chaos"] as? [String: Any])
            #expect(chaos["enabled"] as? Bool == false)
            #expect(chaos["failRate"] as? Double == 0)
            #expect(chaos["scope"] as? String == "shadow_write_only")
            #expect(chaos["seed"] as? String == "seed-7")
            #expect(chaos.keys.contains("expiresAt") && chaos["expiresAt"] is NSNull)

            let ready = try await app.request(.get, "/health/ready")
            #expect(ready.status == .ok)
            #expect(ready.json["ready"] as? Bool == true)
        }
    }

    @Test func aRandomSeedIsChosenAndShownWhenNoneIsConfigured() async throws {
        try await TestApp.run(.sqlite) { app in
            let health = try await app.request(.get, "/health")
            let seed = try #require((health.json["chaos"] as? [String: Any])?["seed"] as? String)
            #expect(seed.count == 16)
            #expect(seed == app.services.chaosSeed)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func healthIs503WhenThePrimaryIsDownAndDegradedWhenOnlyTheShadowIs() async throws {
        let unreachable = try #require(DatabaseURL.parse("postgres://u:p@127.0.0.1:1/nowhere"))
        try await TestStores.withDatabase(.sqlite) { healthy in
            try await Database.withRunning(unreachable, poolSize: 1, logger: TestStores.logger) { down in
                let config = try AppConfig.load(environment: ["APP_ENV": "test"])
                for (primary, shadow, status, label) in [
                    (down, healthy, HTTPResponse.Status.serviceUnavailable, "down"),
                    (healthy, down, .ok, "degraded"),
                ] {
                    let services = AppServices(config: config, primary: primary, shadow: shadow, logger: TestStores.logger)
                    let app = Application(router: BallastApp.buildRouter(services: services))
                    try await app.test(.router) { client in
                        try await client.execute(uri: "/health", method: .get) { response in
                            #expect(response.status == status)
                            let json = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))
                            #expect((json as? [String: Any])?["status"] as? String == label)
                        }
                        if label == "down" {
                            try await client.execute(uri: "/health/ready", method: .get) { response in
                                #expect(response.status == .serviceUnavailable)
                                #expect(response.headers[.retryAfter] != nil)
                            }
                            // An API request needs the store: a prompt 503 with Retry-After, not a hang.
                            try await client.execute(
                                uri: "/api/users/me", method: .get, headers: [.authorization: "Bearer \(TestApp.adminToken)"]
                            ) { response in
                                #expect(response.status == .serviceUnavailable)
                                #expect(response.headers[.retryAfter] == "1")
                                #expect(String(buffer: response.body).contains("service_unavailable"))
                            }
                        }
                    }
                }
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func metricsAreInPrometheusTextFormat(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            _ = try await app.request(.get, "/health")
            _ = try await app.request(.get, "/health")
            _ = try await app.request(.get, "/api/users/me")
            let reply = try await app.request(.get, "/metrics")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(reply.body.contains("# TYPE http_requests_total counter"))
            #expect(reply.body.contains(#"http_requests_total{method="GET",route="/health",status="200"} 2"#))
            #expect(reply.body.contains(#"http_requests_total{method="GET",route="unmatched",status="401"} 1"#)
                    || reply.body.contains(#"http_requests_total{method="GET",route="/api/users/me",status="401"} 1"#))
            #expect(reply.body.contains("# TYPE http_request_duration_seconds histogram"))
        }
    }

    @Test func theOpenAPIDocumentListsExactlyTheRegisteredRoutes() async throws {
        try await TestStores.withDatabase(.sqlite) { database in
            let config = try AppConfig.load(environment: ["APP_ENV": "test"])
            let services = AppServices(config: config, primary: database, shadow: nil, logger: TestStores.logger)
            let router = BallastApp.buildRouter(services: services)
            let registered = Set(router.routes.map { "\($0.method.rawValue) \($0.path)" })

            let app = Application(router: router)
            try await app.test(.router) { client in
                try await client.execute(uri: "/openapi.json", method: .get) { response in
                    #expect(response.status == .ok)
                    let document = try #require(
                        try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
                    #expect((document["openapi"] as? String)?.hasPrefix("3.") == true)
                    let paths = try #require(document["paths"] as? [String: [String: Any]])
                    var documented = Set<String>()
                    for (path, operations) in paths {
                        for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
                    }
                    #expect(registered.subtracting(documented).isEmpty, "routes missing from the document")
                    #expect(documented.subtracting(registered).isEmpty, "documented operations without a route")
                    #expect(registered.count >= 6)
                }
            }
        }
    }
}
