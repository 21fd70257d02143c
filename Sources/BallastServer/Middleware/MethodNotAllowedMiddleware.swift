import DomainValues
import HTTPTypes
import Hummingbird
import Commerce

/// Answers a known path asked with a method it does not route: 405 `method_not_allowed` with `Allow` listing the
/// methods it does (RFC 9110), and `OPTIONS` with 204 and the same `Allow`. Added after every route, so it wraps
/// only the router's "no route" answer; an unknown path stays a 404.
struct MethodNotAllowedMiddleware<Context: BallastRequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard let methods = table.methods(for: request.uri.path) else { throw error }
            let allow = methods.joined(separator: ", ")
            if request.method == .options {
                return Response(status: .noContent, headers: [.allow: allow + ", OPTIONS"])
            }
            throw AppError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path); allowed: \(allow)",
                           details: ["allowed": .array(methods.map { .string($0) })])
        }
    }
}

/// The routed paths (templates such as `/api/wallets/{id}`) and the methods each answers.
struct RouteTable: Sendable {
    private struct Entry: Sendable {
        /// Literal segments, `nil` where the template captures one.
        let segments: [String?]
        var methods: [String]
    }

    private let entries: [Entry]

    init(_ routes: [(method: String, path: String)]) {
        var entries: [Entry] = []
        for route in routes {
            let segments = route.path.split(separator: "/").map { part -> String? in
                part.hasPrefix("{") && part.hasSuffix("}") ? nil : String(part)
            }
            if let index = entries.firstIndex(where: { $0.segments == segments }) {
                if !entries[index].methods.contains(route.method) { entries[index].methods.append(route.method) }
            } else {
                entries.append(Entry(segments: segments, methods: [route.method]))
            }
        }
        self.entries = entries
    }

    /// The methods routed on `path`, in a fixed order; nil for a path no route matches. Like the router, a
    /// literal segment wins over a capture (`/api/products/bulk-disable` is not `/api/products/{id}`).
    func methods(for path: String) -> [String]? {
        let parts = path.split(separator: "/")
        let order = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        let found = entries.filter { entry in
            entry.segments.count == parts.count
                && zip(entry.segments, parts).allSatisfy { template, part in template.map { $0 == part } ?? true }
        }
        // The most specific match: at the first segment where two candidates differ, a literal beats a capture.
        guard let best = found.min(by: { lhs, rhs in
            for (left, right) in zip(lhs.segments, rhs.segments) where (left == nil) != (right == nil) {
                return left != nil
            }
            return false
        }) else { return nil }
        return best.methods.sorted {
            (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1)
        }
    }
}
