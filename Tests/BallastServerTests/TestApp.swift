import BallastConfig
import BallastServer
import BallastTestSupport
import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import HummingbirdTesting
import Logging
import Commerce
import Storage
import Synchronization
import Telemetry

/// A whole Ballast API on a fresh store of one kind, driven in-process through the router.
struct TestApp: Sendable {
    static let adminToken = "test-admin-token-" + String(repeating: "x", count: 32)

    let services: AppServices
    let client: any TestClientProtocol
    let logSink: LogSink
    /// The shadow writer's workers, once started.
    let shadowWorkers: ShadowWorkers
    /// The port on 127.0.0.1 when the app runs on a real socket (`live`), else nil.
    let port: Int?

    /// Starts the shadow writer's workers (TestApp.run starts them unless asked not to).
    func startShadowWorkers() { shadowWorkers.start(services) }

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

    /// The shadow store a test app runs with.
    enum Shadow: Sendable {
        /// Shadow writes off (`SHADOW_DATABASE_URL=none`).
        case none
        /// A fresh store of the same kind as the primary.
        case fresh
        /// A PostgreSQL URL where nothing listens: every shadow write fails, /health says degraded.
        case unreachable
    }

    /// Runs `body` against an app on a fresh, migrated store of `kind` (and a shadow store as asked), with the
    /// shadow writer's workers running.
    static func run(
        _ kind: StoreKind, environment: [String: String] = [:], shadow: Shadow = .none, startShadowWorkers: Bool = true,
        eventSubscribers: [(String, EventBus.Handler)] = [], live: Bool = false,
        configure: @escaping @Sendable (Router<AppRequestContext>) -> Void = { _ in },
        _ body: @escaping @Sendable (TestApp) async throws -> Void
    ) async throws {
        try await TestStores.withDatabase(kind) { database in
            switch shadow {
            case .none:
                try await start(database, shadow: nil, environment: environment, workers: startShadowWorkers, subscribers: eventSubscribers, live: live, configure: configure, body)
            case .fresh:
                try await TestStores.withFreshURL(kind) { url in
                    try await Database.withRunning(url, poolSize: 10, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) {
                        try await start(database, shadow: $0, environment: environment, workers: startShadowWorkers,
                                        subscribers: eventSubscribers, live: live, configure: configure, body)
                    }
                }
            case .unreachable:
                let url = DatabaseURL.parse("postgres://ballast@127.0.0.1:9/nowhere?tlsmode=disable")!
                try await Database.withRunning(url, poolSize: 2, logger: TestStores.logger) {
                    try await start(database, shadow: $0, environment: environment, workers: startShadowWorkers,
                                    subscribers: eventSubscribers, live: live, configure: configure, body)
                }
            }
        }
    }

    static func start(
        _ database: Database, shadow: Database?, environment: [String: String], workers: Bool,
        subscribers: [(String, EventBus.Handler)], live: Bool, configure: @escaping @Sendable (Router<AppRequestContext>) -> Void,
        _ body: @escaping @Sendable (TestApp) async throws -> Void
    ) async throws {
        var variables = ["APP_ENV": "test", "BALLAST_ADMIN_TOKEN": adminToken, "SHADOW_DATABASE_URL": shadow.map { "\($0.url.unredactedText)" } ?? "none"]
        variables.merge(environment) { _, new in new }
        let config = try AppConfig.load(environment: variables)
        let sink = LogSink.memory()
        let logger = LogOutput.makeLogger(label: "ballast", level: .info, sink: sink)
        let services = AppServices(
            config: config, primary: database, shadow: shadow, logger: logger, startupDatabaseWait: .seconds(5),
            eventSubscribers: subscribers)
        try await services.prepare()
        let router = BallastApp.buildRouter(services: services)
        configure(router)
        let app = Application(router: router, logger: logger)
        let shadowWorkers = ShadowWorkers()
        if workers { shadowWorkers.start(services) }
        do {
            try await app.test(live ? .live : .router) { client in
                try await body(TestApp(services: services, client: client, logSink: sink, shadowWorkers: shadowWorkers, port: client.port))
            }
        } catch {
            await shadowWorkers.stop()
            throw error
        }
        // The workers finish before the stores they write to close.
        await shadowWorkers.stop()
    }
}

/// The task running the shadow writer's and the event bus's workers in a test app.
final class ShadowWorkers: Sendable {
    private let task = Mutex<Task<Void, any Error>?>(nil)

    func start(_ services: AppServices) {
        task.withLock { task in
            guard task == nil else { return }
            task = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await services.shadowWriter?.run() }
                    group.addTask { try await services.events.run() }
                    try await group.waitForAll()
                }
            }
        }
    }

    /// Cancels the workers and waits for them to end.
    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = await running?.result
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
