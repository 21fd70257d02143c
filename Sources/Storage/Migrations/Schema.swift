/// Every schema change, oldest first. New tables arrive as new versions at the end.
///
/// Portable SQL where it can be (`length()`, `BIGINT`, `TEXT` and `CHECK` mean the same on both dialects);
/// `Migration(version:name:sqlite:postgres:)` where the two really differ.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(
            version: 1, name: "users",
            both: [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
                    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
                    created_at_micros BIGINT NOT NULL
                )
                """,
            ]),
    ]
}
