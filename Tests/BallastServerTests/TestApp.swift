import BallastConfig
import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import HummingbirdTesting
import Logging
import Marketplace
import Storage
import Telemetry

/// A whole Ballast API on a fresh store of one kind, driven in-process through the router.
struct TestApp: Sendable {
    static let adminToken = "test-admin-token-" + String(repeating: "x", count: 32)

    let services: AppServices
    let client: any TestClientProtocol
    let logSink: LogSink

    /// Sends a request and decodes the JSON answer.
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, headers extra: HTTPFields = [:],
        body: String? = nil
    ) async throws -> TestReply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: path, method: method, headers: headers,
            body: body.map { ByteBuffer(string: $0) }
        ) { response in
            TestReply(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// Creates a member through the API and returns its token.
    func createUser(name: String = "member", role: Role = .member) async throws -> String {
        let reply = try await request(.post, "/api/users", token: Self.adminToken,
                                      body: #"{"name":"\#(name)","role":"\#(role.rawValue)"}"#)
        guard reply.status == .created, let token = reply.json["token"] as? String else {
            throw AppError(.internal, "could not create a user: \(reply.status) \(reply.body)")
        }
        return token
    }

    /// Runs `body` against an app on a fresh, migrated store of `kind`.
    static func run(
        _ kind: StoreKind, environment: [String: String] = [:],
        configure: @escaping @Sendable (Router<AppRequestContext>) -> Void = { _ in },
        _ body: @escaping @Sendable (TestApp) async throws -> Void
    ) async throws {
        try await TestStores.withDatabase(kind) { database in
            var variables = ["APP_ENV": "test", "BALLAST_ADMIN_TOKEN": adminToken, "SHADOW_DATABASE_URL": "none"]
            variables.merge(environment) { _, new in new }
            let config = try AppConfig.load(environment: variables)
            let sink = LogSink.memory()
            let logger = LogOutput.makeLogger(label: "ballast", level: .info, sink: sink)
            let services = AppServices(
                config: config, primary: database, shadow: nil, logger: logger, startupDatabaseWait: .seconds(5))
            try await services.prepare()
            let router = BallastApp.buildRouter(services: services)
            configure(router)
            let app = Application(router: router, logger: logger)
            try await app.test(.router) { client in
                try await body(TestApp(services: services, client: client, logSink: sink))
            }
        }
    }
}

/// What a test reads of a response.
struct TestReply: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: String

    /// The body as a JSON object (empty when it is not one).
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    /// `error.code` of an error body.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorDetails: [String: Any]? { (json["error"] as? [String: Any])?["details"] as? [String: Any] }
}
