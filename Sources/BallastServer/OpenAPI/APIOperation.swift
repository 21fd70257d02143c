import BallastCore
import DomainValues
import Foundation
import Commerce

/// One documented endpoint. The list in ``OpenAPIDocument/operations(environment:jobNames:)`` is checked against the
/// router by a test, in both directions, so the document cannot drift from the routes; its bodies and parameters
/// are the ``Field``s the routes validate with.
struct APIOperation: Sendable {
    enum Access: String, Sendable {
        case anyone, user, admin
    }

    /// A body the operation takes.
    struct Body: Sendable {
        let shape: ObjectShape
        /// False for actions whose fields are all optional and that may be sent without a body.
        let required: Bool
    }

    /// An OpenAPI link from this operation's success response to another operation: runtime expressions for its
    /// parameters, or for fields of its body (merged into the body the client sends).
    struct Link: Sendable {
        let name: String
        let operationId: String
        var parameters: [String: String] = [:]
        var body: JSONValue? = nil

        /// The new resource's id as the target's `{id}`.
        static func id(_ name: String, _ operationId: String) -> Link {
            Link(name: name, operationId: operationId, parameters: ["id": "$response.body#/id"])
        }
    }

    let method: String
    /// The path template, with `{name}` for captures, exactly as registered.
    let path: String
    let summary: String
    let tag: String
    let access: Access
    let body: Body?
    let successStatus: Int
    let successSchema: JSONValue?
    /// Statuses besides the ones every operation of its kind can answer (computed in ``statuses``).
    let errorStatuses: [Int]
    let query: [Field]
    let headers: [Field]
    /// Path parameters that are not UUIDs (a job's name), by name.
    let pathKinds: [String: Field.Kind]
    let links: [Link]
    /// Error statuses whose body is not the error object (`/health` answers its report with 503).
    let statusSchemas: [Int: JSONValue]

    init(_ method: String, _ path: String, _ summary: String, tag: String, access: Access, body: ObjectShape? = nil,
         bodyRequired: Bool = true, successStatus: Int = 200, successSchema: JSONValue? = nil, errorStatuses: [Int] = [],
         query: [Field] = [], headers: [Field] = [], pathKinds: [String: Field.Kind] = [:], links: [Link] = [],
         statusSchemas: [Int: JSONValue] = [:]) {
        self.method = method
        self.path = path
        self.summary = summary
        self.tag = tag
        self.access = access
        self.body = body.map { Body(shape: $0, required: bodyRequired) }
        self.successStatus = successStatus
        self.successSchema = successSchema
        self.errorStatuses = errorStatuses
        self.query = query
        self.headers = headers
        self.pathKinds = pathKinds
        self.links = links
        self.statusSchemas = statusSchemas
    }

    /// Every status the operation can answer besides success: what its parts imply (a token → 401, an admin → 403,
    /// a body → 400/413/422, a parameter → 422, an id in the path → 404, the database → 503) and its own.
    var statuses: [Int] {
        var statuses = Set(errorStatuses)
        if access != .anyone { statuses.formUnion([401, 503]) }
        if access == .admin { statuses.insert(403) }
        if body != nil { statuses.formUnion([400, 413, 422]) }
        if !query.isEmpty || !headers.isEmpty { statuses.insert(422) }
        if headers.contains(where: { $0.name == IdempotencyStore.keyHeader.name }) { statuses.formUnion([409, 422]) }
        if pathParameters.contains(where: { pathKinds[$0] == nil }) { statuses.insert(404) }
        return statuses.sorted()
    }

    /// The OpenAPI operation object.
    var document: JSONValue {
        var responses: [String: JSONValue] = [:]
        var success: [String: JSONValue] = ["description": .string(Self.reason(successStatus))]
        if let successSchema {
            success["content"] = .object(["application/json": .object(["schema": successSchema])])
        }
        if !links.isEmpty {
            var documented: [String: JSONValue] = [:]
            for link in links {
                var members: [String: JSONValue] = ["operationId": .string(link.operationId)]
                if !link.parameters.isEmpty { members["parameters"] = .object(link.parameters.mapValues { .string($0) }) }
                if let body = link.body { members["requestBody"] = body }
                documented[link.name] = .object(members)
            }
            success["links"] = .object(documented)
        }
        responses[String(successStatus)] = .object(success)
        for status in statuses {
            var response: [String: JSONValue] = [
                "description": .string(Self.reason(status)),
                "content": .object(["application/json": .object(["schema": statusSchemas[status] ?? Schema.ref("Error")])]),
            ]
            if status == 503 || status == 409 && headers.contains(where: { $0.name == IdempotencyStore.keyHeader.name }) {
                response["headers"] = .object(["Retry-After": .object([
                    "description": "seconds to wait before trying again", "schema": Schema.integer,
                ])])
            }
            responses[String(status)] = .object(response)
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
                "name": .string(name), "in": "path", "required": true,
                "schema": pathKinds[name].map(Schema.kind) ?? Schema.uuid,
            ])
        } + query.map { Schema.parameter($0, in: "query") } + headers.map { Schema.parameter($0, in: "header") }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body {
            operation["requestBody"] = .object([
                "required": .bool(body.required),
                "content": .object(["application/json": .object(["schema": Schema.shape(body.shape)])]),
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
                .replacingOccurrences(of: "-", with: "")
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
        case 503: return "Dependency unavailable (Retry-After)"
        default: return "Status \(status)"
        }
    }
}
