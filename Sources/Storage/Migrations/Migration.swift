/// One versioned schema change, written once per dialect. Versions are applied in ascending order and recorded
/// in `schema_migrations`; a version once released is never edited, only followed by a new one.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sqlite: [String]
    public let postgres: [String]

    public init(version: Int, name: String, sqlite: [String], postgres: [String]) {
        self.version = version
        self.name = name
        self.sqlite = sqlite
        self.postgres = postgres
    }

    /// The same statements on both dialects (portable SQL).
    public init(version: Int, name: String, both: [String]) {
        self.init(version: version, name: name, sqlite: both, postgres: both)
    }

    func statements(for dialect: Database.Dialect) -> [String] {
        dialect == .sqlite ? sqlite : postgres
    }
}
