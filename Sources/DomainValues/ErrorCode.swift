/// Stable, snake_case error codes: what clients and scripts branch on. Each maps to one HTTP status in
/// `BallastServer` (the only place that knows HTTP). Never rename one; add new ones.
public enum ErrorCode: String, Sendable, CaseIterable {
    // 400
    case malformedJSON = "malformed_json"
    case badRequest = "bad_request"
    // 401 / 403 / 404 / 405
    case unauthorized
    case forbidden
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    // 409
    case conflict
    case insufficientFunds = "insufficient_funds"
    case insufficientStock = "insufficient_stock"
    case confirmationRequired = "confirmation_required"
    case blocked
    case invalidTransition = "invalid_transition"
    case idempotencyKeyInUse = "idempotency_key_in_use"
    case forbiddenInProduction = "forbidden_in_production"
    case jobRunning = "job_running"
    // 413
    case payloadTooLarge = "payload_too_large"
    // 422
    case validationFailed = "validation_failed"
    case idempotencyKeyReused = "idempotency_key_reused"
    // 503
    case serviceUnavailable = "service_unavailable"
    case shippingUnavailable = "shipping_unavailable"
    /// A read fault injected on purpose (chaos scope `reads`): expected, not counted by the steady-state guard.
    case faultInjected = "fault_injected"
    // 500: always a bug
    case `internal`
}
