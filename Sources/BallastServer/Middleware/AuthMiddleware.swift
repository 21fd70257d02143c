import DomainValues
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce

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
        guard parts.count == 2, parts[0].utf8.count == 6,
              parts[0].utf8.elementsEqual("bearer".utf8, by: { ($0 | 0x20) == $1 })
        else { return nil }
        // Blanks around the token are not part of it: tabs and space separators (Unicode Zs), as before, without
        // Foundation's character sets (this runs per request).
        var token = parts[1].drop(while: Self.isBlank)
        while let last = token.last, Self.isBlank(last) { token = token.dropLast() }
        return token.isEmpty ? nil : String(token)
    }

    static func isBlank(_ character: Character) -> Bool {
        character == "\t" || character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .spaceSeparator }
    }
}

import Foundation
