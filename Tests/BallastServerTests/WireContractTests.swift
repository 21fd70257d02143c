import BallastCore
@testable import BallastServer
import BallastTestSupport
import BallastWire
import Foundation
import HTTPTypes
import Testing

/// The wire contract, both ways: every response body type of `BallastWire`, encoded exactly as the server encodes
/// it, is what the OpenAPI document says of that answer (no property the document lacks, none it lists missing,
/// types, formats and enumerations agreeing), and it reads back, through the decoder the chaos runner uses, as the
/// value that was written. Every schema component of the document has a wire type sampled here, so a component
/// added without one fails, and so does a body changed without its schema.
@Suite struct WireContractTests {
    /// A time the API writes exactly (milliseconds), so it reads back equal.
    static let time = Date(timeIntervalSince1970: 1_780_000_000.125)
    static let id = "0b6f3d4e-8a1c-4f2e-9d7b-5c3a2e1f0a9b"
    static let other = "6c1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a"

    static let wallet = WalletBody(id: id, ownerId: other, currency: "USD", balance: 1_250, createdAt: time)
    static let entry = LedgerEntryBody(id: id, kind: "debit", amount: 250, balanceAfter: 1_000, reference: "order:\(other)",
                                       createdAt: time)
    static let product = ProductBody(id: id, sellerId: other, sku: "SKU-1", name: "Lamp", price: 1_999, currency: "USD",
                                     stock: 7, status: "active", createdAt: time, updatedAt: time, deletedAt: nil)
    static let listing = ListingBody(id: id, ownerId: other, title: "Bike", price: 500, version: 3, createdAt: time,
                                     updatedAt: time, deletedAt: time)
    static let user = UserBody(id: id, name: "Ada", role: "admin", createdAt: time)

