import BallastCore
import BallastWire
import HTTPTypes
import Hummingbird
import NIOCore
import Storage

/// `GET /health` (liveness with details) and `GET /health/ready` (readiness for load balancers).
struct HealthRoutes<Context: BallastRequestContext> {
    let services: AppServices
    /// A check that takes longer than this counts as down: health must answer even when a store hangs.
    static var checkTimeout: Duration { .seconds(2) }

    func register(on router: Router<Context>) {
        router.get("/health") { _, _ in try await health() }
        router.get("/health/ready") { _, _ in try await ready() }
    }

    func health() async throws -> Response {
        async let primaryUp = Self.isUp(services.primary)
        async let shadowState = shadowCheck()
        let database = await primaryUp ? "ok" : "down"
        let shadow = await shadowState
        let status = database == "down" ? "down" : (shadow == "down" ? "degraded" : "ok")
        let chaos = services.injector.state
        let report = HealthReport(
            status: status,
            version: BallastVersion.current,
            environment: services.config.environment.rawValue,
            uptimeSeconds: Int((ContinuousClock.now - services.startedAt).wholeSeconds),
            checks: .init(database: database, shadow: shadow),
            chaos: .init(enabled: chaos.isLive(), failRate: chaos.failRate, scope: chaos.scope.rawValue,
                         seed: chaos.seed, expiresAt: chaos.expiresAt.map(RFC3339.string(from:)), reason: chaos.reason))
        return try JSONResponse.make(database == "down" ? .serviceUnavailable : .ok, report,
                                     headers: database == "down" ? [.retryAfter: "5"] : [:])
    }

    func ready() async throws -> Response {
        let up = await Self.isUp(services.primary)
        let migrated = up ? ((try? await services.checkReady()) ?? false) : false
        let ready = up && migrated
        return try JSONResponse.make(
            ready ? .ok : .serviceUnavailable,
            ReadyReport(ready: ready, database: up ? "ok" : "down", migrated: migrated),
            headers: ready ? [:] : [.retryAfter: "5"])
    }

    private func shadowCheck() async -> String {
        guard services.config.shadowDatabaseURL != nil else { return "disabled" }
        guard let shadow = services.shadow else { return "down" }
        return await Self.isUp(shadow) ? "ok" : "down"
    }

    static func isUp(_ database: Database) async -> Bool {
        await database.isReachable(within: checkTimeout)
    }
}
