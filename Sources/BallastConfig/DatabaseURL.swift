import Foundation

/// Where a store lives, parsed once from `DATABASE_URL` / `SHADOW_DATABASE_URL`.
///
/// Accepted forms: `sqlite:PATH`, `sqlite::memory:`, `postgres://user:pass@host:port/db` (also `postgresql://`),
/// with an optional `?tlsmode=disable|prefer|require` (`sslmode` is read as a synonym).
public enum DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    case sqliteFile(path: String)
    case sqliteMemory
    case postgres(PostgresLocation)

    /// How a PostgreSQL connection negotiates TLS.
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    /// A PostgreSQL server and database, with the password kept out of `description`.
    public struct PostgresLocation: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        public var tlsMode: TLSMode

        public init(host: String, port: Int, username: String, password: String?, database: String, tlsMode: TLSMode) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.tlsMode = tlsMode
        }

        /// The URL again, with the password replaced by `***` so it can be logged and printed.
        public var redacted: String {
            let credentials = password == nil ? username : "\(username):***"
            return "postgres://\(credentials)@\(hostForURL):\(port)/\(database)?tlsmode=\(tlsMode.rawValue)"
        }

        /// The full URL including the password; only for building connection strings, never for logs.
        public var unredacted: String {
            let user = Self.percentEncode(username)
            let credentials = password.map { "\(user):\(Self.percentEncode($0))" } ?? user
            return "postgres://\(credentials)@\(hostForURL):\(port)/\(Self.percentEncode(database))?tlsmode=\(tlsMode.rawValue)"
        }

        /// The same server with another database name (tests create one database per test).
        public func withDatabase(_ name: String) -> PostgresLocation {
            var copy = self
            copy.database = name
            return copy
        }

        private var hostForURL: String { host.contains(":") ? "[\(host)]" : host }

        private static func percentEncode(_ value: String) -> String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
        }
    }

    /// What the variables accept, for error messages.
    public static let acceptedForms =
        "sqlite:PATH, sqlite::memory: or postgres://user:pass@host:port/db[?tlsmode=disable|prefer|require]"

    /// Parses a database URL; `nil` when it is not one of the accepted forms.
    public static func parse(_ text: String) -> DatabaseURL? {
        if text == "sqlite::memory:" { return .sqliteMemory }
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            // `sqlite:///abs/path` and `sqlite://rel` are common spellings of the same thing.
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty, !path.contains("\0") else { return nil }
            return .sqliteFile(path: path)
        }
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
              let components = URLComponents(string: text),
              let host = components.host, !host.isEmpty
        else { return nil }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { return nil }
        let username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        guard !username.isEmpty else { return nil }
        let password = components.password.flatMap { $0.removingPercentEncoding }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        database = database.removingPercentEncoding ?? database
        if database.isEmpty { database = username }
        guard !database.contains("/") else { return nil }
        var tlsMode: TLSMode = Self.isLoopback(host) ? .disable : .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "tlsmode", "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) else { return nil }
                tlsMode = mode
            default:
                return nil
            }
        }
        return .postgres(PostgresLocation(
            host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
            port: port, username: username, password: password, database: database, tlsMode: tlsMode))
    }

    /// The URL with any password hidden: safe for logs, errors and `/health`.
    public var description: String {
        switch self {
        case .sqliteFile(let path): return "sqlite:\(path)"
        case .sqliteMemory: return "sqlite::memory:"
        case .postgres(let location): return location.redacted
        }
    }

    /// The URL as given, password included: for handing to a child process or a setting, never for logs.
    public var unredactedText: String {
        switch self {
        case .sqliteFile, .sqliteMemory: return description
        case .postgres(let location): return location.unredacted
        }
    }

    /// `sqlite` or `postgres`.
    public var dialectName: String {
        switch self {
        case .sqliteFile, .sqliteMemory: return "sqlite"
        case .postgres: return "postgres"
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }
}