    /// Each component of the document, with samples of its wire type (every nullable field both null and set).
    static let samples: [String: [any Codable & Equatable & Sendable]] = [
        "Error": [ErrorBody(error: .init(code: "validation_failed", message: "amount must be at least 1",
                                         details: ["field": "amount"]))],
        "User": [user],
        "CreatedUser": [CreatedUser(user: user, token: "t0ken")],
        "Health": [
            HealthReport(status: "ok", version: "1.0.0", environment: "test", uptimeSeconds: 12,
                         checks: .init(database: "ok", shadow: "disabled"),
                         chaos: .init(enabled: false, failRate: 0, scope: "shadow_write_only", seed: "", expiresAt: nil, reason: nil)),
            HealthReport(status: "down", version: "1.0.0", environment: "staging", uptimeSeconds: 3,
                         checks: .init(database: "down", shadow: "down"),
                         chaos: .init(enabled: true, failRate: 0.25, scope: "all", seed: "s", expiresAt: "2026-06-01T00:00:00.000Z",
                                      reason: "time box ended")),
        ],
        "Ready": [ReadyReport(ready: true, database: "ok", migrated: true)],
        "Chaos": [
            ChaosBody(enabled: false, failRate: 0, scope: "shadow_write_only", seed: "", expiresAt: nil, durationSeconds: nil,
                      latencyMilliseconds: 0, abortErrorRate: 0, version: 1, reason: nil),
            ChaosBody(enabled: true, failRate: 0.5, scope: "all", seed: "seed", expiresAt: time, durationSeconds: 60,
                      latencyMilliseconds: 20, abortErrorRate: 0.1, version: 2, reason: "experiment"),
        ],
        "EvidenceRecord": [
            EvidenceBody(id: id, seq: 1, occurredAt: "2026-06-01T00:00:00.123456Z", controlId: "CC-8.1", category: "change",
                         eventType: "ADMIN_ACTION", eventOutcome: "success", entityType: nil, entityId: nil, requestId: nil,
                         details: .object([:]), contentHash: "ab", previousHash: "00"),
            EvidenceBody(id: id, seq: 2, occurredAt: "2026-06-01T00:00:00.123456Z", controlId: "CC-8.1", category: "change",
                         eventType: "ADMIN_ACTION", eventOutcome: "success", entityType: "product", entityId: other,
                         requestId: "req-1", details: ["before": ["status": "active"]], contentHash: "cd", previousHash: "ab"),
        ],
        "Verification": [
            VerificationBody(records: 2, valid: true, firstInvalidId: nil, firstInvalidSeq: nil, failure: nil, headSeq: 2,
                             headHash: "cd"),
            VerificationBody(records: 2, valid: false, firstInvalidId: id, firstInvalidSeq: 2, failure: "content hash differs",
                             headSeq: 1, headHash: "ab"),
        ],
        "Wallet": [wallet],
        "LedgerEntry": [entry, LedgerEntryBody(id: id, kind: "credit", amount: 1, balanceAfter: 1, reference: nil, createdAt: time)],
        "Movement": [MovementBody(wallet: wallet, transaction: entry)],
        "Transfer": [TransferBody(id: id, amount: 5, from: wallet, to: .wallet(wallet)),
                     TransferBody(id: id, amount: 5, from: wallet, to: .idOnly(other))],
        "Product": [product, ProductBody(id: id, sellerId: other, sku: "SKU-2", name: "Gone", price: 1, currency: "USD", stock: 0,
                                         status: "disabled", createdAt: time, updatedAt: time, deletedAt: time)],
        "Impact": [ImpactBody(productId: id, status: "active", stock: 3, openOrders: 2, awaitingShipment: 1, inTransit: 1,
                              unitsInOpenOrders: 4, revenueAtRisk: 8_000)],
        "Order": [OrderBody(id: id, status: "paid", buyerId: other, walletId: id,
                            items: [.init(productId: other, quantity: 2, unitPrice: 1_999)], subtotal: 3_998, shipping: 500,
                            total: 4_498, currency: "USD", shippingSource: "fallback",
                            destination: .init(country: "DE", postalCode: "10115"), createdAt: time, updatedAt: time)],
        "Listing": [listing, ListingBody(id: id, ownerId: other, title: "Live", price: 1, version: 1, createdAt: time,
                                         updatedAt: time, deletedAt: nil)],
        "Job": [
            JobBody(name: "ledger-invariant-auditor", intervalSeconds: 60, enabled: true, running: false, lastRunAt: nil,
                    lastStatus: nil, lastDurationSeconds: nil, nextRunAt: nil),
            JobBody(name: "shadow-discrepancy-verifier", intervalSeconds: 300, enabled: true, running: true, lastRunAt: time,
                    lastStatus: "succeeded", lastDurationSeconds: 0.25, nextRunAt: time),
        ],
        "JobRun": [JobRunBody(name: "ledger-invariant-auditor", status: "succeeded", durationSeconds: 1.5,
                              result: ["violations": 0])],
        "Discrepancy": [
            DiscrepancyBody(id: id, entityType: "listing", entityId: other, discrepancyType: "missing_in_shadow", fields: [],
                            expected: true, status: "open", detectedAt: time, resolvedAt: nil, resolution: nil),
            DiscrepancyBody(id: id, entityType: "listing", entityId: other, discrepancyType: "mismatch",
                            fields: ["price"], expected: false, status: "resolved", detectedAt: time, resolvedAt: time,
                            resolution: "repaired"),
        ],
        "Notification": [
            NotificationBody(id: id, channel: "email", recipient: other, template: "order_confirmation", orderId: nil,
                             status: "pending", attempts: 0, nextAttemptAt: time, lastError: nil, createdAt: time, sentAt: nil),
            NotificationBody(id: id, channel: "push", recipient: other, template: "new_sale", orderId: other, status: "sent",
                             attempts: 2, nextAttemptAt: time, lastError: "timeout", createdAt: time, sentAt: time),
        ],
    ]

