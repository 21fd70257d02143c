import DomainValues
import Evidence
import EvidenceStore
import Foundation
import Logging
import SQLKit
import Storage

/// Creates users and resolves bearer tokens to users.
public struct UserService: Sendable {
    let database: Database
    private let tokens = TokenCache()

    public init(database: Database) {
        self.database = database
    }

    /// A new user and its token; the token is returned once and never stored (only its hash). Writes
    /// ADMIN_ACTION evidence (role only, never the name) in the same transaction.
    public func create(name: UserName, role: Role, by actor: AuditActor) async throws -> (user: User, token: String) {
        let token = AccessToken.generate()
        let user = User(id: UserID(), name: name.value, role: role, createdAt: Date())
        let createdAtMicros = StoredTime.micros(from: user.createdAt)
        try await database.transaction { sql in
            try await sql.raw("""
                INSERT INTO users (id, name, role, token_hash, created_at_micros)
                VALUES (\(bind: user.id.description), \(bind: user.name), \(bind: role.rawValue),
                        \(bind: AccessToken.hash(token)), \(bind: createdAtMicros))
                """).run()
            try await EvidenceLog(database: database).append([AdminAction.event(
                "create_user", entityType: "user", entityId: user.id.description, by: actor,
                before: .null, after: ["role": .string(role.rawValue)])], in: sql)
        }
        return (User(id: user.id, name: user.name, role: role, createdAt: StoredTime.date(fromMicros: createdAtMicros)), token)
    }

    /// The user holding `token`, or `nil` for an unknown token.
    public func authenticate(token: String) async throws -> User? {
        guard !token.isEmpty, token.count <= AccessToken.maxLength else { return nil }
        let hash = AccessToken.hash(token)
        if let cached = tokens.user(forHash: hash) { return cached }
        let row = try await database.read { sql in
            try await sql.raw("""
                SELECT id, name, role, token_hash, created_at_micros FROM users WHERE token_hash = \(bind: hash)
                """).first(decoding: UserRow.self)
        }
        guard let row, AccessToken.constantTimeEquals(row.token_hash, hash) else { return nil }
        let user = try row.user()
        tokens.remember(user, forHash: hash)
        return user
    }

    public func find(id: UserID) async throws -> User? {
        try await database.read { sql in
            try await sql.raw("""
                SELECT id, name, role, token_hash, created_at_micros FROM users WHERE id = \(bind: id.description)
                """).first(decoding: UserRow.self)
        }.map { try $0.user() }
    }

    /// Makes sure an admin holding `token` exists (`BALLAST_ADMIN_TOKEN`). Idempotent, and safe when several
    /// processes start at once: the insert is skipped if the token's hash is already stored. A member that holds
    /// the same token is promoted, since the operator declared this token to be the admin's.
    @discardableResult
    public func ensureAdmin(token: String, name: String = "admin") async throws -> User {
        let hash = AccessToken.hash(token)
        let now = StoredTime.nowMicros()
        return try await database.transaction { sql in
            try await sql.raw("""
                INSERT INTO users (id, name, role, token_hash, created_at_micros)
                VALUES (\(bind: UserID().description), \(bind: name), 'admin', \(bind: hash), \(bind: now))
                ON CONFLICT (token_hash) DO UPDATE SET role = 'admin'
                """).run()
            guard let row = try await sql.raw("""
                SELECT id, name, role, token_hash, created_at_micros FROM users WHERE token_hash = \(bind: hash)
                """).first(decoding: UserRow.self)
            else { throw StorageError.missingReturnedRow("admin user after upsert") }
            tokens.forget(hash: hash)
            return try row.user()
        }
    }
}

/// A `users` row as stored.
struct UserRow: Decodable {
    let id: String
    let name: String
    let role: String
    let token_hash: String
    let created_at_micros: Int64

    func user() throws -> User {
        guard let id = UserID(id), let role = Role(rawValue: role) else {
            throw StorageError.missingReturnedRow("users row \(self.id) has an unreadable id or role")
        }
        return User(id: id, name: name, role: role, createdAt: StoredTime.date(fromMicros: created_at_micros))
    }
}
