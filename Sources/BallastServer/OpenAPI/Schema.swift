import Marketplace

/// Small builders for JSON Schema fragments of the OpenAPI document.
enum Schema {
    static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/\(name)")]) }
    static let string: JSONValue = .object(["type": .string("string")])
    static let uuid: JSONValue = .object(["type": .string("string"), "format": .string("uuid")])
    static let dateTime: JSONValue = .object(["type": .string("string"), "format": .string("date-time")])
    static let integer: JSONValue = .object(["type": .string("integer"), "format": .string("int64")])
    static let number: JSONValue = .object(["type": .string("number")])
    static let boolean: JSONValue = .object(["type": .string("boolean")])
    static let anyObject: JSONValue = .object(["type": .string("object"), "additionalProperties": .bool(true)])

    static func enumeration(_ values: [String]) -> JSONValue {
        .object(["type": .string("string"), "enum": .array(values.map { .string($0) })])
    }

    static func nullable(_ schema: JSONValue) -> JSONValue {
        .object(["oneOf": .array([schema, .object(["type": .string("null")])])])
    }

    /// `{amount, reference?}`: money in minor units, 1 to 10^12.
    static let amountBody: JSONValue = object(
        [("amount", .object(["type": .string("integer"), "minimum": .integer(1), "maximum": .integer(1_000_000_000_000)])),
         ("reference", string)],
        required: ["amount"])

    /// `{confirm?}` of the destructive product actions.
    static let confirmBody: JSONValue = object([("confirm", boolean)], required: [])

    /// A list page: `{"items": [...], "nextCursor": string|null}`.
    static func page(_ item: JSONValue) -> JSONValue {
        object([("items", .object(["type": .string("array"), "items": item])), ("nextCursor", nullable(string))],
               required: ["items", "nextCursor"])
    }

    static func object(_ properties: [(String, JSONValue)], required: [String]) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        for (name, schema) in properties { fields[name] = schema }
        return .object([
            "type": .string("object"),
            "properties": .object(fields),
            "required": .array(required.map { .string($0) }),
        ])
    }
}
