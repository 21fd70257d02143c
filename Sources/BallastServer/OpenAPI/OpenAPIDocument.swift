import Marketplace

/// The OpenAPI 3 document served at `GET /openapi.json`. Every route the router registers is listed in
/// ``operations``; a test fails when one is missing or when an operation has no route.
enum OpenAPIDocument {
    static let operations: [APIOperation] = [
        APIOperation("GET", "/health", "Liveness, checks and chaos state", tag: "Operations", access: .anyone,
                     successSchema: Schema.ref("Health"), errorStatuses: [503]),
        APIOperation("GET", "/health/ready", "Ready once migrated and the primary store answers", tag: "Operations",
                     access: .anyone, successSchema: Schema.ref("Ready"), errorStatuses: [503]),
        APIOperation("GET", "/metrics", "Prometheus text format", tag: "Operations", access: .anyone),
        APIOperation("GET", "/openapi.json", "This document", tag: "Operations", access: .anyone,
                     successSchema: Schema.anyObject),
        APIOperation("POST", "/api/users", "Create a user; the token is shown once", tag: "Users", access: .admin,
                     requestBody: Schema.object(
                        [("name", Schema.string), ("role", Schema.enumeration(Role.allCases.map(\.rawValue)))],
                        required: ["name", "role"]),
                     successStatus: 201, successSchema: Schema.ref("CreatedUser")),
        APIOperation("GET", "/api/users/me", "The caller", tag: "Users", access: .user,
                     successSchema: Schema.ref("User")),
        APIOperation("POST", "/api/wallets", "Open a wallet (USD unless another currency is given)", tag: "Wallets",
                     access: .user, requestBody: Schema.object([("currency", Schema.string)], required: []),
                     successStatus: 201, successSchema: Schema.ref("Wallet")),
        APIOperation("GET", "/api/wallets/{id}", "A wallet (owner or admin)", tag: "Wallets", access: .user,
                     successSchema: Schema.ref("Wallet"), errorStatuses: [404]),
        APIOperation("POST", "/api/wallets/{id}/credit", "Top up a wallet; accepts Idempotency-Key", tag: "Wallets",
                     access: .admin, requestBody: Schema.amountBody, successSchema: Schema.ref("Movement"),
                     errorStatuses: [404, 409]),
        APIOperation("POST", "/api/wallets/{id}/debit", "Withdraw from a wallet; accepts Idempotency-Key", tag: "Wallets",
                     access: .user, requestBody: Schema.amountBody, successSchema: Schema.ref("Movement"),
                     errorStatuses: [404, 409]),
        APIOperation("POST", "/api/transfers", "Move money between wallets of one currency; accepts Idempotency-Key",
                     tag: "Wallets", access: .user,
                     requestBody: Schema.object(
                        [("fromWalletId", Schema.uuid), ("toWalletId", Schema.uuid), ("amount", Schema.integer)],
                        required: ["fromWalletId", "toWalletId", "amount"]),
                     successStatus: 201, successSchema: Schema.ref("Transfer"), errorStatuses: [404, 409]),
        APIOperation("GET", "/api/wallets/{id}/transactions", "The ledger, newest first", tag: "Wallets", access: .user,
                     successSchema: Schema.page(Schema.ref("LedgerEntry")), errorStatuses: [404, 422],
                     query: ["limit", "cursor"]),
        APIOperation("POST", "/api/products", "Offer a product (the caller becomes its seller); starts as a draft",
                     tag: "Catalog", access: .user,
                     requestBody: Schema.object(
                        [("sku", Schema.string), ("name", Schema.string), ("price", Schema.integer), ("stock", Schema.integer)],
                        required: ["sku", "name", "price", "stock"]),
                     successStatus: 201, successSchema: Schema.ref("Product"), errorStatuses: [409]),
        APIOperation("GET", "/api/products", "Products in creation order; deleted ones hidden", tag: "Catalog",
                     access: .user, successSchema: Schema.page(Schema.ref("Product")), errorStatuses: [403, 422],
                     query: ["status", "includeDeleted", "limit", "cursor"]),
        APIOperation("GET", "/api/products/{id}", "A product", tag: "Catalog", access: .user,
                     successSchema: Schema.ref("Product"), errorStatuses: [403, 404, 422], query: ["includeDeleted"]),
        APIOperation("PATCH", "/api/products/{id}", "Change name and/or price (seller or admin)", tag: "Catalog",
                     access: .user,
                     requestBody: Schema.object([("name", Schema.string), ("price", Schema.integer)], required: []),
                     successSchema: Schema.ref("Product"), errorStatuses: [404]),
        APIOperation("POST", "/api/products/{id}/restock", "Add units to the stock (seller or admin)", tag: "Catalog",
                     access: .user, requestBody: Schema.object([("quantity", Schema.integer)], required: ["quantity"]),
                     successSchema: Schema.ref("Product"), errorStatuses: [404]),
        APIOperation("POST", "/api/products/{id}/publish", "Draft or disabled → active (seller or admin)", tag: "Catalog",
                     access: .user, successSchema: Schema.ref("Product"), errorStatuses: [404, 409]),
        APIOperation("GET", "/api/products/{id}/impact", "What taking the product off sale would touch (seller or admin)",
                     tag: "Admin safety", access: .user, successSchema: Schema.ref("Impact"), errorStatuses: [404]),
        APIOperation("POST", "/api/products/{id}/disable", "active → disabled; needs confirm (seller or admin)",
                     tag: "Admin safety", access: .user, requestBody: Schema.confirmBody,
                     successSchema: Schema.ref("Product"), errorStatuses: [404, 409]),
        APIOperation("POST", "/api/products/{id}/archive",
                     "disabled → archived once no order is open; needs confirm (seller or admin)", tag: "Admin safety",
                     access: .user, requestBody: Schema.confirmBody, successSchema: Schema.ref("Product"),
                     errorStatuses: [404, 409]),
        APIOperation("DELETE", "/api/products/{id}",
                     "Soft delete (not from active, not while an order is open); needs confirm (seller or admin)",
                     tag: "Admin safety", access: .user, requestBody: Schema.confirmBody,
                     successSchema: Schema.ref("Product"), errorStatuses: [404, 409], query: ["confirm"]),
        APIOperation("POST", "/api/products/{id}/restore", "Undo a delete within 30 days; back to disabled",
                     tag: "Admin safety", access: .user, successSchema: Schema.ref("Product"), errorStatuses: [404, 409]),
        APIOperation("POST", "/api/products/bulk-disable", "Disable up to 500 active products, all or none; needs confirm",
                     tag: "Admin safety", access: .admin,
                     requestBody: Schema.object(
                        [("ids", .object(["type": "array", "maxItems": 500, "items": Schema.uuid])), ("confirm", Schema.boolean)],
                        required: ["ids"]),
                     successSchema: Schema.object(
                        [("disabled", Schema.integer), ("products", .object(["type": "array", "items": Schema.ref("Product")]))],
                        required: ["disabled", "products"]),
                     errorStatuses: [409]),
        APIOperation("POST", "/api/orders", "Place an order: stock and payment in one step; accepts Idempotency-Key",
                     tag: "Orders", access: .user,
                     requestBody: Schema.object(
                        [("walletId", Schema.uuid),
                         ("items", .object(["type": "array", "maxItems": 100, "items": Schema.object(
                            [("productId", Schema.uuid), ("quantity", Schema.integer)], required: ["productId", "quantity"])])),
                         ("destination", Schema.object(
                            [("country", Schema.string), ("postalCode", Schema.string)], required: ["country", "postalCode"]))],
                        required: ["walletId", "items", "destination"]),
                     successStatus: 201, successSchema: Schema.ref("Order"), errorStatuses: [404, 409, 503]),
        APIOperation("GET", "/api/orders/{id}", "An order (buyer or admin)", tag: "Orders", access: .user,
                     successSchema: Schema.ref("Order"), errorStatuses: [404]),
        APIOperation("POST", "/api/orders/{id}/ship", "paid → shipped", tag: "Orders", access: .admin,
                     successSchema: Schema.ref("Order"), errorStatuses: [404, 409]),
        APIOperation("POST", "/api/orders/{id}/deliver", "shipped → delivered", tag: "Orders", access: .admin,
                     successSchema: Schema.ref("Order"), errorStatuses: [404, 409]),
        APIOperation("POST", "/api/orders/{id}/cancel", "paid → cancelled: stock and money back in one step (buyer or admin)",
                     tag: "Orders", access: .user, successSchema: Schema.ref("Order"), errorStatuses: [404, 409]),
        APIOperation("POST", "/api/listings", "Create a listing (mirrored to the shadow store after commit)", tag: "Listings",
                     access: .user,
                     requestBody: Schema.object([("title", Schema.string), ("price", Schema.integer)], required: ["title", "price"]),
                     successStatus: 201, successSchema: Schema.ref("Listing")),
        APIOperation("GET", "/api/listings", "Listings in creation order; deleted ones hidden", tag: "Listings", access: .user,
                     successSchema: Schema.page(Schema.ref("Listing")), errorStatuses: [422], query: ["limit", "cursor"]),
        APIOperation("GET", "/api/listings/{id}", "A listing", tag: "Listings", access: .user,
                     successSchema: Schema.ref("Listing"), errorStatuses: [404]),
        APIOperation("PATCH", "/api/listings/{id}", "Change title and/or price (owner or admin); the version goes up",
                     tag: "Listings", access: .user,
                     requestBody: Schema.object([("title", Schema.string), ("price", Schema.integer)], required: []),
                     successSchema: Schema.ref("Listing"), errorStatuses: [404]),
        APIOperation("DELETE", "/api/listings/{id}", "Delete a listing (owner or admin)", tag: "Listings", access: .user,
                     successSchema: Schema.ref("Listing"), errorStatuses: [404]),
        APIOperation("GET", "/api/admin/jobs", "Background jobs, their schedule and last run", tag: "Jobs", access: .admin,
                     successSchema: .object(["type": "array", "items": Schema.ref("Job")])),
        APIOperation("POST", "/api/admin/jobs/{name}/trigger",
                     "Run a job now and answer its result (?repair=true for the verifier)", tag: "Jobs", access: .admin,
                     successSchema: Schema.ref("JobRun"), errorStatuses: [404, 409, 422], query: ["repair"]),
        APIOperation("GET", "/api/admin/discrepancies", "What the shadow verifier found, newest first", tag: "Jobs",
                     access: .admin, successSchema: Schema.page(Schema.ref("Discrepancy")), errorStatuses: [422],
                     query: ["status", "limit", "cursor"]),
        APIOperation("GET", "/api/admin/chaos", "Fault-injection settings in force", tag: "Chaos", access: .admin,
                     successSchema: Schema.ref("Chaos")),
        APIOperation("PUT", "/api/admin/chaos", "Change fault injection at run time (the kill switch)", tag: "Chaos",
                     access: .admin,
                     requestBody: Schema.object(
                        [("enabled", Schema.boolean), ("failRate", Schema.number),
                         ("scope", Schema.enumeration(["shadow_write_only", "all_writes", "reads"])), ("seed", Schema.string),
                         ("durationSeconds", Schema.nullable(Schema.integer)), ("latencyMilliseconds", Schema.integer),
                         ("reason", Schema.string)],
                        required: []),
                     successSchema: Schema.ref("Chaos"), errorStatuses: [409]),
        APIOperation("GET", "/api/admin/evidence", "Evidence records in chain order", tag: "Evidence", access: .admin,
                     successSchema: Schema.page(Schema.ref("EvidenceRecord")), errorStatuses: [422],
                     query: ["eventType", "entityType", "entityId", "since", "limit", "cursor"]),
        APIOperation("GET", "/api/admin/evidence/verify", "Recompute the hash chain", tag: "Evidence", access: .admin,
                     successSchema: Schema.ref("Verification"), errorStatuses: [422], query: ["digest"]),
    ]

