import BallastWire
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce

/// `POST /api/users` (admin: create a user and show its token once) and `GET /api/users/me`.
struct UserRoutes<Context: BallastRequestContext> {
    let users: UserService

    func register(on router: Router<Context>) {
        router.post("/api/users") { request, context in
            let admin = try context.requireAdmin()
            let new = try NewUserRequest(try await request.jsonBody())
            let (user, token) = try await users.create(
                name: new.name, role: new.role, by: AuditActor(user: admin, requestId: context.requestId))
            context.logger.info("user created", metadata: ["createdUserId": "\(user.id)", "role": "\(new.role.rawValue)"])
            return try JSONResponse.make(.created, CreatedUser(user: user, token: token))
        }
        router.get("/api/users/me") { _, context in
            try JSONResponse.make(.ok, UserBody(try context.requireUser()))
        }
    }
}
