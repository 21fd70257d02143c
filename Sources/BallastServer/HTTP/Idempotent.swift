import Foundation
import HTTPTypes
import ChaosKit
import Hummingbird
import Marketplace
import NIOCore
import SQLKit
import Storage

/// Runs a POST that changes state in one transaction, honouring `Idempotency-Key` when the caller sent one:
/// the first answer is stored in the same transaction as the effect and replayed (with
/// `Idempotent-Replayed: true`) for a retry with the same body. The route hands the transaction to the service
/// (`…(in: sql)`); it writes no SQL itself.
struct IdempotentEffect: Sendable {
    static var keyHeader: HTTPField.Name { HTTPField.Name("Idempotency-Key")! }
    static var replayedHeader: HTTPField.Name { HTTPField.Name("Idempotent-Replayed")! }

    let database: Database
    let store: IdempotencyStore
    let failpoints: Failpoints

    func respond<Value: Encodable & Sendable>(
        to request: Request, caller: User, body: JSONValue, status: HTTPResponse.Status,
        effect: @escaping @Sendable (any SQLDatabase) async throws -> Value
    ) async throws -> Response {
        try await respond(to: request, caller: caller, body: body, status: status, prepare: {}) { _, sql in
            try await effect(sql)
        }
    }

    /// The effect failed and so did releasing its claim (a saturated pool or a store that stopped answering: the
    /// effect's own failure, most likely). Without a release, a retry of the request would be answered 409
    /// `idempotency_key_in_use` until the claim counts as abandoned; so the release is tried again a few times in
    /// the background, with growing pauses, for about ten seconds. Fenced by the claim token: it can only remove this
    /// request's own in-flight claim, never a completed key or a later request's claim.
    private func releaseLater(user: UserID, key: String, token: String) {
        Task { [store] in
            for attempt in 1...Self.releaseAttempts {
                try? await Task.sleep(for: .milliseconds(150 * attempt))
                if (try? await store.release(user: user, key: key, token: token)) != nil { return }
            }
        }
    }

    static let releaseAttempts = 10

    /// As above, with a `prepare` step that runs before the transaction and only when the effect will run (not
    /// for a replay): work that must not hold row locks, such as asking a provider for a shipping quote.
    func respond<Prepared: Sendable, Value: Encodable & Sendable>(
        to request: Request, caller: User, body: JSONValue, status: HTTPResponse.Status,
        prepare: @escaping @Sendable () async throws -> Prepared,
        effect: @escaping @Sendable (Prepared, any SQLDatabase) async throws -> Value
    ) async throws -> Response {
        guard let rawKey = request.headers[Self.keyHeader] else {
            let prepared = try await prepare()
            let value = try await database.transaction { sql in try await effect(prepared, sql) }
            return try JSONResponse.make(status, value)
        }
        let key = try IdempotencyStore.validateKey(rawKey)
        let canonical = String(decoding: try JSONResponse.encoder.encode(body), as: UTF8.self)
        let hash = IdempotencyStore.requestHash(method: request.method.rawValue, path: request.uri.path, canonicalBody: canonical)
        switch try await store.claim(user: caller.id, key: key, requestHash: hash) {
        case .replay(let stored):
            return Response(
                status: HTTPResponse.Status(code: stored.status),
                headers: [.contentType: "application/json; charset=utf-8", Self.replayedHeader: "true"],
                body: .init(byteBuffer: ByteBuffer(string: stored.body)))
        case .proceed(let token):
            do {
                let prepared = try await prepare()
                let responseBody: String = try await database.transaction { sql in
                    let value = try await effect(prepared, sql)
                    let encoded = String(decoding: try JSONResponse.encoder.encode(value), as: UTF8.self)
                    try await store.complete(user: caller.id, key: key, token: token, status: Int(status.code), body: encoded, in: sql)
                    // Tests hold a request here (its key completed, not yet committed) to race a retry against it.
                    try await failpoints.pass(IdempotencyStore.Failpoint.afterComplete)
                    return encoded
                }
                return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: responseBody)))
            } catch {
                do {
                    try await store.release(user: caller.id, key: key, token: token)
                } catch {
                    releaseLater(user: caller.id, key: key, token: token)
                }
                throw error
            }
        }
    }
}