    static let components: [String: JSONValue] = [
        "Error": Schema.object([
            ("error", Schema.object(
                [("code", Schema.string), ("message", Schema.string), ("details", Schema.anyObject)],
                required: ["code", "message", "details"])),
        ], required: ["error"]),
        "User": Schema.object(
            [("id", Schema.uuid), ("name", Schema.string), ("role", Schema.enumeration(Role.allCases.map(\.rawValue))),
             ("createdAt", Schema.dateTime)],
            required: ["id", "name", "role", "createdAt"]),
        "CreatedUser": Schema.object(
            [("id", Schema.uuid), ("name", Schema.string), ("role", Schema.enumeration(Role.allCases.map(\.rawValue))),
             ("createdAt", Schema.dateTime), ("token", Schema.string)],
            required: ["id", "name", "role", "createdAt", "token"]),
        "Health": Schema.object([
            ("status", Schema.enumeration(["ok", "degraded", "down"])),
            ("version", Schema.string), ("environment", Schema.string), ("uptimeSeconds", Schema.integer),
            ("checks", Schema.object(
                [("database", Schema.enumeration(["ok", "down"])),
                 ("shadow", Schema.enumeration(["ok", "down", "disabled"]))],
                required: ["database", "shadow"])),
            ("chaos", Schema.object(
                [("enabled", Schema.boolean), ("failRate", Schema.number), ("scope", Schema.string),
                 ("seed", Schema.string), ("expiresAt", Schema.nullable(Schema.dateTime)),
                 ("reason", Schema.nullable(Schema.string))],
                required: ["enabled", "failRate", "scope", "seed", "expiresAt"])),
        ], required: ["status", "version", "environment", "uptimeSeconds", "checks", "chaos"]),
        "Chaos": Schema.object(
            [("enabled", Schema.boolean), ("failRate", Schema.number), ("scope", Schema.string), ("seed", Schema.string),
             ("expiresAt", Schema.nullable(Schema.dateTime)), ("durationSeconds", Schema.nullable(Schema.integer)),
             ("latencyMilliseconds", Schema.integer), ("abortErrorRate", Schema.number), ("version", Schema.integer),
             ("reason", Schema.nullable(Schema.string))],
            required: ["enabled", "failRate", "scope", "seed", "expiresAt", "durationSeconds", "latencyMilliseconds",
                       "abortErrorRate", "version", "reason"]),
        "EvidenceRecord": Schema.object(
            [("id", Schema.uuid), ("seq", Schema.integer), ("occurredAt", Schema.dateTime), ("controlId", Schema.string),
             ("category", Schema.string), ("eventType", Schema.string), ("eventOutcome", Schema.string),
             ("entityType", Schema.nullable(Schema.string)), ("entityId", Schema.nullable(Schema.string)),
             ("requestId", Schema.nullable(Schema.string)), ("details", Schema.anyObject),
             ("contentHash", Schema.string), ("previousHash", Schema.string)],
            required: ["id", "seq", "occurredAt", "controlId", "category", "eventType", "eventOutcome", "details",
                       "contentHash", "previousHash"]),
        "Verification": Schema.object(
            [("records", Schema.integer), ("valid", Schema.boolean), ("firstInvalidId", Schema.nullable(Schema.string)),
             ("firstInvalidSeq", Schema.nullable(Schema.integer)), ("failure", Schema.nullable(Schema.string)),
             ("headSeq", Schema.integer), ("headHash", Schema.string)],
            required: ["records", "valid", "firstInvalidId"]),
        "Wallet": Schema.object(
            [("id", Schema.uuid), ("ownerId", Schema.uuid), ("currency", Schema.string), ("balance", Schema.integer),
             ("createdAt", Schema.dateTime)],
            required: ["id", "ownerId", "currency", "balance", "createdAt"]),
        "LedgerEntry": Schema.object(
            [("id", Schema.uuid), ("kind", Schema.enumeration(["credit", "debit"])), ("amount", Schema.integer),
             ("balanceAfter", Schema.integer), ("reference", Schema.nullable(Schema.string)), ("createdAt", Schema.dateTime)],
            required: ["id", "kind", "amount", "balanceAfter", "reference", "createdAt"]),
        "Movement": Schema.object(
            [("wallet", Schema.ref("Wallet")), ("transaction", Schema.ref("LedgerEntry"))], required: ["wallet", "transaction"]),
        "Transfer": Schema.object(
            [("id", Schema.uuid), ("amount", Schema.integer), ("from", Schema.ref("Wallet")), ("to", Schema.ref("Wallet"))],
            required: ["id", "amount", "from", "to"]),
        "Product": Schema.object(
            [("id", Schema.uuid), ("sellerId", Schema.uuid), ("sku", Schema.string), ("name", Schema.string),
             ("price", Schema.integer), ("currency", Schema.string), ("stock", Schema.integer),
             ("status", Schema.enumeration(ProductStatus.allCases.map(\.rawValue))), ("createdAt", Schema.dateTime),
             ("updatedAt", Schema.dateTime), ("deletedAt", Schema.nullable(Schema.dateTime))],
            required: ["id", "sellerId", "sku", "name", "price", "currency", "stock", "status", "createdAt", "updatedAt",
                       "deletedAt"]),
        "Listing": Schema.object(
            [("id", Schema.uuid), ("ownerId", Schema.uuid), ("title", Schema.string), ("price", Schema.integer),
             ("version", Schema.integer), ("createdAt", Schema.dateTime), ("updatedAt", Schema.dateTime),
             ("deletedAt", Schema.nullable(Schema.dateTime))],
            required: ["id", "ownerId", "title", "price", "version", "createdAt", "updatedAt", "deletedAt"]),
        "Job": Schema.object(
            [("name", Schema.string), ("intervalSeconds", Schema.integer), ("enabled", Schema.boolean), ("running", Schema.boolean),
             ("lastRunAt", Schema.nullable(Schema.dateTime)), ("lastStatus", Schema.nullable(Schema.string)),
             ("lastDurationSeconds", Schema.nullable(Schema.number)), ("nextRunAt", Schema.nullable(Schema.dateTime))],
            required: ["name", "intervalSeconds", "enabled", "running", "lastRunAt", "lastStatus", "lastDurationSeconds",
                       "nextRunAt"]),
        "JobRun": Schema.object(
            [("name", Schema.string), ("status", Schema.enumeration(["succeeded", "failed"])),
             ("durationSeconds", Schema.number), ("result", Schema.anyObject)],
            required: ["name", "status", "durationSeconds", "result"]),
        "Discrepancy": Schema.object(
            [("id", Schema.uuid), ("entityType", Schema.string), ("entityId", Schema.string),
             ("discrepancyType", Schema.enumeration(["missing_in_shadow", "missing_in_primary", "mismatch"])),
             ("fields", .object(["type": "array", "items": Schema.string])), ("expected", Schema.boolean),
             ("status", Schema.enumeration(["open", "resolved"])), ("detectedAt", Schema.dateTime),
             ("resolvedAt", Schema.nullable(Schema.dateTime)), ("resolution", Schema.nullable(Schema.string))],
            required: ["id", "entityType", "entityId", "discrepancyType", "fields", "expected", "status", "detectedAt",
                       "resolvedAt", "resolution"]),
        "Impact": Schema.object(
            [("productId", Schema.uuid), ("status", Schema.enumeration(ProductStatus.allCases.map(\.rawValue))),
             ("stock", Schema.integer), ("openOrders", Schema.integer), ("awaitingShipment", Schema.integer),
             ("inTransit", Schema.integer), ("unitsInOpenOrders", Schema.integer), ("revenueAtRisk", Schema.integer)],
            required: ["productId", "status", "stock", "openOrders", "awaitingShipment", "inTransit", "unitsInOpenOrders",
                       "revenueAtRisk"]),
        "Order": Schema.object(
            [("id", Schema.uuid), ("status", Schema.enumeration(OrderStatus.allCases.map(\.rawValue))),
             ("buyerId", Schema.uuid), ("walletId", Schema.uuid),
             ("items", .object(["type": "array", "items": Schema.object(
                [("productId", Schema.uuid), ("quantity", Schema.integer), ("unitPrice", Schema.integer)],
                required: ["productId", "quantity", "unitPrice"])])),
             ("subtotal", Schema.integer), ("shipping", Schema.integer), ("total", Schema.integer), ("currency", Schema.string),
             ("shippingSource", Schema.enumeration(["provider", "fallback"])),
             ("destination", Schema.object([("country", Schema.string), ("postalCode", Schema.string)],
                                           required: ["country", "postalCode"])),
             ("createdAt", Schema.dateTime), ("updatedAt", Schema.dateTime)],
            required: ["id", "status", "buyerId", "walletId", "items", "subtotal", "shipping", "total", "currency",
                       "shippingSource", "destination", "createdAt", "updatedAt"]),
        "Ready": Schema.object(
            [("ready", Schema.boolean), ("database", Schema.string), ("migrated", Schema.boolean)],
            required: ["ready", "database", "migrated"]),
    ]

    static func document() -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for operation in operations {
            paths[operation.path, default: [:]][operation.method.lowercased()] = operation.document
        }
        return .object([
            "openapi": .string("3.0.3"),
            "info": .object([
                "title": .string("Ballast"),
                "version": .string(BallastVersion.current),
                "description": .string(
                    "Marketplace backend. Money is an integer count of minor units; ids are UUIDs; times are RFC 3339 UTC."),
            ]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object([
                "schemas": .object(components),
                "securitySchemes": .object([
                    "bearerAuth": .object(["type": .string("http"), "scheme": .string("bearer")]),
                ]),
            ]),
        ])
    }
}
