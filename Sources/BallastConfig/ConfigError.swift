/// A start-up configuration problem, printed as one line that names the variable and what it accepts.
public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The variable at fault, e.g. `PORT`.
    public let variable: String
    /// The line to print; it names the variable, the value seen and what would be accepted.
    public let message: String

    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }

    /// A value that does not parse.
    static func invalid(_ variable: String, value: String, accepts: String) -> ConfigError {
        let shown = variable.contains("TOKEN") ? "<hidden>" : "\"\(printable(value))\""
        return ConfigError(variable: variable, message: "invalid \(variable)=\(shown): expected \(accepts)")
    }

    public var description: String { message }

    /// The value as it can be shown on one line: control characters escaped, at most 80 characters.
    static func printable(_ value: String) -> String {
        var shown = ""
        for scalar in value.unicodeScalars {
            if scalar.properties.generalCategory == .control {
                shown += scalar == "\n" ? "\\n" : String(format: "\\u{%X}", scalar.value)
            } else {
                shown.unicodeScalars.append(scalar)
            }
        }
        return shown.count > 80 ? String(shown.prefix(77)) + "..." : shown
    }
}

import Foundation

/// SPEC I8: fault injection and production never meet. Printed verbatim (two lines) to stderr before exiting.
public struct ProductionChaosForbidden: Error, Equatable, CustomStringConvertible, Sendable {
    public static let fatalLine = "FATAL: CHAOS_ENABLED=true is forbidden in production."
    public static let explanation =
        "Fault injection may only run with APP_ENV=development, test or staging; unset CHAOS_ENABLED or set it to false."

    public init() {}

    public var description: String { "\(Self.fatalLine)\n\(Self.explanation)" }
}
