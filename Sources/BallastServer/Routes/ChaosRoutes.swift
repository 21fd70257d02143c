import BallastConfig
import BallastWire
import ChaosKit
import Commerce
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Operations

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
