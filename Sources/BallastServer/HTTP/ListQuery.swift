import Foundation
import Hummingbird
import Marketplace

/// `?limit=` (1–200, default 50) and `?cursor=` of every list endpoint. Lists answer
/// `{"items": [...], "nextCursor": "..." | null}`.
struct ListQuery {
    static let defaultLimit = 50
    static let maxLimit = 200

    let limit: Int
    let cursor: String?

    init(_ request: Request) throws {
        let query = request.uri.queryParameters
        if let text = query["limit"].map(String.init) {
            guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
                throw AppError(.validationFailed, "limit must be an integer from 1 to \(Self.maxLimit)",
                               details: ["field": .string("limit")])
            }
            limit = value
        } else {
            limit = Self.defaultLimit
        }
        cursor = query["cursor"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The cursor as a positive sequence number (the form evidence uses).
    func sequenceCursor() throws -> Int64 {
        guard let cursor else { return 0 }
        guard let value = Int64(cursor), value > 0 else {
            throw AppError(.validationFailed, "cursor is not one this list returned", details: ["field": .string("cursor")])
        }
        return value
    }

    /// The cursor of a list in creation order (products, listings).
    func creationCursor<Tag>() throws -> CreationCursor<Tag>? {
        guard let cursor else { return nil }
        guard let parsed = CreationCursor<Tag>(cursor) else {
            throw AppError.invalidField("cursor", "cursor is not one this list returned")
        }
        return parsed
    }

    /// A `MICROS_ID` cursor (lists ordered newest first by a time and an id).
    func timeAndIdCursor() throws -> (micros: Int64, id: String)? {
        guard let cursor else { return nil }
        let parts = cursor.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]) else {
            throw AppError.invalidField("cursor", "cursor is not one this list returned")
        }
        return (micros, String(parts[1]))
    }

    /// `?name=` as one of an enumeration's values (`nil` when absent); anything else is a 422 listing them.
    static func choice<T: RawRepresentable & CaseIterable>(_ request: Request, _ name: String, as type: T.Type) throws -> T?
    where T.RawValue == String {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init), !text.isEmpty else { return nil }
        guard let value = T(rawValue: text) else {
            throw AppError.invalidField(name, "\(name) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    /// An RFC 3339 time parameter (`since`), as microseconds since the epoch.
    static func timeParameter(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init), !text.isEmpty else { return nil }
        let strategies: [Date.ISO8601FormatStyle] = [
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted),
            .iso8601,
        ]
        for strategy in strategies {
            if let date = try? Date(text, strategy: strategy) {
                return Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
            }
        }
        throw AppError(.validationFailed, "\(name) must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
                       details: ["field": .string(name)])
    }
}

/// A page of a list.
struct Page<Item: Encodable>: Encodable {
    let items: [Item]
    @Null var nextCursor: String?

}
