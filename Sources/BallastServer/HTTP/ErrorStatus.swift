import DomainValues
import HTTPTypes
import Hummingbird
import NIOCore
import Commerce

extension ErrorCode {
    /// The one place an error code becomes an HTTP status.
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .malformedJSON, .badRequest: return .badRequest
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .methodNotAllowed: return .methodNotAllowed
        case .conflict, .insufficientFunds, .insufficientStock, .confirmationRequired, .blocked, .invalidTransition,
             .idempotencyKeyInUse, .forbiddenInProduction, .jobRunning:
            return .conflict
        case .payloadTooLarge: return .contentTooLarge
        case .validationFailed, .idempotencyKeyReused: return .unprocessableContent
        case .serviceUnavailable, .shippingUnavailable, .faultInjected: return .serviceUnavailable
        case .internal: return .internalServerError
        }
    }
}
