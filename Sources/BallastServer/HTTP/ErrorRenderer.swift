import BallastCore
import BallastWire
import ChaosKit
import Commerce
import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Storage

/// Turns any error into the API's error response `{"error":{"code","message","details"}}`. Known errors keep
/// their code; an unknown one is a 500 `internal`, logged with the request id and counted, because it is a bug.
struct ErrorRenderer: Sendable {
    let metrics: any MetricsFactory

    /// Calls the rest of the chain and turns whatever it throws into the error response, so the middleware
    /// calling this always has a response to log, count or tag.
    func respond<Context: BallastRequestContext>(
        to request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async -> Response {
        do {
            return try await next(request, context)
        } catch {
            return response(for: error, request: request, context: context)
        }
    }

    func response(for error: any Error, request: Request, context: some BallastRequestContext) -> Response {
        let appError = classify(error, request: request, context: context)
        var headers: HTTPFields = [:]
        if let retryAfter = appError.retryAfterSeconds {
            headers[.retryAfter] = String(retryAfter)
        }
        if appError.code == .methodNotAllowed, case .array(let methods)? = appError.details["allowed"] {
            headers[.allow] = methods.compactMap { if case .string(let method) = $0 { return method } else { return nil } }
                .joined(separator: ", ")
        }
        let body = ErrorBody(error: .init(code: appError.code.rawValue, message: appError.message, details: appError.details))
        do {
            return try JSONResponse.make(appError.code.httpStatus, body, headers: headers)
        } catch {
            // Encoding a dictionary of JSON values cannot fail; keep a fixed body just in case.
            return Response(
                status: .internalServerError, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"internal","message":"internal error","details":{}}}"#)))
        }
    }

    /// The API error an error becomes: known errors keep their code, the rest are 500s.
    func classify(_ error: any Error, request: Request, context: some BallastRequestContext) -> AppError {
        switch error {
        case let error as AppError:
            return error
        case let fault as InjectedFault:
            // A read fault the experiment asked for (scope `reads`): the caller retries.
            return AppError(.faultInjected, "\(fault.description); this is an injected read fault, retry",
                            details: ["point": .string(fault.point)], retryAfterSeconds: 1)
        case is CancellationError:
            // The request's task was cancelled (the server is stopping): the work stopped before it finished, and
            // whatever it wrote was rolled back or, for a statement already sent, is as unknown as after a timeout.
            // Not a bug: a 503 the caller retries, with its idempotency key when it has one.
            context.logger.warning("request cancelled before it finished")
            return AppError(.serviceUnavailable, "the server stopped this request before it finished; try again",
                            retryAfterSeconds: 1)
        case is NIOTooManyBytesError:
            return AppError(.payloadTooLarge, "request body is larger than \(BodyLimitMiddleware<AppRequestContext>.maxBytes) bytes")
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                return AppError(.notFound, "no route for \(request.method) \(request.uri.path)")
            case .methodNotAllowed:
                return AppError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path)")
            case .contentTooLarge:
                return AppError(.payloadTooLarge, "request body is too large")
            case .badRequest:
                return AppError(.badRequest, error.body ?? "bad request")
            default:
                if error.status.code < 500 {
                    return AppError(.badRequest, error.body ?? error.status.reasonPhrase)
                }
                return unexpected(error, request: request, context: context)
            }
        case let error as StorageError:
            switch error {
            case .poolTimeout, .poolQueueFull, .unavailable, .retriesExhausted:
                context.logger.warning("storage unavailable", metadata: ["error": "\(error)"])
                return AppError(.serviceUnavailable, "the database is busy or unavailable; try again", retryAfterSeconds: 1)
            case .uniqueViolation, .checkViolation:
                // A constraint the request's checks did not foresee (a race the service does not name, or a
                // limit the edge missed): never a 500, but logged and counted, because each one is a gap to close.
                let unique: Bool
                if case .uniqueViolation = error { unique = true } else { unique = false }
                context.logger.error("constraint refused a write", metadata: [
                    "error": "\(error)", "route": "\(context.endpointPath ?? request.uri.path)",
                ])
                Counter(label: "constraint_violations_total",
                        dimensions: [("route", context.endpointPath ?? "unmatched"), ("constraint", unique ? "unique" : "check")],
                        factory: metrics).increment()
                return unique
                    ? AppError(.conflict, "the change conflicts with another one made at the same time; read the resource and try again")
                    : AppError(.validationFailed, "the change would break a limit of the stored data")
            case .missingReturnedRow:
                return unexpected(error, request: request, context: context)
            }
        default:
            return unexpected(error, request: request, context: context)
        }
    }

    private func unexpected(_ error: any Error, request: Request, context: some BallastRequestContext) -> AppError {
        context.logger.error("unexpected error", metadata: [
            "error": "\(String(reflecting: error))", "method": "\(request.method)",
            "route": "\(context.endpointPath ?? request.uri.path)",
        ])
        Counter(label: "http_internal_errors_total",
                dimensions: [("route", context.endpointPath ?? "unmatched")], factory: metrics).increment()
        return AppError(.internal, "internal error; quote request id \(context.requestId) when reporting it")
    }
}
