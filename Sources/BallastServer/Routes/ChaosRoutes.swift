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
            let input = try await request.jsonObject()
            let update = try Self.parse(input)
            let state = try await chaos.update(update, actor: admin.id.description, requestId: context.requestId)
            return try JSONResponse.make(.ok, ChaosBody(state))
        }
    }

    static var settingFields: [String] { ["enabled", "failRate", "scope", "seed", "durationSeconds", "latencyMilliseconds"] }

    static func parse(_ input: InputObject) throws -> ChaosUpdate {
        guard settingFields.contains(where: input.contains) else {
            throw AppError(.validationFailed, "nothing to change: send at least one of \(settingFields.joined(separator: ", "))")
        }
        var update = ChaosUpdate()
        update.enabled = try input.optionalBool("enabled")
        update.failRate = try input.optionalNumber("failRate", in: 0...1)
        update.scope = try input.optionalChoice("scope", as: ChaosScope.self)
        update.seed = try input.optionalString("seed", maxLength: 256)
        if input.contains("durationSeconds") {
            update.durationSeconds = .some(try input.optionalInteger("durationSeconds", in: 1...31_536_000).map { Int($0) })
        }
        update.latencyMilliseconds = try input.optionalInteger("latencyMilliseconds", in: 0...60_000).map { Int($0) }
        update.reason = try input.optionalString("reason", maxLength: 500)
        return update
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
