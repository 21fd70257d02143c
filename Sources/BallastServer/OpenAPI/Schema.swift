import BallastCore
import DomainValues
import Commerce

/// JSON Schema fragments of the OpenAPI document (3.0: `nullable` rather than a `null` type). Request bodies and
/// parameters are written from the same ``Field`` and ``ObjectShape`` values that validate them, so every limit
/// the server enforces (lengths in Unicode scalars, patterns, ranges, enumerations, array sizes, required and
/// unknown fields) is in the document.
enum Schema {
    static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/\(name)")]) }
    static let string: JSONValue = .object(["type": "string"])
    static let uuid: JSONValue = .object(["type": "string", "format": "uuid", "pattern": .string("^\(TextFormat.uuidPattern)$")])
    static let dateTime: JSONValue = .object(["type": "string", "format": "date-time"])
    static let integer: JSONValue = .object(["type": "integer", "format": "int64"])
    static let number: JSONValue = .object(["type": "number"])
    static let boolean: JSONValue = .object(["type": "boolean"])
    static let anyObject: JSONValue = .object(["type": "object", "additionalProperties": true])

    static func enumeration(_ values: [String]) -> JSONValue {
        .object(["type": "string", "enum": .array(values.map { .string($0) })])
    }

    /// A primitive schema that also accepts `null`. An enumeration lists `null` among its values too: in OpenAPI 3.0.3
    /// `nullable` does not widen an `enum`.
    static func nullable(_ schema: JSONValue) -> JSONValue {
        guard case .object(var members) = schema else { return schema }
        members["nullable"] = true
        if case .array(let values)? = members["enum"] { members["enum"] = .array(values + [.null]) }
        return .object(members)
    }

    static func array(_ items: JSONValue) -> JSONValue { .object(["type": "array", "items": items]) }

    /// A list page: `{"items": [...], "nextCursor": string|null}`.
    static func page(_ item: JSONValue) -> JSONValue {
        object([("items", array(item)), ("nextCursor", nullable(string))], required: ["items", "nextCursor"])
    }

    /// A response object: these properties, these required; other properties may appear.
    static func object(_ properties: [(String, JSONValue)], required: [String]) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        for (name, schema) in properties { fields[name] = schema }
        return .object(["type": "object", "properties": .object(fields), "required": .array(required.map { .string($0) })])
    }

    // MARK: From the input descriptions

    /// What a request body may be: exactly the shape's fields, the required ones present, each within its limits.
    static func shape(_ shape: ObjectShape) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for field in shape.fields { properties[field.name] = self.field(field) }
        var members: [String: JSONValue] = [
            "type": "object",
            "properties": .object(properties),
            "additionalProperties": false,
        ]
        let required = shape.fields.filter(\.required).map(\.name)
        if !required.isEmpty { members["required"] = .array(required.map { .string($0) }) }
        if !shape.atLeastOneOf.isEmpty {
            members["minProperties"] = 1
            members["anyOf"] = .array(shape.atLeastOneOf.map { .object(["required": .array([.string($0)])]) })
        }
        return .object(members)
    }

    /// One field's value: its kind's schema, `nullable` when it accepts null, its summary as the description.
    static func field(_ field: Field) -> JSONValue {
        guard case .object(var members) = kind(field.kind) else { return kind(field.kind) }
        if field.nullable {
            members["nullable"] = true
            // In 3.0 `nullable` does not widen an enumeration: null must be one of its values.
            if case .array(let values)? = members["enum"] { members["enum"] = .array(values + [.null]) }
        }
        if let summary = field.summary { members["description"] = .string(summary) }
        return .object(members)
    }

    static func kind(_ fieldKind: Field.Kind) -> JSONValue {
        switch fieldKind {
        case .text(let rule):
            var members: [String: JSONValue] = [
                "type": "string", "minLength": .integer(Int64(rule.minScalars)), "maxLength": .integer(Int64(rule.maxScalars)),
                "pattern": .string(rule.pattern),
            ]
            if case .printable = rule.alphabet {
                members["description"] = "printable text; lengths count Unicode scalar values"
            }
            return .object(members)
        case .integer(let range):
            return .object(["type": "integer", "format": "int64", "minimum": .integer(range.lowerBound),
                            "maximum": .integer(range.upperBound)])
        case .number(let range):
            return .object(["type": "number", "minimum": .number(range.lowerBound), "maximum": .number(range.upperBound)])
        case .boolean:
            return boolean
        case .uuid:
            return uuid
        case .choice(let values):
            return enumeration(values)
        case .object(let shape):
            return self.shape(shape)
        case .array(let element, let count, let distinct):
            var members: [String: JSONValue] = [
                "type": "array", "items": Self.kind(element), "minItems": .integer(Int64(count.lowerBound)),
                "maxItems": .integer(Int64(count.upperBound)),
            ]
            if distinct { members["uniqueItems"] = true }
            return .object(members)
        case .dateTime:
            return .object(["type": "string", "format": "date-time", "maxLength": .integer(Int64(RFC3339Time.maximumLength))])
        }
    }

    /// A query or header parameter.
    static func parameter(_ field: Field, in location: String) -> JSONValue {
        var schema = Self.kind(field.kind)
        if case .object(var members) = schema {
            members.removeValue(forKey: "description")
            schema = .object(members)
        }
        var parameter: [String: JSONValue] = [
            "name": .string(field.name), "in": .string(location), "required": .bool(field.required), "schema": schema,
        ]
        if let summary = field.summary { parameter["description"] = .string(summary) }
        return .object(parameter)
    }
}
