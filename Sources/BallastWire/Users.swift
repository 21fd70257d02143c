import Foundation

/// A user as the API shows it.
public struct UserBody: Codable, Sendable, Equatable {
    public let id: String
    public let name: String
    public let role: String
    public let createdAt: Date

    public init(id: String, name: String, role: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
    }
}

/// The answer to user creation: the user's fields plus its token, the only time the token is shown.
public struct CreatedUser: Codable, Sendable, Equatable {
    public let user: UserBody
    public let token: String

    public init(user: UserBody, token: String) {
        self.user = user
        self.token = token
    }

    public init(from decoder: any Decoder) throws {
        user = try UserBody(from: decoder)
        token = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .token)
    }

    public func encode(to encoder: any Encoder) throws {
        try user.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(token, forKey: .token)
    }

    enum CodingKeys: String, CodingKey { case token }
}
