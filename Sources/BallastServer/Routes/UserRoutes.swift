import HTTPTypes
import Hummingbird
import NIOCore
import Marketplace

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

/// A user as the API shows it.
struct UserBody: Encodable {
    let id: String
    let name: String
    let role: String
    let createdAt: Date

    init(_ user: User) {
        id = user.id.description
        name = user.name
        role = user.role.rawValue
        createdAt = user.createdAt
    }
}

/// The answer to user creation: the user plus its token, the only time the token is shown.
struct CreatedUser: Encodable {
    let user: UserBody
    let token: String

    init(user: User, token: String) {
        self.user = UserBody(user)
        self.token = token
    }

    func encode(to encoder: any Encoder) throws {
        try user.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(token, forKey: .token)
    }

    enum CodingKeys: String, CodingKey { case token }
}

import Foundation
