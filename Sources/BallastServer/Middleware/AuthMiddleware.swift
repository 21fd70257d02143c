import HTTPTypes
import Hummingbird
import NIOCore
import Marketplace

/// Resolves `Authorization: Bearer <token>` to a user for every `/api` path (401 when missing or unknown).
/// Other paths (health, metrics, the OpenAPI document) are public. Roles are checked by each route.
struct AuthMiddleware<Context: BallastRequestContext>: RouterMiddleware {
    let users: UserService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == "/api" || path.hasPrefix("/api/") else {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], let token = Self.bearerToken(header) else {
            throw AppError.unauthorized
        }
        guard let user = try await users.authenticate(token: token) else {
            throw AppError.unauthorized
        }
        var context = context
        context.user = user
        context.logger[metadataKey: "userId"] = .string(user.id.description)
        return try await next(request, context)
    }

    static func bearerToken(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

import Foundation
