import BallastConfig
import ChaosKit
import Foundation
import HTTPTypes
import Hummingbird
import Marketplace
import NIOCore

/// `GET /api/admin/chaos` and `PUT /api/admin/chaos`: the run-time switch of fault injection (admin only).
struct ChaosRoutes<Context: BallastRequestContext> {
    let chaos: ChaosService

    func register(on router: Router<Context>) {
        router.get("/api/admin/chaos") { _, context in
            _ = try context.requireAdmin()
            return try JSONResponse.make(.ok, ChaosBody(chaos.injector.state))
        }
        router.put("/api/admin/chaos") { request, context in
            let admin = try context.requireAdmin()
            let change = try ChaosUpdateRequest(try await request.jsonBody(), environment: chaos.environment)
            let state = try await chaos.update(change.update, actor: admin.id.description, requestId: context.requestId)
            return try JSONResponse.make(.ok, ChaosBody(state))
        }
    }
}

/// Fault injection as the API shows it. `enabled` is whether injection is live now (a spent time box reads
/// false even before the monitor records it).
struct ChaosBody: Encodable {
    let enabled: Bool
    let failRate: Double
    let scope: String
    let seed: String
    @Null var expiresAt: Date?
    @Null var durationSeconds: Int?
    let latencyMilliseconds: Int
    let abortErrorRate: Double
    let version: Int64
    @Null var reason: String?

    init(_ state: ChaosState, now: Date = Date()) {
        enabled = state.isLive(at: now)
        failRate = state.failRate
        scope = state.scope.rawValue
        seed = state.seed
        expiresAt = state.expiresAt
        durationSeconds = state.expiresAt.map { max(0, Int($0.timeIntervalSince(now).rounded(.up))) }
        latencyMilliseconds = state.latencyMilliseconds
        abortErrorRate = state.abortErrorRate
        version = state.version
        reason = state.reason
    }

}
