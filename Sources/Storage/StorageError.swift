import PostgresNIO
import SQLiteNIO

/// Storage failures that callers act on, classified from the two drivers' errors in one place.
public enum StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No connection became free in time (every connection busy).
    case poolTimeout(waitedMilliseconds: Int)
    /// So many callers already wait for a connection that one more is refused at once.
    case poolQueueFull
    /// The database could not be reached or the connection broke.
    case unavailable(String)
    /// A transaction kept hitting serialization failures or deadlocks (five attempts), or another process kept an
    /// SQLite file's write lock for the pool's wait, and gave up.
    case retriesExhausted(attempts: Int)
    /// A unique constraint refused the write.
    case uniqueViolation(String)
    /// A CHECK constraint refused the write (the backstop behind conditional updates).
    case checkViolation(String)
    /// A statement expected to return a row (e.g. `RETURNING`) returned none.
    case missingReturnedRow(String)

    public var description: String {
        switch self {
        case .poolTimeout(let waited): return "no database connection became free within \(waited) ms"
        case .poolQueueFull: return "too many callers already wait for a database connection"
        case .unavailable(let detail): return "database unavailable: \(detail)"
        case .retriesExhausted(let attempts): return "transaction failed after \(attempts) attempts (contention)"
        case .uniqueViolation(let detail): return "unique constraint violated: \(detail)"
        case .checkViolation(let detail): return "check constraint violated: \(detail)"
        case .missingReturnedRow(let what): return "expected a returned row: \(what)"
        }
    }
}

/// What a driver error means for the transaction helper and for callers.
enum ErrorClass {
    /// Serialization failure, deadlock or a busy SQLite file: run the transaction again.
    case retryable
    /// The connection is broken or the server is gone.
    case unavailable
    case uniqueViolation
    case checkViolation
    case other
}

extension StorageError {
    /// Whether `error` is the server refusing a statement outright (a constraint, a bad value, any error the server
    /// itself answered, other than a serialization failure or deadlock left after the retries): a lone statement so
    /// refused changed nothing. `false` for everything whose outcome is not known (a connection lost, a timeout, no
    /// answer to the confirmation after a statement ran).
    public static func isRefusedByTheServer(_ error: any Error) -> Bool {
        switch error {
        case StorageError.uniqueViolation, StorageError.checkViolation: return true
        case let error as PSQLError: return error.serverInfo?[.sqlState] != nil
        default: return false
        }
    }
}

enum ErrorClassifier {
    /// A prepared statement the server will not run on this connection again: "cached plan must not change result
    /// type" (0A000, its result changed under it) or "prepared statement does not exist" (26000).
    static func isUnusablePreparedStatement(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "0A000" || state == "26000"
    }

    /// Another connection (another process) holds a lock this statement needed: SQLite's "busy" codes.
    static func isBusy(_ error: SQLiteError) -> Bool {
        switch error.reason {
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot: return true
        default: return false
        }
    }

    static func classify(_ error: any Error) -> ErrorClass {
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] {
                switch state {
                case "40001", "40P01": return .retryable
                case "23505": return .uniqueViolation
                case "23514": return .checkViolation
                // Shut down or starting up, the connection gone, a lock held past `lock_timeout` (a paused or stuck
                // holder), a session ended for idling in its transaction, a statement cancelled: all "try again shortly".
                case "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004", "55P03", "25P03", "57014": return .unavailable
                default: return .other
                }
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
                return .unavailable
            default:
                return .other
            }
        }
        if let error = error as? SQLiteError {
            if isBusy(error) { return .retryable }
            switch error.reason {
            case .locked:
                return .retryable
            case .constraintUniqueFailed, .constraintPrimaryKeyFailed:
                return .uniqueViolation
            case .constraintCheckFailed:
                return .checkViolation
            case .cantOpen, .ioError, .notADatabase, .corrupt, .full:
                return .unavailable
            default:
                return .other
            }
        }
        if let error = error as? StorageError {
            switch error {
            case .poolTimeout, .poolQueueFull: return .unavailable
            default: return .other
            }
        }
        return .other
    }

    /// A driver error as text for logs: PostgreSQL errors print their server fields (state, message), which
    /// their plain description hides.
    static func describe(_ error: any Error) -> String {
        if error is PSQLError { return String(reflecting: error) }
        return String(describing: error)
    }

    /// Turns a driver error into a ``StorageError`` where one fits, else returns it unchanged.
    static func translate(_ error: any Error) -> any Error {
        if error is StorageError { return error }
        switch classify(error) {
        case .uniqueViolation: return StorageError.uniqueViolation(describe(error))
        case .checkViolation: return StorageError.checkViolation(describe(error))
        case .unavailable: return StorageError.unavailable(describe(error))
        case .retryable, .other: return error
        }
    }
}
