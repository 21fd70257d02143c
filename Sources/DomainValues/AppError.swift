import BallastCore
/// The one error type that crosses from services to routes: a stable ``ErrorCode``, a message for people, and
/// optional structured details (`{"field": "amount"}`, an impact preview…). Never carries personal data.
public struct AppError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String
    public let details: [String: JSONValue]
    /// For 503s: how many seconds a client should wait before trying again.
    public let retryAfterSeconds: Int?

    public init(_ code: ErrorCode, _ message: String, details: [String: JSONValue] = [:], retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.details = details
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// A field of the input is missing or wrong; `details.field` names it.
    public static func invalidField(_ field: String, _ message: String) -> AppError {
        AppError(.validationFailed, message, details: ["field": .string(field)])
    }

    public static func notFound(_ what: String) -> AppError {
        AppError(.notFound, "\(what) not found")
    }

    public static let unauthorized = AppError(.unauthorized, "missing or invalid bearer token")

    public static func forbidden(_ message: String = "this action needs the admin role") -> AppError {
        AppError(.forbidden, message)
    }
}
