import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import HummingbirdTesting
import Commerce
import Testing

@Suite("HTTP basics", .timeLimit(.minutes(10)))
struct HTTPBasicsTests {
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    @Test(arguments: TestStores.kinds)
    func requestIdIsAcceptedReplacedAndEchoed(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let accepted = try await app.request(.get, "/health", headers: [Self.requestIDHeader: "trace-01.A_b-c"])
            #expect(accepted.headers[Self.requestIDHeader] == "trace-01.A_b-c")

            for bad in [String(repeating: "a", count: 129), "has space", "semi;colon", "ünïcode", "a/b"] {
                let replaced = try await app.request(.get, "/health", headers: [Self.requestIDHeader: bad])
                let id = try #require(replaced.headers[Self.requestIDHeader])
                #expect(id != bad)
                #expect(UUID(uuidString: id) != nil)
            }
            let longest = String(repeating: "z", count: 128)
            #expect(try await app.request(.get, "/health", headers: [Self.requestIDHeader: longest])
                .headers[Self.requestIDHeader] == longest)

            let generated = try await app.request(.get, "/health")
            #expect(UUID(uuidString: try #require(generated.headers[Self.requestIDHeader])) != nil)
            // Errors carry it too.
            let missing = try await app.request(.get, "/nope", headers: [Self.requestIDHeader: "err-1"])
            #expect(missing.status == .notFound)
            #expect(missing.headers[Self.requestIDHeader] == "err-1")
        }
    }

    @Test(arguments: TestStores.kinds)
    func unknownRoutesAreJSON404s(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let reply = try await app.request(.get, "/no/such/route")
            #expect(reply.status == .notFound)
            #expect(reply.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(reply.errorCode == "not_found")
            let error = try #require(reply.json["error"] as? [String: Any])
            #expect((error["message"] as? String)?.contains("/no/such/route") == true)
            #expect(error["details"] is [String: Any])
        }
    }

    @Test(arguments: TestStores.kinds)
    func missingOrBadTokensAre401(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let none = try await app.request(.get, "/api/users/me")
            #expect(none.status == .unauthorized)
            #expect(none.errorCode == "unauthorized")
            let bad = try await app.request(.get, "/api/users/me", token: "blt_not-a-real-token")
            #expect(bad.status == .unauthorized)
            let wrongScheme = try await app.request(
                .get, "/api/users/me", headers: [.authorization: "Basic \(TestApp.adminToken)"])
            #expect(wrongScheme.status == .unauthorized)
            let huge = try await app.request(.get, "/api/users/me", token: String(repeating: "t", count: 10_000))
            #expect(huge.status == .unauthorized)
            // Unknown /api routes do not reveal themselves to strangers.
            #expect(try await app.request(.get, "/api/secret").status == .unauthorized)
            // The scheme in any case, blanks (tabs and space separators) around the token; nothing else is trimmed.
            for (header, status) in [
                ("bearer \(TestApp.adminToken)", HTTPResponse.Status.ok), ("BEARER \t\(TestApp.adminToken)\t ", .ok),
                ("Bearer \u{A0}\(TestApp.adminToken)\u{3000}", .ok), ("Bearer \(TestApp.adminToken)\u{2028}", .unauthorized),
                ("Bearer \(TestApp.adminToken)\u{85}", .unauthorized), ("Bearerx \(TestApp.adminToken)", .unauthorized),
                ("Bearer", .unauthorized), ("Bearer \t ", .unauthorized),
            ] {
                let reply = try await app.request(.get, "/api/users/me", headers: [.authorization: header])
                #expect(reply.status == status, "\(header.unicodeScalars.map { String($0.value, radix: 16) })")
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func membersCannotReachAdminRoutes(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let member = try await app.createUser(name: "Mia")
            let reply = try await app.request(.post, "/api/users", token: member, body: #"{"name":"Eve","role":"admin"}"#)
            #expect(reply.status == .forbidden)
            #expect(reply.errorCode == "forbidden")
            let count = try await app.services.primary.read { sql in
                try await sql.raw("SELECT count(*) AS n FROM users").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 2, "the admin and Mia; Eve was not created")
        }
    }

    @Test(arguments: TestStores.kinds)
    func bodiesOverOneMebibyteAre413(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let padding = String(repeating: "x", count: (1 << 20) + 1)
            let reply = try await app.request(
                .post, "/api/users", token: TestApp.adminToken, body: #"{"name":"\#(padding)","role":"member"}"#)
            #expect(reply.status == .contentTooLarge)
            #expect(reply.errorCode == "payload_too_large")
            // Exactly at the limit is read (and then refused for its content, not its size).
            let name = String(repeating: "y", count: (1 << 20) - #"{"name":"","role":"member"}"#.utf8.count)
            let atLimit = try await app.request(
                .post, "/api/users", token: TestApp.adminToken, body: #"{"name":"\#(name)","role":"member"}"#)
            #expect(atLimit.status == .unprocessableContent)
        }
    }

    @Test(arguments: TestStores.kinds)
    func badInputIsA4xxNamingTheProblemAndChangesNothing(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let cases: [(String, HTTPResponse.Status, String, String?)] = [
                ("{not json", .badRequest, "malformed_json", nil),
                ("", .badRequest, "malformed_json", nil),
                ("[1,2]", .unprocessableContent, "validation_failed", nil),
                (#"{"role":"member"}"#, .unprocessableContent, "validation_failed", "name"),
                (#"{"name":"","role":"member"}"#, .unprocessableContent, "validation_failed", "name"),
                (#"{"name":42,"role":"member"}"#, .unprocessableContent, "validation_failed", "name"),
                (#"{"name":"Al"}"#, .unprocessableContent, "validation_failed", "role"),
                (#"{"name":"Al","role":"owner"}"#, .unprocessableContent, "validation_failed", "role"),
                (#"{"name":"Al","role":null}"#, .unprocessableContent, "validation_failed", "role"),
                (#"{"name":"\#(String(repeating: "n", count: 201))","role":"member"}"#,
                 .unprocessableContent, "validation_failed", "name"),
            ]
            for (body, status, code, field) in cases {
                let reply = try await app.request(.post, "/api/users", token: TestApp.adminToken, body: body)
                #expect(reply.status == status, "\(body.prefix(40))")
                #expect(reply.errorCode == code, "\(body.prefix(40))")
                if let field { #expect(reply.errorDetails?["field"] as? String == field, "\(body.prefix(40))") }
            }
            let count = try await app.services.primary.read { sql in
                try await sql.raw("SELECT count(*) AS n FROM users").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 1, "only the configured admin exists")
        }
    }

    /// Clients that label JSON as a form (a common command-line default) are still understood.
    @Test func jsonLabelledAsAFormIsAccepted() async throws {
        try await TestApp.run(.sqlite) { app in
            let reply = try await app.request(
                .post, "/api/users", token: TestApp.adminToken,
                headers: [.contentType: "application/x-www-form-urlencoded"], body: #"{"name":"Al","role":"member"}"#)
            #expect(reply.status == .created)
        }
    }

    struct Explosion: Error {}

    @Test(arguments: TestStores.kinds)
    func unexpectedErrorsAre500InternalLoggedAndCounted(kind: StoreKind) async throws {
        try await TestApp.run(kind, configure: { router in
            router.get("/test/explode") { _, _ -> Response in throw Explosion() }
        }) { app in
            let reply = try await app.request(.get, "/test/explode", headers: [Self.requestIDHeader: "boom-1"])
            #expect(reply.status == .internalServerError)
            #expect(reply.errorCode == "internal")
            #expect((reply.json["error"] as? [String: Any])?["message"] as? String
                    == "internal error; quote request id boom-1 when reporting it")
            let logged = app.logSink.lines.filter { $0.contains("unexpected error") }
            #expect(logged.count == 1)
            #expect(logged.first?.contains(#""requestId":"boom-1""#) == true)
            let metrics = try await app.request(.get, "/metrics").body
            #expect(metrics.contains(#"http_internal_errors_total{route="/test/explode"} 1"#))
        }
    }

    @Test(arguments: TestStores.kinds)
    func everyRequestWritesOneAccessLogLineAndNoSecrets(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let member = try await app.createUser(name: "Lou")
            _ = try await app.request(.get, "/api/users/me", token: member, headers: [Self.requestIDHeader: "log-1"])
            let lines = app.logSink.lines
            let access = lines.compactMap { line -> [String: Any]? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      object["message"] as? String == "request", object["requestId"] as? String == "log-1"
                else { return nil }
                return object
            }
            #expect(access.count == 1)
            let line = try #require(access.first)
            #expect(line["method"] as? String == "GET")
            #expect(line["route"] as? String == "/api/users/me")
            #expect(line["status"] as? Int == 200)
            #expect((line["durationMs"] as? Double).map { $0 >= 0 } == true)
            for secret in [member, TestApp.adminToken] {
                #expect(!lines.contains { $0.contains(secret) }, "a token reached the log")
            }
            #expect(!lines.contains { $0.lowercased().contains("bearer") })
        }
    }
}
