import Foundation

/// Reads one variable at a time and turns it into a typed value, or a ``ConfigError`` naming the variable and
/// what it accepts. An empty value counts as unset.
struct ConfigReader {
    let values: [String: String]

    private func raw(_ name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    func choice<T: RawRepresentable & CaseIterable>(_ name: String, default fallback: T) throws -> T
    where T.RawValue == String {
        guard let value = raw(name) else { return fallback }
        guard let parsed = T(rawValue: value) else {
            let options = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError.invalid(name, value: value, accepts: "one of \(options)")
        }
        return parsed
    }

    func integer(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        try optionalInteger(name, in: range) ?? fallback
    }

    func optionalInteger(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = raw(name) else { return nil }
        guard value.allSatisfy({ $0.isASCII && $0.isNumber }), let parsed = Int(value), range.contains(parsed) else {
            throw ConfigError.invalid(
                name, value: value, accepts: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return parsed
    }

    /// A probability written as a decimal number from 0 to 1 (`0`, `0.25`, `1.0`).
    func fraction(_ name: String, default fallback: Double) throws -> Double {
        guard let value = raw(name) else { return fallback }
        let looksDecimal = value.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
            && value.filter({ $0 == "." }).count <= 1 && value.first != "." && value.last != "."
        guard looksDecimal, let parsed = Double(value), parsed >= 0, parsed <= 1 else {
            throw ConfigError.invalid(name, value: value, accepts: "a decimal number from 0.0 to 1.0")
        }
        return parsed
    }

    func boolean(_ name: String, default fallback: Bool) throws -> Bool {
        guard let value = raw(name) else { return fallback }
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigError.invalid(name, value: value, accepts: "true or false")
        }
    }

    func text(_ name: String, maxLength: Int) throws -> String? {
        guard let value = raw(name) else { return nil }
        // The API's text policy: Unicode scalars counted, no control characters.
        let scalars = value.unicodeScalars
        guard scalars.count <= maxLength, !scalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ConfigError.invalid(name, value: value, accepts: "at most \(maxLength) printable characters")
        }
        return value
    }

    func host(_ name: String, default fallback: String) throws -> String {
        guard let value = raw(name) else { return fallback }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: ".-:[]_"))
        guard value.count <= 253, value.unicodeScalars.allSatisfy({ allowed.contains($0) && $0.isASCII }) else {
            throw ConfigError.invalid(name, value: value, accepts: "a host name or IP address, e.g. 127.0.0.1 or 0.0.0.0")
        }
        return value
    }

    func databaseURL(_ name: String, default fallback: DatabaseURL) throws -> DatabaseURL {
        guard let value = raw(name) else { return fallback }
        guard let parsed = DatabaseURL.parse(value) else {
            throw ConfigError.invalid(name, value: Self.hidePassword(value), accepts: DatabaseURL.acceptedForms)
        }
        return parsed
    }

    func optionalDatabaseURL(_ name: String, default fallback: DatabaseURL) throws -> DatabaseURL? {
        guard let value = raw(name) else { return fallback }
        if value == "none" { return nil }
        guard let parsed = DatabaseURL.parse(value) else {
            throw ConfigError.invalid(
                name, value: Self.hidePassword(value), accepts: "none, " + DatabaseURL.acceptedForms)
        }
        return parsed
    }

    func adminToken(_ name: String) throws -> String? {
        guard let value = raw(name) else { return nil }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.~+/="))
        guard value.count >= 32, value.count <= 512,
              value.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) })
        else {
            throw ConfigError.invalid(
                name, value: value,
                accepts: "a token of 32 to 512 characters from A-Z a-z 0-9 - _ . ~ + / =")
        }
        return value
    }

    func httpURL(_ name: String) throws -> URL? {
        guard let value = raw(name) else { return nil }
        guard let components = URLComponents(string: value),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty,
              let url = components.url
        else {
            throw ConfigError.invalid(name, value: Self.hidePassword(value), accepts: "an http:// or https:// URL with a host")
        }
        return url
    }

    /// Replaces `user:password@` with `user:***@` so a bad URL can be echoed without leaking a secret.
    static func hidePassword(_ value: String) -> String {
        guard let schemeEnd = value.range(of: "://"),
              let at = value.range(of: "@", range: schemeEnd.upperBound..<value.endIndex)
        else { return value }
        let userInfo = value[schemeEnd.upperBound..<at.lowerBound]
        guard let colon = userInfo.firstIndex(of: ":") else { return value }
        return String(value[..<colon]) + ":***" + String(value[at.lowerBound...])
    }
}
