import BallastWire
import Commerce
import DomainValues
import Hummingbird

/// A request's query parameters, read by their ``Field`` (the same value the OpenAPI document lists): a value
/// outside the field's limits is a 422 naming it, and an empty value (`?status=`) is refused like any other bad
/// value rather than read as "absent". Parameters no field names are ignored.
struct QueryInput {
    let parameters: [String: String]

    init(_ request: Request) {
        var parameters: [String: String] = [:]
        for (name, value) in request.uri.queryParameters where parameters[String(name)] == nil {
            parameters[String(name)] = String(value)
        }
        self.parameters = parameters
    }

    private func raw(_ field: Field) -> String? { parameters[field.name] }

    private func refuse(_ field: Field, _ message: String) -> AppError {
        AppError.invalidField(field.name, "\(field.name) \(message)")
    }

    func text(_ field: Field) throws -> String? {
        guard let text = raw(field) else { return nil }
        switch field.kind {
        case .text(let rule): return try rule.check(text, field: field.name)
        case .choice, .uuid: try Field.validateQuery(text, field)
        default: preconditionFailure("\(field.name) is not a text parameter")
        }
        return text
    }

    /// An integer written as digits (an optional `-`, no `+`, no spaces), within the field's range.
    func integer(_ field: Field) throws -> Int64? {
        guard case .integer(let range) = field.kind else { preconditionFailure("\(field.name) is not an integer parameter") }
        guard let text = raw(field) else { return nil }
        let digits = text.hasPrefix("-") ? text.utf8.dropFirst() : text.utf8[...]
        guard !digits.isEmpty, digits.count <= 19, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(text) else {
            throw refuse(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw refuse(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// `true` or `false`.
    func bool(_ field: Field) throws -> Bool? {
        guard case .boolean = field.kind else { preconditionFailure("\(field.name) is not a boolean parameter") }
        guard let text = raw(field) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw refuse(field, "must be true or false")
        }
    }

    func choice<T: RawRepresentable>(_ field: Field, as type: T.Type) throws -> T? where T.RawValue == String {
        guard let text = try text(field) else { return nil }
        guard let value = T(rawValue: text) else { preconditionFailure("\(field.name) lists a value \(T.self) lacks: \(text)") }
        return value
    }

    /// An RFC 3339 time, as microseconds since the epoch.
    func micros(_ field: Field) throws -> Int64? {
        guard case .dateTime = field.kind else { preconditionFailure("\(field.name) is not a time parameter") }
        guard let text = raw(field) else { return nil }
        guard let micros = RFC3339Time.micros(text) else {
            throw refuse(field, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
        }
        return micros
    }
}

/// `?limit=` (1–200, default 50) and `?cursor=` of every list endpoint. Lists answer
/// `{"items": [...], "nextCursor": "..." | null}`.
struct ListQuery {
    static let defaultLimit = 50
    static let maxLimit = 200

    static let limit = Field.optional("limit", .integer(1...Int64(maxLimit)), summary: "page size; 50 when absent")
    /// The cursor of lists ordered by a sequence number (evidence, a wallet's ledger).
    static let sequenceCursor = Field.optional("cursor", .text(TextFormat.sequenceCursor.rule(maxScalars: 18)))
    /// The cursor of lists ordered by a time and an id (products, listings, notifications, discrepancies).
    static let timeCursor = Field.optional("cursor", .text(TextFormat.timeCursor.rule(maxScalars: 55)))

    let limit: Int
    private let cursor: String?

    /// Reads `limit` and the list's `cursor` parameter (one of the two cursor fields above).
    init(_ query: QueryInput, cursor: Field) throws {
        limit = Int(try query.integer(Self.limit) ?? Int64(Self.defaultLimit))
        self.cursor = try query.text(cursor)
    }

    init(_ request: Request, cursor: Field) throws {
        try self.init(QueryInput(request), cursor: cursor)
    }

    /// The sequence cursor as a number (0 when absent).
    func sequenceCursor() -> Int64? {
        cursor.flatMap { Int64($0) }
    }

    /// The cursor of a list in creation order (products, listings).
    func creationCursor<Tag>() -> CreationCursor<Tag>? {
        cursor.flatMap { CreationCursor<Tag>($0) }
    }

    /// A `MICROS_ID` cursor (lists ordered newest first by a time and an id), the id in canonical lower case.
    func timeAndIdCursor() -> (micros: Int64, id: String)? {
        guard let cursor else { return nil }
        let parts = cursor.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]) else { return nil }
        return (micros, parts[1].lowercased())
    }
}
