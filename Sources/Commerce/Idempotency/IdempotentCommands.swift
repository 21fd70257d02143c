import BallastCore
import ChaosKit
import DomainValues
import Foundation
import Storage

/// What a caller sent for a command that changes state: the body, and what makes a retry of it safe (its
/// `Idempotency-Key`, if any, and the method and path that, with the body, make two requests "the same").
public struct CommandRequest: Sendable {
    public let body: JSONValue
    public let key: String?
    public let method: String
    public let path: String

    public init(body: JSONValue, key: String?, method: String, path: String) {
        self.body = body
        self.key = key
        self.method = method
        self.path = path
    }
}

/// How a command ended, ready to send: its status and body, and the value it produced when it ran now (`nil` when
/// the answer stored for its key was replayed: nothing ran, so there is nothing to announce).
public struct CommandAnswer<Value: Sendable>: Sendable {
    public let status: Int
    public let body: String
    public let value: Value?
    public var replayed: Bool { value == nil }
}

/// The use case under every command that changes state: one transaction for the effect, honouring the caller's
/// `Idempotency-Key` when there is one. The first answer is stored in the same transaction as the effect and
/// replayed for a retry with the same body (a different body under the same key is refused). Only the store makes
/// the ``Transaction`` an effect runs in; work after the commit belongs to the use case that called this.
public struct IdempotentCommands: Sendable {
    let database: Database
    let store: IdempotencyStore
    let failpoints: Failpoints

    public init(database: Database, store: IdempotencyStore, failpoints: Failpoints) {
        self.database = database
        self.store = store
        self.failpoints = failpoints
    }

    /// Runs `effect` in one transaction and renders its answer (`render`: the value as the caller will see it).
    public func run<Value: Sendable>(
        _ command: CommandRequest, by caller: UserID, status: Int,
        effect: @escaping @Sendable (Transaction) async throws -> Value,
        render: @escaping @Sendable (Value) throws -> String
    ) async throws -> CommandAnswer<Value> {
        try await run(command, by: caller, status: status, prepare: {}, effect: { _, transaction in try await effect(transaction) },
                      render: render)
    }

    /// As above, with a `prepare` step that runs before the transaction and only when the effect will run (not for a
    /// replay): work that must not hold row locks, such as asking a provider for a shipping quote. A command without a
    /// key has nothing to remember: `withoutKey`, when given, runs it instead of `effect` in a transaction (a faster
    /// way to the same effect, in a transaction of its own, such as an order as one statement).
    public func run<Prepared: Sendable, Value: Sendable>(
        _ command: CommandRequest, by caller: UserID, status: Int,
        prepare: @escaping @Sendable () async throws -> Prepared,
        effect: @escaping @Sendable (Prepared, Transaction) async throws -> Value,
        withoutKey: (@Sendable (Prepared) async throws -> Value)? = nil,
        render: @escaping @Sendable (Value) throws -> String
    ) async throws -> CommandAnswer<Value> {
        guard let rawKey = command.key else {
            let prepared = try await prepare()
            let value = if let withoutKey {
                try await withoutKey(prepared)
            } else {
                try await database.transaction { transaction in try await effect(prepared, transaction) }
            }
            return CommandAnswer(status: status, body: try render(value), value: value)
        }
        let key = try IdempotencyStore.validateKey(rawKey)
        let canonical = try command.body.canonicalText()
        let hash = IdempotencyStore.requestHash(method: command.method, path: command.path, canonicalBody: canonical)
        switch try await store.claim(user: caller, key: key, requestHash: hash) {
        case .replay(let stored):
            return CommandAnswer(status: stored.status, body: stored.body, value: nil)
        case .proceed(let token):
            do {
                let prepared = try await prepare()
                let (value, body) = try await database.transaction { transaction in
                    let value = try await effect(prepared, transaction)
                    let body = try render(value)
                    try await store.complete(user: caller, key: key, token: token, status: status, body: body, in: transaction)
                    // Tests hold a request here (its key completed, not yet committed) to race a retry against it.
                    try await failpoints.pass(IdempotencyStore.Failpoint.afterComplete)
                    return (value, body)
                }
                return CommandAnswer(status: status, body: body, value: value)
            } catch {
                do {
                    try await store.release(user: caller, key: key, token: token)
                } catch {
                    releaseLater(user: caller, key: key, token: token)
                }
                throw error
            }
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
}
