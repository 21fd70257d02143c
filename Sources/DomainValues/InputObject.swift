import BallastCore
/// A JSON object from a request body, read field by field into typed values. Each accessor takes the ``Field``
/// that describes it (the same value the OpenAPI document is written from) and refuses anything outside its
/// limits with a 422 `validation_failed` naming the field, so bad input is refused before any service runs.
/// A whole body is first checked against its ``ObjectShape`` (``ObjectShape/validate(_:path:)``).
public struct InputObject: Sendable {
    public let fields: [String: JSONValue]
    /// Where this object sits in the body (`destination`, `items[3]`), for the names in errors; nil at the top.
    public let path: String?

    public init(fields: [String: JSONValue], path: String? = nil) {
        self.fields = fields
        self.path = path
    }

    /// The body, which must be a JSON object (its fields unchecked: prefer ``ObjectShape/validate(_:path:)``).
    public init(_ value: JSONValue) throws {
        guard case .object(let fields) = value else {
            throw AppError(.validationFailed, "the request body must be a JSON object, got \(value.typeName)")
        }
        self.init(fields: fields)
    }

    /// The name of `field` in errors.
    func name(_ field: Field) -> String { path.map { "\($0).\(field.name)" } ?? field.name }

    /// The field's value, nil when absent or `null`; a required field that is missing is a 422.
    private func value(_ field: Field) throws -> JSONValue? {
        guard let raw = fields[field.name], raw != .null else {
            if field.required { throw AppError.invalidField(name(field), "\(name(field)) is required") }
            return nil
        }
        return raw
    }

    /// Whether the field is present at all (even as `null`): tells "leave unchanged" from "clear".
    public func contains(_ field: Field) -> Bool { fields[field.name] != nil }

    public func text(_ field: Field) throws -> String {
        guard let text = try optionalText(field) else { throw AppError.invalidField(name(field), "\(name(field)) is required") }
        return text
    }

    public func optionalText(_ field: Field) throws -> String? {
        guard let raw = try value(field) else { return nil }
        let path = name(field)
        let text = try Field.string(raw, path)
        switch field.kind {
        case .text(let rule): return try rule.check(text, field: path)
        case .choice, .uuid, .dateTime:
            try Field.validate(raw, field.kind, path: path)
            return text
        default: preconditionFailure("\(field.name) is not a text field")
        }
    }

    public func integer(_ field: Field) throws -> Int64 {
        guard let value = try optionalInteger(field) else { throw AppError.invalidField(name(field), "\(name(field)) is required") }
        return value
    }

    public func optionalInteger(_ field: Field) throws -> Int64? {
        guard case .integer(let range) = field.kind else { preconditionFailure("\(field.name) is not an integer field") }
        guard let raw = try value(field) else { return nil }
        return try Field.integer(raw, range, name(field))
    }

    public func optionalNumber(_ field: Field) throws -> Double? {
        guard case .number(let range) = field.kind else { preconditionFailure("\(field.name) is not a number field") }
        guard let raw = try value(field) else { return nil }
        return try Field.number(raw, range, name(field))
    }

    public func optionalBool(_ field: Field) throws -> Bool? {
        guard case .boolean = field.kind else { preconditionFailure("\(field.name) is not a boolean field") }
        guard let raw = try value(field) else { return nil }
        guard case .bool(let flag) = raw else {
            throw AppError.invalidField(name(field), "\(name(field)) must be true or false, got \(raw.typeName)")
        }
        return flag
    }

    /// A UUID field as the id type it names.
    public func id<Tag>(_ field: Field, as type: TypedID<Tag>.Type = TypedID<Tag>.self) throws -> TypedID<Tag> {
        guard case .uuid = field.kind else { preconditionFailure("\(field.name) is not a UUID field") }
        let text = try Field.uuidText(try value(field) ?? .null, name(field))
        return TypedID<Tag>(text)!
    }

    /// A field whose value is one of an enumeration's raw values.
    public func choice<T: RawRepresentable>(_ field: Field, as type: T.Type) throws -> T? where T.RawValue == String {
        guard case .choice = field.kind, let text = try optionalText(field) else { return nil }
        guard let value = T(rawValue: text) else { preconditionFailure("\(field.name) lists a value \(T.self) lacks: \(text)") }
        return value
    }

    /// A nested object field, checked against its shape.
    public func object(_ field: Field) throws -> InputObject? {
        guard case .object(let shape) = field.kind else { preconditionFailure("\(field.name) is not an object field") }
        guard let raw = try value(field) else { return nil }
        return try shape.validate(raw, path: name(field))
    }

    /// An array field, checked; its elements as they were sent, with the path of each for errors.
    public func array(_ field: Field) throws -> [(value: JSONValue, path: String)] {
        guard case .array = field.kind else { preconditionFailure("\(field.name) is not an array field") }
        guard let raw = try value(field) else { return [] }
        try field.validate(raw, path: name(field))
        guard case .array(let values) = raw else { return [] }
        return values.enumerated().map { ($0.element, "\(name(field))[\($0.offset)]") }
    }
}