    /// Answers whose schema is written inline in an operation rather than as a component.
    static let inline: [(String, JSONValue, [any Codable & Equatable & Sendable])] = [
        ("a page of products", Schema.page(Schema.ref("Product")),
         [Page(items: [product], nextCursor: "1780000000123000_\(id)"), Page<ProductBody>(items: [], nextCursor: nil)]),
        ("a page of ledger entries", Schema.page(Schema.ref("LedgerEntry")), [Page(items: [entry], nextCursor: "7")]),
        ("a bulk disable", Schema.object([("disabled", Schema.integer), ("products", Schema.array(Schema.ref("Product")))],
                                         required: ["disabled", "products"]),
         [BulkDisableBody(disabled: 1, products: [product])]),
    ]

    @Test func everyComponentHasAWireTypeAndEverySampleMatchesItsSchema() throws {
        let components = OpenAPIDocument.components
        #expect(Set(components.keys) == Set(Self.samples.keys), "components and wire samples differ")
        for (name, samples) in Self.samples {
            let schema = try #require(components[name], "no component \(name)")
            for sample in samples {
                let encoded = try Self.encode(sample)
                let problems = WireSchemaCheck(components: components).problems(encoded, schema, at: name)
                #expect(problems.isEmpty, "\(name): \(problems.joined(separator: "; ")) in \(encoded.text)")
            }
        }
        for (what, schema, samples) in Self.inline {
            for sample in samples {
                let encoded = try Self.encode(sample)
                let problems = WireSchemaCheck(components: components).problems(encoded, schema, at: what)
                #expect(problems.isEmpty, "\(what): \(problems.joined(separator: "; "))")
            }
        }
    }

    @Test func whatTheServerWritesTheRunnerReadsBack() throws {
        func roundTrip<T: Codable & Equatable>(_ value: T) throws {
            let data = try JSONResponse.encoder.encode(value)
            let read = try WireJSON.decoder.decode(T.self, from: data)
            #expect(read == value, "\(T.self) read back differently from \(String(decoding: data, as: UTF8.self))")
        }
        for sample in Self.samples.values.joined() { try roundTrip(sample) }
        for (_, _, samples) in Self.inline { for sample in samples { try roundTrip(sample) } }
    }

