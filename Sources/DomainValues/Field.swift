import BallastCore
/// One field of a JSON request body or one query parameter: its name, its JSON type and every limit the server
/// enforces. The same value validates the input (``InputObject``) and is written into the OpenAPI document, so the
/// document cannot promise what the server refuses, or the other way round.
public struct Field: Sendable {
    public indirect enum Kind: Sendable {
        case text(TextRule)
        case integer(ClosedRange<Int64>)
        case number(ClosedRange<Double>)
        case boolean
        /// A UUID in its 36-character text form.
        case uuid
        /// One of these strings.
        case choice([String])
        case object(ObjectShape)
        /// An array of `count` elements of one kind; with `distinct`, no two elements may be equal.
        case array(Kind, count: ClosedRange<Int>, distinct: Bool)
        /// An RFC 3339 time (query parameters only).
        case dateTime
    }

    public let name: String
    public let kind: Kind
    public let required: Bool
    /// Whether `null` is accepted (as "absent", or where the field says so, as "clear").
    public let nullable: Bool
    public let summary: String?

    public init(_ name: String, _ kind: Kind, required: Bool = false, nullable: Bool = false, summary: String? = nil) {
        self.name = name
        self.kind = kind
        self.required = required
        self.nullable = nullable
        self.summary = summary
    }

    public static func required(_ name: String, _ kind: Kind, summary: String? = nil) -> Field {
        Field(name, kind, required: true, summary: summary)
    }

    /// An optional field; `null` counts as absent.
    public static func optional(_ name: String, _ kind: Kind, summary: String? = nil) -> Field {
        Field(name, kind, required: false, nullable: true, summary: summary)
    }

