import DomainValues
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce

/// What every middleware and route of ours needs from a request context: the request id and, once the auth
/// middleware ran, the caller.
public protocol BallastRequestContext: RequestContext {
    var requestId: String { get set }
    var user: User? { get set }
}

/// The request context of the Ballast API.
public struct AppRequestContext: BallastRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestId: String = ""
    public var user: User?

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// Bodies over this are refused with 413 before any handler reads them.
    public var maxUploadSize: Int { BodyLimitMiddleware<Self>.maxBytes }
}

extension BallastRequestContext {
    /// The authenticated caller; every `/api` route has one (the auth middleware refuses the others).
    public func requireUser() throws -> User {
        guard let user else { throw AppError.unauthorized }
        return user
    }

    /// The caller, who must be an admin (403 for a member).
    public func requireAdmin() throws -> User {
        let user = try requireUser()
        guard user.isAdmin else { throw AppError.forbidden() }
        return user
    }
}
