/// A decoded JSON request body, read field by field into typed values. Every failure is an ``AppError`` with
/// code `validation_failed` naming the field, so bad input is refused before any service runs.
public struct InputObject: Sendable {
    public let fields: [String: JSONValue]

    public init(fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// The body must be a JSON object.
    public init(_ value: JSONValue) throws {
        guard case .object(let fields) = value else {
            throw AppError(.validationFailed, "the request body must be a JSON object, got \(value.typeName)")
        }
        self.fields = fields
    }

    /// A string field, trimmed of surrounding white space; required unless `optional` is used.
    public func string(_ name: String, maxLength: Int, minLength: Int = 1) throws -> String {
        guard let value = try optionalString(name, maxLength: maxLength, minLength: minLength) else {
            throw AppError.invalidField(name, "\(name) is required")
        }
        return value
    }

    public func optionalString(_ name: String, maxLength: Int, minLength: Int = 1) throws -> String? {
        guard let raw = fields[name], raw != .null else { return nil }
        guard case .string(let text) = raw else {
            throw AppError.invalidField(name, "\(name) must be a string, got \(raw.typeName)")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= minLength else {
            throw AppError.invalidField(name, "\(name) must have at least \(minLength) character(s)")
        }
        guard trimmed.count <= maxLength else {
            throw AppError.invalidField(name, "\(name) must have at most \(maxLength) characters")
        }
        return trimmed
    }

    /// A field whose value must be one of an enumeration's raw values.
    public func choice<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws -> T
    where T.RawValue == String {
        let text = try string(name, maxLength: 64)
        guard let value = T(rawValue: text) else {
            let options = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw AppError.invalidField(name, "\(name) must be one of \(options)")
        }
        return value
    }

    /// Whether the field is present at all (even as `null`): tells "leave unchanged" from "clear".
    public func contains(_ name: String) -> Bool { fields[name] != nil }

    public func optionalBool(_ name: String) throws -> Bool? {
        guard let raw = fields[name], raw != .null else { return nil }
        guard case .bool(let value) = raw else {
            throw AppError.invalidField(name, "\(name) must be true or false, got \(raw.typeName)")
        }
        return value
    }

    /// A number (integer or fraction) within `range`.
    public func optionalNumber(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let raw = fields[name], raw != .null else { return nil }
        let value: Double
        switch raw {
        case .integer(let integer): value = Double(integer)
        case .number(let number): value = number
        default: throw AppError.invalidField(name, "\(name) must be a number, got \(raw.typeName)")
        }
        guard value.isFinite, range.contains(value) else {
            throw AppError.invalidField(name, "\(name) must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    public func optionalInteger(_ name: String, in range: ClosedRange<Int64>) throws -> Int64? {
        guard let raw = fields[name], raw != .null else { return nil }
        return try integer(name, in: range)
    }

    public func optionalChoice<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws -> T?
    where T.RawValue == String {
        guard let raw = fields[name], raw != .null else { return nil }
        return try choice(name, as: type)
    }

    /// An integer field within `range`; fractions, strings, booleans and out-of-range numbers are refused.
    public func integer(_ name: String, in range: ClosedRange<Int64>) throws -> Int64 {
        guard let raw = fields[name], raw != .null else {
            throw AppError.invalidField(name, "\(name) is required")
        }
        guard case .integer(let value) = raw else {
            let got = raw.typeName == "number" ? "a non-integer number" : raw.typeName
            throw AppError.invalidField(name, "\(name) must be an integer, got \(got)")
        }
        guard range.contains(value) else {
            throw AppError.invalidField(name, "\(name) must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

import Foundation
