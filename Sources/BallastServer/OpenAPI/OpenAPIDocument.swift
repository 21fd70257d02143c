import BallastConfig
import BallastCore
import Commerce
import Operations

/// The OpenAPI 3 document served at `GET /openapi.json`. Every route the router registers is listed in
/// ``operations``; a test fails when one is missing or when an operation has no route.
enum OpenAPIDocument {
    /// Every documented operation, as this server (its environment, its jobs) answers them.
    static func operations(environment: AppEnvironment, jobNames: [String]) -> [APIOperation] {
        let key = [IdempotencyStore.keyHeader]
        func links(_ resource: String, _ operations: [(String, String)]) -> [APIOperation.Link] {
            operations.map { APIOperation.Link.id($0.0, $0.1) }
        }
        let newId: JSONValue = "$response.body#/id"
        return [
            APIOperation("GET", "/health", "Liveness, checks and chaos state; 503 (same body) when the primary is down",
                         tag: "Operations", access: .anyone, successSchema: Schema.ref("Health"), errorStatuses: [503],
                         statusSchemas: [503: Schema.ref("Health")]),
            APIOperation("GET", "/health/ready", "Ready once migrated and the primary store answers", tag: "Operations",
                         access: .anyone, successSchema: Schema.ref("Ready"), errorStatuses: [503],
                         statusSchemas: [503: Schema.ref("Ready")]),
            APIOperation("GET", "/metrics", "Prometheus text format", tag: "Operations", access: .anyone),
            APIOperation("GET", "/openapi.json", "This document", tag: "Operations", access: .anyone,
                         successSchema: Schema.anyObject),
            APIOperation("POST", "/api/users", "Create a user; the token is shown once", tag: "Users", access: .admin,
                         body: NewUserRequest.shape, successStatus: 201, successSchema: Schema.ref("CreatedUser")),
            APIOperation("GET", "/api/users/me", "The caller", tag: "Users", access: .user, successSchema: Schema.ref("User")),
            APIOperation("POST", "/api/wallets", "Open a wallet (USD unless another currency is given)", tag: "Wallets",
                         access: .user, body: NewWalletRequest.shape, successStatus: 201, successSchema: Schema.ref("Wallet"),
                         links: links("wallet", [("GetWallet", "getApiWalletsId"), ("CreditWallet", "postApiWalletsIdCredit"),
                                                 ("DebitWallet", "postApiWalletsIdDebit"),
                                                 ("WalletTransactions", "getApiWalletsIdTransactions")])
                            + [APIOperation.Link(name: "TransferFromWallet", operationId: "postApiTransfers",
                                                 body: ["fromWalletId": newId]),
                               APIOperation.Link(name: "OrderWithWallet", operationId: "postApiOrders", body: ["walletId": newId])]),
            APIOperation("GET", "/api/wallets/{id}", "A wallet (owner or admin)", tag: "Wallets", access: .user,
                         successSchema: Schema.ref("Wallet")),
            APIOperation("POST", "/api/wallets/{id}/credit", "Top up a wallet (admin); accepts Idempotency-Key", tag: "Wallets",
                         access: .admin, body: MovementRequest.shape, successSchema: Schema.ref("Movement"), headers: key),
            APIOperation("POST", "/api/wallets/{id}/debit", "Withdraw from a wallet; accepts Idempotency-Key", tag: "Wallets",
                         access: .user, body: MovementRequest.shape, successSchema: Schema.ref("Movement"),
                         errorStatuses: [409], headers: key),
            APIOperation("POST", "/api/transfers", "Move money between wallets of one currency; accepts Idempotency-Key",
                         tag: "Wallets", access: .user, body: TransferRequest.shape, successStatus: 201,
                         successSchema: Schema.ref("Transfer"), errorStatuses: [404, 409], headers: key),
            APIOperation("GET", "/api/wallets/{id}/transactions", "The ledger, newest first", tag: "Wallets", access: .user,
                         successSchema: Schema.page(Schema.ref("LedgerEntry")),
                         query: [ListQuery.limit, ListQuery.sequenceCursor]),
            APIOperation("POST", "/api/products", "Offer a product (the caller becomes its seller); starts as a draft",
                         tag: "Catalog", access: .user, body: NewProduct.shape, successStatus: 201,
                         successSchema: Schema.ref("Product"), errorStatuses: [409],
                         links: links("product", [("GetProduct", "getApiProductsId"), ("EditProduct", "patchApiProductsId"),
                                                  ("RestockProduct", "postApiProductsIdRestock"),
                                                  ("PublishProduct", "postApiProductsIdPublish"),
                                                  ("ProductImpact", "getApiProductsIdImpact"),
                                                  ("DisableProduct", "postApiProductsIdDisable"),
                                                  ("ArchiveProduct", "postApiProductsIdArchive"),
                                                  ("DeleteProduct", "deleteApiProductsId"),
                                                  ("RestoreProduct", "postApiProductsIdRestore")])
                            + [APIOperation.Link(name: "OrderProduct", operationId: "postApiOrders",
                                                 body: ["items": [["productId": newId, "quantity": 1]]])]),
            APIOperation("GET", "/api/products", "Products in creation order; deleted ones hidden", tag: "Catalog",
                         access: .user, successSchema: Schema.page(Schema.ref("Product")), errorStatuses: [403],
                         query: ProductQuery.list),
            APIOperation("GET", "/api/products/{id}", "A product", tag: "Catalog", access: .user,
                         successSchema: Schema.ref("Product"), errorStatuses: [403],
                         query: [ProductQuery.includeDeleted]),
            APIOperation("PATCH", "/api/products/{id}", "Change name and/or price (seller or admin)", tag: "Catalog",
                         access: .user, body: ProductEdit.shape, successSchema: Schema.ref("Product")),
            APIOperation("POST", "/api/products/{id}/restock", "Add units to the stock (seller or admin)", tag: "Catalog",
                         access: .user, body: RestockRequest.shape, successSchema: Schema.ref("Product")),
            APIOperation("POST", "/api/products/{id}/publish", "Draft or disabled → active (seller or admin)", tag: "Catalog",
                         access: .user, successSchema: Schema.ref("Product"), errorStatuses: [409]),
            APIOperation("GET", "/api/products/{id}/impact", "What taking the product off sale would touch (seller or admin)",
                         tag: "Admin safety", access: .user, successSchema: Schema.ref("Impact")),
            APIOperation("POST", "/api/products/{id}/disable", "active → disabled; needs confirm (seller or admin)",
                         tag: "Admin safety", access: .user, body: ConfirmRequest.shape, bodyRequired: false,
                         successSchema: Schema.ref("Product"), errorStatuses: [409]),
            APIOperation("POST", "/api/products/{id}/archive",
                         "disabled → archived once no order is open; needs confirm (seller or admin)", tag: "Admin safety",
                         access: .user, body: ConfirmRequest.shape, bodyRequired: false, successSchema: Schema.ref("Product"),
                         errorStatuses: [409]),
            APIOperation("DELETE", "/api/products/{id}",
                         "Soft delete (not from active, not while an order is open); needs confirm (seller or admin)",
                         tag: "Admin safety", access: .user, body: ConfirmRequest.shape, bodyRequired: false,
                         successSchema: Schema.ref("Product"), errorStatuses: [409],
                         query: [ConfirmQuery.confirm]),
            APIOperation("POST", "/api/products/{id}/restore", "Undo a delete within 30 days; back to disabled",
                         tag: "Admin safety", access: .user, successSchema: Schema.ref("Product"), errorStatuses: [409]),
            APIOperation("POST", "/api/products/bulk-disable", "Disable up to 500 active products, all or none; needs confirm",
                         tag: "Admin safety", access: .admin, body: BulkDisableRequest.shape,
                         successSchema: Schema.object(
                            [("disabled", Schema.integer), ("products", Schema.array(Schema.ref("Product")))],
                            required: ["disabled", "products"]),
                         errorStatuses: [404, 409]),
            APIOperation("POST", "/api/orders", "Place an order: stock and payment in one step; accepts Idempotency-Key",
                         tag: "Orders", access: .user, body: OrderRequest.shape, successStatus: 201,
                         successSchema: Schema.ref("Order"), errorStatuses: [404, 409, 503], headers: key,
                         links: links("order", [("GetOrder", "getApiOrdersId"), ("ShipOrder", "postApiOrdersIdShip"),
                                                ("DeliverOrder", "postApiOrdersIdDeliver"),
                                                ("CancelOrder", "postApiOrdersIdCancel")])),
            APIOperation("GET", "/api/orders/{id}", "An order (buyer or admin)", tag: "Orders", access: .user,
                         successSchema: Schema.ref("Order")),
            APIOperation("POST", "/api/orders/{id}/ship", "paid → shipped", tag: "Orders", access: .admin,
                         successSchema: Schema.ref("Order"), errorStatuses: [409]),
            APIOperation("POST", "/api/orders/{id}/deliver", "shipped → delivered", tag: "Orders", access: .admin,
                         successSchema: Schema.ref("Order"), errorStatuses: [409]),
            APIOperation("POST", "/api/orders/{id}/cancel", "paid → cancelled: stock and money back in one step (buyer or admin)",
                         tag: "Orders", access: .user, successSchema: Schema.ref("Order"), errorStatuses: [409]),
            APIOperation("POST", "/api/listings", "Create a listing (mirrored to the shadow store after commit)", tag: "Listings",
                         access: .user, body: NewListing.shape, successStatus: 201, successSchema: Schema.ref("Listing"),
                         links: links("listing", [("GetListing", "getApiListingsId"), ("EditListing", "patchApiListingsId"),
                                                  ("DeleteListing", "deleteApiListingsId")])),
            APIOperation("GET", "/api/listings", "Listings in creation order; deleted ones hidden", tag: "Listings", access: .user,
                         successSchema: Schema.page(Schema.ref("Listing")), query: [ListQuery.limit, ListQuery.timeCursor]),
            APIOperation("GET", "/api/listings/{id}", "A listing", tag: "Listings", access: .user,
                         successSchema: Schema.ref("Listing")),
            APIOperation("PATCH", "/api/listings/{id}", "Change title and/or price (owner or admin); the version goes up",
                         tag: "Listings", access: .user, body: ListingEdit.shape, successSchema: Schema.ref("Listing")),
            APIOperation("DELETE", "/api/listings/{id}", "Delete a listing (owner or admin)", tag: "Listings", access: .user,
                         successSchema: Schema.ref("Listing")),
            APIOperation("GET", "/api/admin/jobs", "The background jobs and their last runs", tag: "Jobs", access: .admin,
                         successSchema: Schema.array(Schema.ref("Job"))),
            APIOperation("POST", "/api/admin/jobs/{name}/trigger", "Run a job now and answer its result", tag: "Jobs",
                         access: .admin, successSchema: Schema.ref("JobRun"), errorStatuses: [404, 409],
                         query: [JobQuery.repair], pathKinds: ["name": .choice(jobNames)]),
            APIOperation("GET", "/api/admin/discrepancies", "What the shadow verifier found", tag: "Jobs", access: .admin,
                         successSchema: Schema.page(Schema.ref("Discrepancy")),
                         query: JobQuery.discrepancies),
            APIOperation("GET", "/api/admin/notifications", "The notification outbox", tag: "Notifications",
                         access: .admin, successSchema: Schema.page(Schema.ref("Notification")),
                         query: NotificationQuery.list,
                         links: [APIOperation.Link(name: "RetryNotification", operationId: "postApiAdminNotificationsIdRetry",
                                                   parameters: ["id": "$response.body#/items/0/id"])]),
            APIOperation("POST", "/api/admin/notifications/{id}/retry", "Send a dead notification round again",
                         tag: "Notifications", access: .admin, successSchema: Schema.ref("Notification"), errorStatuses: [409]),
            APIOperation("GET", "/api/admin/chaos", "Fault-injection settings in force", tag: "Chaos", access: .admin,
                         successSchema: Schema.ref("Chaos")),
            APIOperation("PUT", "/api/admin/chaos", "Change fault injection at run time (the kill switch)", tag: "Chaos",
                         access: .admin, body: ChaosUpdateRequest.shape(for: environment), successSchema: Schema.ref("Chaos"),
                         errorStatuses: environment == .production ? [409] : []),
            APIOperation("GET", "/api/admin/evidence", "Evidence records in chain order", tag: "Evidence", access: .admin,
                         successSchema: Schema.page(Schema.ref("EvidenceRecord")), query: EvidenceQuery.list),
            APIOperation("GET", "/api/admin/evidence/verify", "Recompute the hash chain", tag: "Evidence", access: .admin,
                         successSchema: Schema.ref("Verification"), query: [EvidenceQuery.digest]),
        ]
    }

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
            [("id", Schema.uuid), ("kind", Schema.enumeration(LedgerEntry.Kind.allCases.map(\.rawValue))), ("amount", Schema.integer),
             ("balanceAfter", Schema.integer), ("reference", Schema.nullable(Schema.string)), ("createdAt", Schema.dateTime)],
            required: ["id", "kind", "amount", "balanceAfter", "reference", "createdAt"]),
        "Movement": Schema.object(
            [("wallet", Schema.ref("Wallet")), ("transaction", Schema.ref("LedgerEntry"))], required: ["wallet", "transaction"]),
        // `to` is the whole wallet only for its owner or an admin; anyone else sees its id alone (SPEC I11).
        "Transfer": Schema.object(
            [("id", Schema.uuid), ("amount", Schema.integer), ("from", Schema.ref("Wallet")),
             ("to", .object(["anyOf": .array([
                 Schema.ref("Wallet"),
                 .object(["type": "object", "properties": .object(["id": Schema.uuid]), "required": .array(["id"]),
                          "additionalProperties": false]),
             ])]))],
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
             ("lastRunAt", Schema.nullable(Schema.dateTime)), ("lastStatus", Schema.nullable(Schema.enumeration(JobRunStatus.allCases.map(\.rawValue)))),
             ("lastDurationSeconds", Schema.nullable(Schema.number)), ("nextRunAt", Schema.nullable(Schema.dateTime))],
            required: ["name", "intervalSeconds", "enabled", "running", "lastRunAt", "lastStatus", "lastDurationSeconds",
                       "nextRunAt"]),
        "JobRun": Schema.object(
            [("name", Schema.string), ("status", Schema.enumeration(JobRunStatus.allCases.map(\.rawValue))),
             ("durationSeconds", Schema.number), ("result", Schema.anyObject)],
            required: ["name", "status", "durationSeconds", "result"]),
        "Discrepancy": Schema.object(
            [("id", Schema.uuid), ("entityType", Schema.string), ("entityId", Schema.string),
             ("discrepancyType", Schema.enumeration(DiscrepancyKind.allCases.map(\.rawValue))),
             ("fields", .object(["type": "array", "items": Schema.string])), ("expected", Schema.boolean),
             ("status", Schema.enumeration(Discrepancies.Status.allCases.map(\.rawValue))), ("detectedAt", Schema.dateTime),
             ("resolvedAt", Schema.nullable(Schema.dateTime)), ("resolution", Schema.nullable(Schema.string))],
            required: ["id", "entityType", "entityId", "discrepancyType", "fields", "expected", "status", "detectedAt",
                       "resolvedAt", "resolution"]),
        "Notification": Schema.object(
            [("id", Schema.uuid), ("channel", Schema.enumeration(NotificationChannel.allCases.map(\.rawValue))), ("recipient", Schema.string),
             ("template", Schema.string), ("orderId", Schema.nullable(Schema.uuid)),
             ("status", Schema.enumeration(NotificationAdmin.Status.allCases.map(\.rawValue))), ("attempts", Schema.integer),
             ("nextAttemptAt", Schema.dateTime), ("lastError", Schema.nullable(Schema.string)), ("createdAt", Schema.dateTime),
             ("sentAt", Schema.nullable(Schema.dateTime))],
            required: ["id", "channel", "recipient", "template", "orderId", "status", "attempts", "nextAttemptAt", "lastError",
                       "createdAt", "sentAt"]),
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
             ("shippingSource", Schema.enumeration(ShippingQuote.Source.allCases.map(\.rawValue))),
             ("destination", Schema.object([("country", Schema.string), ("postalCode", Schema.string)],
                                           required: ["country", "postalCode"])),
             ("createdAt", Schema.dateTime), ("updatedAt", Schema.dateTime)],
            required: ["id", "status", "buyerId", "walletId", "items", "subtotal", "shipping", "total", "currency",
                       "shippingSource", "destination", "createdAt", "updatedAt"]),
        "Ready": Schema.object(
            [("ready", Schema.boolean), ("database", Schema.string), ("migrated", Schema.boolean)],
            required: ["ready", "database", "migrated"]),
    ]

    static func document(environment: AppEnvironment, jobNames: [String]) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for operation in operations(environment: environment, jobNames: jobNames) {
            paths[operation.path, default: [:]][operation.method.lowercased()] = operation.document
        }
        return .object([
            "openapi": "3.0.3",
            "info": .object([
                "title": "Ballast",
                "version": .string(BallastVersion.current),
                "description": .string(
                    "Marketplace backend. Money is an integer count of minor units; ids are UUIDs; times are RFC 3339 UTC. "
                        + "Text is printable Unicode (no control characters), its lengths counted in Unicode scalar values; "
                        + "request bodies may hold only the fields listed."),
            ]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object([
                "schemas": .object(components),
                "securitySchemes": .object([
                    "bearerAuth": .object(["type": "http", "scheme": "bearer"]),
                ]),
            ]),
        ])
    }
}