    /// The server's own answers, from a walk through every kind of resource on a real store, each held against the
    /// schema the served document gives for that operation and status: the domain → wire rendering is checked, not
    /// only the wire types. An answer with a status the document does not list fails too.
    @Test(arguments: TestStores.kinds)
    func aRealServersAnswersMatchTheDocumentItServes(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            let document = try #require(JSONValue.parse(Data(try await app.request(.get, "/openapi.json").body.utf8)))
            guard case .object(let components)? = document["components"]?["schemas"] else {
                Issue.record("the document has no schema components")
                return
            }
            let check = WireSchemaCheck(components: components)
            func call(
                _ method: HTTPRequest.Method, _ template: String, _ path: String, token: String? = TestApp.adminToken,
                body: String? = nil, answers expected: Int = 200
            ) async throws -> JSONValue {
                let reply = try await app.request(method, path, token: token, body: body)
                let status = String(reply.status.code)
                // The walk means each answer: a documented error where a success was meant would leave its schema
                // unchecked.
                #expect(Int(reply.status.code) == expected, "\(method) \(path): \(reply.body)")
                let value = JSONValue.parse(Data(reply.body.utf8)) ?? .null
                guard let schema = document["paths"]?[template]?[method.rawValue.lowercased()]?["responses"]?[status]?["content"]?[
                    "application/json"]?["schema"]
                else {
                    Issue.record("\(method) \(template) answered \(status), which the document does not list: \(reply.body)")
                    return value
                }
                let problems = check.problems(value, schema, at: "\(method) \(template) \(status)")
                #expect(problems.isEmpty, "\(problems.joined(separator: "; ")) in \(reply.body)")
                return value
            }
            func id(_ value: JSONValue) throws -> String { try #require(value["id"]?.string) }

            _ = try await call(.get, "/health", "/health", token: nil)
            _ = try await call(.get, "/health/ready", "/health/ready", token: nil)
            let seller = try await call(.post, "/api/users", "/api/users", body: #"{"name":"seller","role":"member"}"#, answers: 201)
            let sellerToken = try #require(seller["token"]?.string)
            let buyerToken = try await app.createUser(name: "buyer")
            _ = try await call(.get, "/api/users/me", "/api/users/me", token: buyerToken)

            // Wallets, their ledger, transfers (the target in full for its owner or an admin, else its id alone).
            let wallet = try id(try await call(.post, "/api/wallets", "/api/wallets", token: buyerToken, body: "{}", answers: 201))
            let sellerWallet = try id(try await call(.post, "/api/wallets", "/api/wallets", token: sellerToken, body: "{}", answers: 201))
            _ = try await call(.post, "/api/wallets/{id}/credit", "/api/wallets/\(wallet)/credit", body: #"{"amount":100000}"#)
            _ = try await call(.post, "/api/wallets/{id}/debit", "/api/wallets/\(wallet)/debit", token: buyerToken,
                               body: #"{"amount":100,"reference":"coffee"}"#)
            _ = try await call(.post, "/api/wallets/{id}/debit", "/api/wallets/\(wallet)/debit", token: buyerToken,
                               body: #"{"amount":999999999}"#, answers: 409)
            _ = try await call(.get, "/api/wallets/{id}", "/api/wallets/\(wallet)", token: buyerToken)
            _ = try await call(.get, "/api/wallets/{id}", "/api/wallets/\(UUID().uuidString.lowercased())", token: buyerToken,
                               answers: 404)
            let transfer = #"{"fromWalletId":"\#(wallet)","toWalletId":"\#(sellerWallet)","amount":10}"#
            // SPEC I11: the buyer sees the seller's wallet by its id alone; an admin sees it whole.
            let seen = try await call(.post, "/api/transfers", "/api/transfers", token: buyerToken, body: transfer, answers: 201)
            #expect(seen["to"] == .object(["id": .string(sellerWallet)]), "\(seen.text)")
            let whole = try await call(.post, "/api/transfers", "/api/transfers", body: transfer, answers: 201)
            #expect(whole["to"]?["balance"] != nil, "\(whole.text)")
            _ = try await call(.get, "/api/wallets/{id}/transactions", "/api/wallets/\(wallet)/transactions", token: buyerToken)

            // The catalog, its safety checks and orders.
            let product = try id(try await call(.post, "/api/products", "/api/products", token: sellerToken,
                                                body: #"{"sku":"lamp","name":"Lamp","price":1999,"stock":5}"#, answers: 201))
            _ = try await call(.post, "/api/products/{id}/publish", "/api/products/\(product)/publish", token: sellerToken)
            _ = try await call(.patch, "/api/products/{id}", "/api/products/\(product)", token: sellerToken, body: #"{"price":2999}"#)
            _ = try await call(.post, "/api/products/{id}/restock", "/api/products/\(product)/restock", token: sellerToken,
                               body: #"{"quantity":3}"#)
            _ = try await call(.get, "/api/products", "/api/products", token: buyerToken)
            _ = try await call(.get, "/api/products/{id}", "/api/products/\(product)", token: buyerToken)
            let orderBody = #"{"walletId":"\#(wallet)","items":[{"productId":"\#(product)","quantity":1}],"#
                + #""destination":{"country":"DE","postalCode":"10115"}}"#
            let order = try id(try await call(.post, "/api/orders", "/api/orders", token: buyerToken, body: orderBody, answers: 201))
            let cancelled = try id(try await call(.post, "/api/orders", "/api/orders", token: buyerToken, body: orderBody,
                                                  answers: 201))
            _ = try await call(.get, "/api/orders/{id}", "/api/orders/\(order)", token: buyerToken)
            _ = try await call(.post, "/api/orders/{id}/ship", "/api/orders/\(order)/ship")
            _ = try await call(.post, "/api/orders/{id}/deliver", "/api/orders/\(order)/deliver")
            _ = try await call(.post, "/api/orders/{id}/cancel", "/api/orders/\(cancelled)/cancel", token: buyerToken)
            _ = try await call(.post, "/api/orders/{id}/cancel", "/api/orders/\(cancelled)/cancel", token: buyerToken, answers: 409)
            _ = try await call(.get, "/api/products/{id}/impact", "/api/products/\(product)/impact", token: sellerToken)
            _ = try await call(.post, "/api/products/{id}/disable", "/api/products/\(product)/disable", token: sellerToken, answers: 409)
            _ = try await call(.post, "/api/products/{id}/disable", "/api/products/\(product)/disable", token: sellerToken,
                               body: #"{"confirm":true}"#)
            _ = try await call(.post, "/api/products/{id}/archive", "/api/products/\(product)/archive", token: sellerToken,
                               body: #"{"confirm":true}"#)
            _ = try await call(.delete, "/api/products/{id}", "/api/products/\(product)?confirm=true", token: sellerToken)
            _ = try await call(.post, "/api/products/{id}/restore", "/api/products/\(product)/restore", token: sellerToken)
            let other = try id(try await call(.post, "/api/products", "/api/products", token: sellerToken,
                                              body: #"{"sku":"desk","name":"Desk","price":100,"stock":1}"#, answers: 201))
            _ = try await call(.post, "/api/products/{id}/publish", "/api/products/\(other)/publish", token: sellerToken)
            _ = try await call(.post, "/api/products/bulk-disable", "/api/products/bulk-disable",
                               body: #"{"ids":["\#(other)"],"confirm":true}"#)

            // Listings (mirrored to the shadow store).
            let listing = try id(try await call(.post, "/api/listings", "/api/listings", token: sellerToken,
                                                body: #"{"title":"Bike","price":500}"#, answers: 201))
            _ = try await call(.patch, "/api/listings/{id}", "/api/listings/\(listing)", token: sellerToken, body: #"{"price":450}"#)
            _ = try await call(.get, "/api/listings", "/api/listings", token: buyerToken)
            _ = try await call(.get, "/api/listings/{id}", "/api/listings/\(listing)", token: buyerToken)
            _ = try await call(.delete, "/api/listings/{id}", "/api/listings/\(listing)", token: sellerToken)

            // Operations.
            _ = try await call(.get, "/api/admin/jobs", "/api/admin/jobs")
            _ = try await call(.post, "/api/admin/jobs/{name}/trigger", "/api/admin/jobs/ledger-invariant-auditor/trigger")
            _ = try await call(.post, "/api/admin/jobs/{name}/trigger", "/api/admin/jobs/shadow-discrepancy-verifier/trigger")
            _ = try await call(.get, "/api/admin/discrepancies", "/api/admin/discrepancies")
            let notifications = try await call(.get, "/api/admin/notifications", "/api/admin/notifications")
            let notification = try #require(notifications["items"]?.array?.first?["id"]?.string)
            _ = try await call(.post, "/api/admin/notifications/{id}/retry", "/api/admin/notifications/\(notification)/retry",
                               answers: 409)
            _ = try await call(.get, "/api/admin/chaos", "/api/admin/chaos")
            _ = try await call(.put, "/api/admin/chaos", "/api/admin/chaos",
                               body: #"{"enabled":true,"failRate":0.5,"seed":"wire","durationSeconds":60,"reason":"contract test"}"#)
            _ = try await call(.put, "/api/admin/chaos", "/api/admin/chaos", body: #"{"enabled":false}"#)
            _ = try await call(.get, "/api/admin/evidence", "/api/admin/evidence")
            _ = try await call(.get, "/api/admin/evidence/verify", "/api/admin/evidence/verify")
            _ = try await call(.get, "/api/users/me", "/api/users/me", token: "not-a-token", answers: 401)

            // Every component was held against a real answer, but a discrepancy (none arises here; its samples above
            // cover it).
            #expect(Set(components.keys).subtracting(check.reached) == ["Discrepancy"], "components no answer reached")
        }
    }

    /// Without the key at all (a client may meet an older body), a nullable field reads as nil, never a failure.
    @Test func aMissingNullableFieldReadsAsNil() throws {
        let json = #"{"id":"\#(Self.id)","ownerId":"\#(Self.other)","title":"t","price":1,"version":1,"#
            + #""createdAt":"2026-06-01T00:00:00.000Z","updatedAt":"2026-06-01T00:00:00Z"}"#
        let listing = try WireJSON.decoder.decode(ListingBody.self, from: Data(json.utf8))
        #expect(listing.deletedAt == nil)
        #expect(WireJSON.decode(ListingBody.self, from: Data(#"{"id":"x"}"#.utf8)) == nil)
    }

    static func encode(_ value: some Encodable) throws -> JSONValue {
        try #require(JSONValue.parse(try JSONResponse.encoder.encode(value)))
    }
}

/// Checks a JSON value against an OpenAPI 3.0 schema of this document, strictly: an object has exactly the
/// properties its schema lists (unless it allows any), a nullable value may be null, formats and enumerations hold.
final class WireSchemaCheck {
    let components: [String: JSONValue]
    /// The components a checked value was held against.
    private(set) var reached: Set<String> = []

    init(components: [String: JSONValue]) {
        self.components = components
    }

    func problems(_ value: JSONValue, _ schema: JSONValue, at path: String) -> [String] {
        guard case .object(let members) = schema else { return ["\(path): the schema is not an object"] }
        if case .string(let reference)? = members["$ref"] {
            let name = String(reference.split(separator: "/").last ?? "")
            guard let target = components[name] else { return ["\(path): no component \(name)"] }
            reached.insert(name)
            return problems(value, target, at: path)
        }
        if case .array(let options)? = members["anyOf"], members["type"] == nil {
            // Only the branch that matches counts as reached.
            let before = reached
            var failures: [String] = []
            for option in options {
                let found = problems(value, option, at: path)
                if found.isEmpty { return [] }
                failures += found
                reached = before
            }
            return ["\(path): matches none of anyOf: \(failures.joined(separator: ", "))"]
        }
        if value == .null {
            return members["nullable"] == .bool(true) ? [] : ["\(path): null but not nullable"]
        }
        if case .array(let allowed)? = members["enum"], !allowed.contains(value) {
            return ["\(path): \(value.text) is not one of \(JSONValue.array(allowed).text)"]
        }
        switch (members["type"]?.string, value) {
        case ("string", .string(let text)):
            switch members["format"]?.string {
            case "uuid"? where UUID(uuidString: text) == nil: return ["\(path): \(text) is not a UUID"]
            case "date-time"? where WireJSON.parseTime(text) == nil: return ["\(path): \(text) is not an RFC 3339 time"]
            default: return []
            }
        case ("integer", .integer), ("number", .integer), ("number", .number), ("boolean", .bool):
            return []
        case ("array", .array(let elements)):
            guard let items = members["items"] else { return [] }
            return elements.enumerated().flatMap { problems($0.element, items, at: "\(path)[\($0.offset)]") }
        case ("object", .object(let fields)):
            let properties: [String: JSONValue]
            if case .object(let listed)? = members["properties"] { properties = listed } else { properties = [:] }
            if members["additionalProperties"] == .bool(true) && properties.isEmpty { return [] }
            var found: [String] = []
            for key in Set(fields.keys).subtracting(properties.keys).sorted() { found.append("\(path).\(key): not in the document") }
            // Every documented property is written (null when absent): the API shows every field it documents.
            for key in Set(properties.keys).subtracting(fields.keys).sorted() { found.append("\(path).\(key): documented but not written") }
            if case .array(let required)? = members["required"] {
                for case .string(let key) in required where fields[key] == nil { found.append("\(path).\(key): required but missing") }
            }
            for (key, field) in fields.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] { found += problems(field, property, at: "\(path).\(key)") }
            }
            return found
        default:
            return ["\(path): \(value.text) is not a \(members["type"]?.string ?? "?")"]
        }
    }
}
