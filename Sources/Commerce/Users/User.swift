import BallastCore
import DomainValues
import Foundation

/// What a user may do: admins reach admin endpoints and act on anyone's resources; members only on their own.
public enum Role: String, Sendable, CaseIterable, Codable {
    case admin, member
}


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

/// A display name: printable text of 1 to 200 characters (Unicode scalars), stored as sent.
public struct UserName: Sendable, Equatable {
    public static let maxLength = 200
    public static let rule = TextRule.printable(max: maxLength)
    public let value: String

    public init(_ text: String) throws {
        value = try Self.rule.check(text, field: "name")
    }
}

/// `POST /api/users`: `{name, role}`.
public struct NewUserRequest: Sendable, Equatable {
    public static let name = Field.required("name", .text(UserName.rule))
    public static let role = Field.required("role", Field.choice(Role.self))
    public static let shape = ObjectShape([name, role])

    public let name: UserName
    public let role: Role

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        name = try UserName(try input.text(Self.name))
        role = try input.choice(Self.role, as: Role.self)!
    }
}