    /// `choice` over an enumeration's raw values.
    public static func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type) -> Kind where T.RawValue == String {
        .choice(T.allCases.map(\.rawValue))
    }

    /// Checks `value` against this field's kind; `path` names it in errors (`items[2].quantity`).
    func validate(_ value: JSONValue, path: String) throws {
        try Self.validate(value, kind, path: path)
    }

    static func validate(_ value: JSONValue, _ kind: Kind, path: String) throws {
        switch kind {
        case .text(let rule):
            _ = try rule.check(try string(value, path), field: path)
        case .integer(let range):
            _ = try integer(value, range, path)
        case .number(let range):
            _ = try number(value, range, path)
        case .boolean:
            guard case .bool = value else { throw AppError.invalidField(path, "\(path) must be true or false, got \(value.typeName)") }
        case .uuid:
            _ = try uuidText(value, path)
        case .choice(let options):
            let text = try string(value, path)
            guard options.contains(text) else {
                throw AppError.invalidField(path, "\(path) must be one of \(options.joined(separator: ", "))")
            }
        case .object(let shape):
            _ = try shape.validate(value, path: path)
        case .array(let element, let count, let distinct):
            guard case .array(let values) = value else {
                throw AppError.invalidField(path, "\(path) must be an array, got \(value.typeName)")
            }
            guard count.contains(values.count) else {
                throw AppError.invalidField(
                    path, "\(path) must hold \(count.lowerBound) to \(count.upperBound) elements, got \(values.count)")
            }
            for (index, element_) in values.enumerated() {
                try validate(element_, element, path: "\(path)[\(index)]")
            }
            if distinct {
                // Equal as JSON, as `uniqueItems` says (two spellings of one UUID are for the reader to merge).
                var seen: [JSONValue] = []
                for (index, element_) in values.enumerated() {
                    guard !seen.contains(element_) else {
                        throw AppError.invalidField("\(path)[\(index)]", "\(path)[\(index)] repeats an earlier element")
                    }
                    seen.append(element_)
                }
            }
        case .dateTime:
            let text = try string(value, path)
            guard RFC3339Time.micros(text) != nil else {
                throw AppError.invalidField(path, "\(path) must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
            }
        }
    }

    static func string(_ value: JSONValue, _ path: String) throws -> String {
        guard case .string(let text) = value else {
            throw AppError.invalidField(path, "\(path) must be a string, got \(value.typeName)")
        }
        return text
    }

    static func integer(_ value: JSONValue, _ range: ClosedRange<Int64>, _ path: String) throws -> Int64 {
        guard case .integer(let number) = value else {
            let got = value.typeName == "number" ? "a non-integer number" : value.typeName
            throw AppError.invalidField(path, "\(path) must be an integer, got \(got)")
        }
        guard range.contains(number) else {
            throw AppError.invalidField(path, "\(path) must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    static func number(_ value: JSONValue, _ range: ClosedRange<Double>, _ path: String) throws -> Double {
        let number: Double
        switch value {
        case .integer(let integer): number = Double(integer)
        case .number(let double): number = double
        default: throw AppError.invalidField(path, "\(path) must be a number, got \(value.typeName)")
        }
        guard number.isFinite, range.contains(number) else {
            throw AppError.invalidField(path, "\(path) must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    static func uuidText(_ value: JSONValue, _ path: String) throws -> String {
        let text = try string(value, path)
        guard TypedID<Never>(text) != nil else { throw AppError.invalidField(path, "\(path) must be a UUID") }
        return text
    }
}

/// The fields a JSON object may have. Validation refuses a value that is not an object, a required field that is
/// missing, any field the shape does not name (a typo must not be silently ignored), and any field whose value
/// breaks its kind's limits, each with a 422 naming the field.
public struct ObjectShape: Sendable {
    public let fields: [Field]
    /// When not empty, at least one of these fields must be present (even as `null`): a change that names
    /// nothing to change is refused.
    public let atLeastOneOf: [String]

    public init(_ fields: [Field], atLeastOneOf: [String] = []) {
        precondition(Set(fields.map(\.name)).count == fields.count, "field names are unique within a shape")
        precondition(atLeastOneOf.allSatisfy { name in fields.contains { $0.name == name } }, "atLeastOneOf names fields")
        self.fields = fields
        self.atLeastOneOf = atLeastOneOf
    }

    public func field(_ name: String) -> Field {
        guard let field = fields.first(where: { $0.name == name }) else {
            preconditionFailure("the shape has no field \(name)")
        }
        return field
    }

    /// The object, checked; `path` prefixes the names of nested fields (`destination.country`).
    @discardableResult
    public func validate(_ value: JSONValue, path: String? = nil) throws -> InputObject {
        guard case .object(let members) = value else {
            if let path { throw AppError.invalidField(path, "\(path) must be an object, got \(value.typeName)") }
            throw AppError(.validationFailed, "the request body must be a JSON object, got \(value.typeName)")
        }
        func name(_ field: String) -> String { path.map { "\($0).\(field)" } ?? field }
        if let unknown = members.keys.sorted().first(where: { key in !fields.contains { $0.name == key } }) {
            let known = fields.map(\.name).joined(separator: ", ")
            throw AppError.invalidField(
                name(unknown), "\(name(unknown)) is not a field here; " + (known.isEmpty ? "send none" : "the fields are \(known)"))
        }
        if !atLeastOneOf.isEmpty, !atLeastOneOf.contains(where: { members[$0] != nil }) {
            throw AppError(.validationFailed, "nothing to change: send at least one of \(atLeastOneOf.joined(separator: ", "))",
                           details: ["field": .string(name(atLeastOneOf[0]))])
        }
        for field in fields {
            switch members[field.name] {
            case nil, .null?:
                if field.required {
                    throw AppError.invalidField(name(field.name), "\(name(field.name)) is required")
                }
                if members[field.name] == .null, !field.nullable {
                    throw AppError.invalidField(name(field.name), "\(name(field.name)) must not be null")
                }
            case let value?:
                try field.validate(value, path: name(field.name))
            }
        }
        return InputObject(fields: members, path: path)
    }
}

extension Field {
    /// Checks a query parameter's text against a `choice` or `uuid` field.
    public static func validateQuery(_ text: String, _ field: Field) throws {
        try validate(.string(text), field.kind, path: field.name)
    }
}
