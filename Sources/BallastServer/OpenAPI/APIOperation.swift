import Marketplace

/// One documented endpoint. The list in ``OpenAPIDocument/operations`` is checked against the router by a
/// test, in both directions, so the document cannot drift from the routes.
struct APIOperation: Sendable {
    enum Access: String, Sendable {
        case anyone, user, admin
    }

    let method: String
    /// The path template, with `{name}` for captures, exactly as registered.
    let path: String
    let summary: String
    let tag: String
    let access: Access
    let requestBody: JSONValue?
    let successStatus: Int
    let successSchema: JSONValue?
    let errorStatuses: [Int]
    /// Query parameters (all optional strings in the document; the route validates them).
    let query: [String]

    init(_ method: String, _ path: String, _ summary: String, tag: String, access: Access, requestBody: JSONValue? = nil,
         successStatus: Int = 200, successSchema: JSONValue? = nil, errorStatuses: [Int] = [], query: [String] = []) {
        self.method = method
        self.path = path
        self.summary = summary
        self.tag = tag
        self.access = access
        self.requestBody = requestBody
        self.successStatus = successStatus
        self.successSchema = successSchema
        self.errorStatuses = errorStatuses
        self.query = query
    }

    /// The OpenAPI operation object.
    var document: JSONValue {
        var responses: [String: JSONValue] = [:]
        var success: [String: JSONValue] = ["description": .string(Self.reason(successStatus))]
        if let successSchema {
            success["content"] = .object(["application/json": .object(["schema": successSchema])])
        }
        responses[String(successStatus)] = .object(success)
        var errors = errorStatuses
        if access != .anyone { errors += [401] }
        if access == .admin { errors += [403] }
        if requestBody != nil { errors += [400, 413, 422] }
        for status in Set(errors).sorted() {
            responses[String(status)] = .object([
                "description": .string(Self.reason(status)),
                "content": .object(["application/json": .object(["schema": Schema.ref("Error")])]),
            ])
        }
        var operation: [String: JSONValue] = [
            "summary": .string(summary),
            "tags": .array([.string(tag)]),
            "operationId": .string(operationId),
            "responses": .object(responses),
            "security": access == .anyone ? .array([]) : .array([.object(["bearerAuth": .array([])])]),
        ]
        if access == .admin { operation["description"] = .string("Admin only.") }
        let parameters: [JSONValue] = pathParameters.map { name in
            .object([
                "name": .string(name), "in": .string("path"), "required": .bool(true),
                "schema": .object(["type": .string("string"), "format": .string("uuid")]),
            ])
        } + query.map { name in
            .object(["name": .string(name), "in": .string("query"), "required": .bool(false), "schema": Schema.string])
        }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let requestBody {
            operation["requestBody"] = .object([
                "required": .bool(true),
                "content": .object(["application/json": .object(["schema": requestBody])]),
            ])
        }
        return .object(operation)
    }

    var pathParameters: [String] {
        path.split(separator: "/").compactMap { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? String(part.dropFirst().dropLast()) : nil
        }
    }

    var operationId: String {
        let words = path.split(separator: "/").map { part -> String in
            let clean = part.trimmingCharacters(in: CharacterSet(charactersIn: "{}.")).replacingOccurrences(of: ".", with: "")
            return clean.prefix(1).uppercased() + clean.dropFirst()
        }
        return method.lowercased() + words.joined()
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 400: return "Malformed JSON"
        case 401: return "Missing or invalid bearer token"
        case 403: return "Not allowed for this role"
        case 404: return "Not found"
        case 409: return "Conflict"
        case 413: return "Body over 1 MiB"
        case 422: return "Validation failed"
        case 503: return "Dependency unavailable"
        default: return "Status \(status)"
        }
    }
}

import Foundation
