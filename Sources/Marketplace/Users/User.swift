import Foundation

/// What a user may do: admins reach admin endpoints and act on anyone's resources; members only on their own.
public enum Role: String, Sendable, CaseIterable, Codable {
    case admin, member
}

public enum UserTag {}
/// A user's identifier (a UUID, lower-case in storage and in the API).
public typealias UserID = TypedID<UserTag>

/// A person or system acting on the marketplace. The token is never part of it: only its hash is stored.
public struct User: Sendable, Equatable, Codable {
    public let id: UserID
    public let name: String
    public let role: Role
    public let createdAt: Date

    public init(id: UserID, name: String, role: Role, createdAt: Date) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
    }

    public var isAdmin: Bool { role == .admin }
}

/// A display name: 1–200 characters after trimming, no control characters.
public struct UserName: Sendable, Equatable {
    public static let maxLength = 200
    public let value: String

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw AppError.invalidField("name", "name must not be empty") }
        guard trimmed.count <= Self.maxLength else {
            throw AppError.invalidField("name", "name must have at most \(Self.maxLength) characters")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw AppError.invalidField("name", "name must not contain control characters")
        }
        value = trimmed
    }
}
