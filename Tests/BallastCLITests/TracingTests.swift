import AsyncHTTPClient
import BallastConfig
import BallastTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

extension ChildProcesses {
    /// Tracing as an operator turns it on: `ballast serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointed at a local
    /// receiver (OTLP/HTTP, JSON), one order placed, and its trace read back from what the receiver got.
    @Suite("Traces exported over OTLP", .serialized)
    struct TracingTests {
        /// A span as the receiver got it.
        struct ExportedSpan: Sendable, CustomStringConvertible {
            let traceId: String
            let spanId: String
            let parentSpanId: String
            let name: String
            /// OTLP's numbers: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
            let kind: Int
            let attributes: [String: String]
            /// OTLP's numbers: 0 unset, 1 ok, 2 error.
            let status: Int
            let serviceName: String

            var description: String { "\(name) [\(traceId)/\(spanId) ← \(parentSpanId)] \(attributes)" }
        }

        /// The peers of the server under test, on one loopback port: the OTLP receiver, the shipping provider and
        /// the notification webhook. Records what each got.
        final class Peers: Sendable {
            let spans = Mutex<[ExportedSpan]>([])
            let exportPaths = Mutex<Set<String>>([])
            /// Each request's `traceparent` fields (a request with two would be one the peer must treat as untraced).
            let quoteTraceParents = Mutex<[[String]]>([])
            let webhookTraceParents = Mutex<[[String]]>([])

            func router() -> Router<BasicRequestContext> {
                let router = Router()
                router.post("/v1/traces") { request, _ -> Response in
                    let body = try await request.body.collect(upTo: 16 << 20)
                    let parsed = Self.parse(Data(buffer: body))
                    self.exportPaths.withLock { _ = $0.insert(request.uri.path) }
                    self.spans.withLock { $0.append(contentsOf: parsed) }
                    return Response(status: .ok, headers: [.contentType: "application/json"],
                                    body: ResponseBody(byteBuffer: ByteBuffer(string: "{}")))
                }
                router.post("/quote") { request, _ -> Response in
                    self.quoteTraceParents.withLock { $0.append(request.headers[values: HTTPField.Name("traceparent")!]) }
                    return Response(status: .ok, headers: [.contentType: "application/json"],
                                    body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"amount":700,"currency":"USD"}"#)))
                }
                router.post("/notify") { request, _ -> Response in
                    self.webhookTraceParents.withLock { $0.append(request.headers[values: HTTPField.Name("traceparent")!]) }
                    return Response(status: .noContent)
                }
                return router
            }

            /// The spans of one OTLP/JSON export request.
            static func parse(_ data: Data) -> [ExportedSpan] {
                guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
                var spans: [ExportedSpan] = []
                for resourceSpans in root["resourceSpans"] as? [[String: Any]] ?? [] {
                    let resource = attributes((resourceSpans["resource"] as? [String: Any])?["attributes"])
                    for scopeSpans in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                        for span in scopeSpans["spans"] as? [[String: Any]] ?? [] {
                            spans.append(ExportedSpan(
                                traceId: hex(span["traceId"]), spanId: hex(span["spanId"]),
                                parentSpanId: hex(span["parentSpanId"]), name: span["name"] as? String ?? "",
                                kind: number(span["kind"]), attributes: attributes(span["attributes"]),
                                status: number((span["status"] as? [String: Any])?["code"]),
                                serviceName: resource["service.name"] ?? ""))
                        }
                    }
                }
                return spans
            }

            /// OTLP/JSON key-value lists as text.
            static func attributes(_ value: Any?) -> [String: String] {
                var result: [String: String] = [:]
                for pair in value as? [[String: Any]] ?? [] {
                    guard let key = pair["key"] as? String, let value = pair["value"] as? [String: Any],
                          let first = value.first
                    else { continue }
                    result[key] = "\(first.value)"
                }
                return result
            }

            static func number(_ value: Any?) -> Int {
                if let int = value as? Int { return int }
                if let text = value as? String { return Int(text) ?? -1 }
                return 0
            }

            /// Ids in lower-case hex, whether the exporter wrote hex (OTLP/JSON) or base64 (plain protobuf JSON).
            static func hex(_ value: Any?) -> String {
                guard let text = value as? String, !text.isEmpty else { return "" }
                if (text.count == 32 || text.count == 16), text.allSatisfy(\.isHexDigit) { return text.lowercased() }
                guard let bytes = Data(base64Encoded: text) else { return text }
                return bytes.map { String(format: "%02x", $0) }.joined()
            }
        }

        static func call(
            _ base: String, _ method: HTTPMethod, _ path: String, token: String, body: [String: Any]? = nil,
            headers: [(String, String)] = []
        ) async throws -> (status: UInt, json: [String: Any]) {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
            }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
            let reply = try await response.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(buffer: reply)) as? [String: Any]) ?? [:]
            return (response.status.code, json)
        }

        /// Waits (at most 30 s) until the server on `port` is ready, and answers its base URL.
        static func waitUntilReady(port: Int, _ child: BallastProcess) async throws -> String {
            let base = "http://127.0.0.1:\(port)"
            var ready = false
            for _ in 0..<300 where !ready {
                ready = (try? await CLITests.get(HTTPClient.shared, "\(base)/health/ready"))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            try #require(ready, "server did not become ready: \(child.readStderr())")
            return base
        }

        static func randomHex(bytes: Int) -> String {
            (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined()
        }

        /// One order placed with the caller's `traceparent` is one trace: the request's server span (a child of the
        /// caller's span), its database transactions and the shipping quote as its children, and, later and in
        /// another task, the notification's delivery and webhook call in the same trace; both peers got the trace in
        /// `traceparent`. A listing's shadow write continues the listing request's trace. Every log line of the
        /// traced request carries its `traceId`. A malformed `traceparent` starts a new trace and is not logged.
        @Test(arguments: TestStores.kinds)
        func oneOrderIsOneTrace(kind: StoreKind) async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let peers = Peers()
            try await LoopbackHTTPServer.run(peers.router()) { stub in
                try await TestStores.withFreshURL(kind) { url in
                    let port = try freeLoopbackPort()
                    let admin = String(repeating: "t", count: 40)
                    let child = try BallastProcess(["serve", "--port", String(port)], environment: [
                        "DATABASE_URL": CLITests.connectionString(url),
                        "SHADOW_DATABASE_URL": "sqlite:\(folder.path)/shadow.sqlite",
                        "BALLAST_ADMIN_TOKEN": admin,
                        "SHIPPING_RATES_URL": "\(stub.url)/quote",
                        "NOTIFY_WEBHOOK_URL": "\(stub.url)/notify",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": stub.url,
                        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                        "OTEL_BSP_SCHEDULE_DELAY": "100",
                        "OTEL_SERVICE_NAME": "ballast-under-test",
                    ], workingDirectory: folder)
                    defer { child.stop() }
                    let base = try await Self.waitUntilReady(port: port, child)

                    let wallet = try await Self.call(base, .POST, "/api/wallets", token: admin, body: [:])
                    try #require(wallet.status == 201, "\(wallet.json)")
                    let walletId = try #require(wallet.json["id"] as? String)
                    let credit = try await Self.call(base, .POST, "/api/wallets/\(walletId)/credit", token: admin,
                                                     body: ["amount": 100_000])
                    try #require(credit.status == 200, "\(credit.json)")
                    let product = try await Self.call(base, .POST, "/api/products", token: admin,
                                                      body: ["sku": "TRACE-1", "name": "Traced", "price": 1_500, "stock": 5])
                    try #require(product.status == 201, "\(product.json)")
                    let productId = try #require(product.json["id"] as? String)
                    let published = try await Self.call(base, .POST, "/api/products/\(productId)/publish", token: admin)
                    try #require(published.status == 200, "\(published.json)")

                    let listingTrace = Self.randomHex(bytes: 16)
                    let listing = try await Self.call(
                        base, .POST, "/api/listings", token: admin, body: ["title": "Traced listing", "price": 900],
                        headers: [("traceparent", "00-\(listingTrace)-\(Self.randomHex(bytes: 8))-01")])
                    try #require(listing.status == 201, "\(listing.json)")

                    let orderTrace = Self.randomHex(bytes: 16), callerSpan = Self.randomHex(bytes: 8)
                    let order = try await Self.call(
                        base, .POST, "/api/orders", token: admin,
                        body: ["walletId": walletId, "items": [["productId": productId, "quantity": 2]],
                               "destination": ["country": "US", "postalCode": "94107"]],
                        headers: [("traceparent", "00-\(orderTrace)-\(callerSpan)-01")])
                    try #require(order.status == 201, "\(order.json)")
                    #expect(order.json["shippingSource"] as? String == "provider")

                    // A malformed traceparent and an oversized tracestate: the request is served, in a trace of its own.
                    let badTrace = "00-" + String(repeating: "z", count: 32) + "-" + String(repeating: "1", count: 16) + "-01"
                    let other = try await Self.call(
                        base, .GET, "/api/users/me", token: admin,
                        headers: [("traceparent", badTrace), ("tracestate", String(repeating: "a=b,", count: 2_000))])
                    #expect(other.status == 200)
                    // A later version's traceparent (fields unknown) is not read either, and starts a new trace.
                    let laterVersion = "01-\(Self.randomHex(bytes: 16))-\(Self.randomHex(bytes: 8))-01"
                    let later = try await Self.call(base, .GET, "/api/users/me", token: admin,
                                                    headers: [("traceparent", laterVersion)])
                    #expect(later.status == 200)
                    // A good traceparent with a malformed tracestate: the trace goes on, the tracestate is dropped.
                    let keptTrace = Self.randomHex(bytes: 16), keptCaller = Self.randomHex(bytes: 8)
                    let kept = try await Self.call(
                        base, .GET, "/api/wallets/\(walletId)", token: admin,
                        headers: [("traceparent", "00-\(keptTrace)-\(keptCaller)-01"), ("tracestate", "Vendor=HOSTILE,,x")])
                    #expect(kept.status == 200)

                    // The notification is delivered later, by the dispatcher; wait for its spans and the shadow write's.
                    var complete = false
                    for _ in 0..<300 where !complete {
                        let names = peers.spans.withLock { spans in
                            spans.filter { $0.traceId == orderTrace || $0.traceId == listingTrace }.map(\.name)
                        }
                        complete = ["POST /api/orders", "shadow write", "POST /api/listings"].allSatisfy(names.contains)
                            && names.filter { $0 == "notification webhook" }.count == 2
                            // A delivery span ends after its webhook call's, so it may come in a later export.
                            && names.filter { $0 == "notification delivery" }.count == 2
                        if !complete { try await Task.sleep(for: .milliseconds(100)) }
                    }
                    let spans = peers.spans.withLock { $0 }
                    try #require(complete, "spans received: \(spans)")
                    #expect(peers.exportPaths.withLock { $0 } == ["/v1/traces"])
                    #expect(spans.allSatisfy { $0.serviceName == "ballast-under-test" })
                    // Housekeeping (claims, sweeps, leases) is not traced on its own: no database span is a root.
                    #expect(!spans.contains { $0.name.hasPrefix("db ") && $0.parentSpanId.isEmpty }, "\(spans)")

                    let inOrder = spans.filter { $0.traceId == orderTrace }
                    let server = try #require(inOrder.first { $0.name == "POST /api/orders" })
                    #expect(server.parentSpanId == callerSpan)
                    #expect(server.kind == 2)
                    #expect(server.attributes["http.route"] == "/api/orders")
                    #expect(server.attributes["http.response.status_code"] == "201")
                    let transactions = inOrder.filter { $0.name == "db transaction" && $0.parentSpanId == server.spanId }
                    #expect(!transactions.isEmpty, "\(inOrder)")
                    #expect(transactions.allSatisfy {
                        $0.kind == 3 && $0.attributes["db.system.name"] == (kind == .postgres ? "postgresql" : "sqlite")
                    })
                    let quote = try #require(inOrder.first { $0.name == "shipping quote" }, "\(inOrder)")
                    #expect(quote.parentSpanId == server.spanId)
                    #expect(quote.kind == 3)
                    #expect(quote.attributes["http.response.status_code"] == "200")
                    // Two notifications (the buyer's email, the seller's push): each delivery continues the transaction
                    // that wrote it and has exactly one webhook call as its child.
                    let deliveries = inOrder.filter { $0.name == "notification delivery" }
                    let webhooks = inOrder.filter { $0.name == "notification webhook" }
                    #expect(deliveries.count == 2 && webhooks.count == 2, "\(inOrder)")
                    #expect(deliveries.allSatisfy { delivery in transactions.contains { $0.spanId == delivery.parentSpanId } },
                            "the delivery continues the transaction that wrote the notification")
                    #expect(deliveries.allSatisfy { delivery in webhooks.filter { $0.parentSpanId == delivery.spanId }.count == 1 })
                    #expect(webhooks.allSatisfy { $0.attributes["ballast.delivery.outcome"] == "delivered" })
                    // Each peer got exactly one traceparent: the outbound call's span in the order's trace.
                    let quoteHeaders = peers.quoteTraceParents.withLock { $0 }
                    let webhookHeaders = peers.webhookTraceParents.withLock { $0 }
                    #expect(quoteHeaders.contains { $0 == ["00-\(orderTrace)-\(quote.spanId)-01"] }, "\(quoteHeaders)")
                    for webhook in webhooks {
                        #expect(webhookHeaders.contains { $0 == ["00-\(orderTrace)-\(webhook.spanId)-01"] }, "\(webhookHeaders)")
                    }
                    #expect((quoteHeaders + webhookHeaders).allSatisfy { $0.count == 1 })
                    #expect(([quote] + webhooks).allSatisfy { !$0.attributes.keys.contains { $0.hasPrefix("url.") } })
                    // Every span of the trace hangs off another span of it, except the server span (off the caller's).
                    let ids = Set(inOrder.map(\.spanId))
                    #expect(inOrder.allSatisfy { $0.spanId == server.spanId || ids.contains($0.parentSpanId) }, "\(inOrder)")

                    let inListing = spans.filter { $0.traceId == listingTrace }
                    let shadowWrite = try #require(inListing.first { $0.name == "shadow write" })
                    #expect(shadowWrite.attributes["ballast.shadow.operation"] == "create")
                    #expect(inListing.contains { $0.name == "db transaction" && $0.parentSpanId == shadowWrite.spanId },
                            "the shadow store's transaction is a child of the shadow write: \(inListing)")

                    let me = spans.filter { $0.name == "GET /api/users/me" }
                    #expect(me.count == 2 && me.allSatisfy { $0.parentSpanId.isEmpty }, "\(me)")
                    #expect(!me.contains { laterVersion.contains($0.traceId) })
                    let walletSpan = try #require(spans.first { $0.name == "GET /api/wallets/{id}" }, "\(spans)")
                    #expect(walletSpan.traceId == keptTrace && walletSpan.parentSpanId == keptCaller)

                    child.signal(SIGTERM)
                    #expect(try await child.wait(timeout: .seconds(30)) == 0, "\(child.readStderr())")
                    let lines = child.readStdout().split(separator: "\n")
                    let orderLines = lines.filter { $0.contains(#""route":"/api/orders""#) }
                    #expect(!orderLines.isEmpty)
                    #expect(orderLines.allSatisfy { $0.contains(#""traceId":"\#(orderTrace)""#) }, "\(orderLines)")
                    #expect(!child.readStdout().contains(admin) && !child.readStderr().contains(admin))
                    for hostile in ["zzzzzzzz", String(laterVersion.dropFirst(3).prefix(32)), "HOSTILE"] {
                        #expect(!child.readStdout().contains(hostile), "a refused trace header is not logged: \(hostile)")
                    }
                }
            }
        }

        /// A receiver that is down never breaks a sale: orders are placed as usual and the server stops cleanly.
        @Test func anUnreachableReceiverNeverBreaksASale() async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let port = try freeLoopbackPort(), receiver = try freeLoopbackPort()
            let admin = String(repeating: "u", count: 40)
            let child = try BallastProcess(["serve", "--port", String(port)], environment: [
                "DATABASE_URL": "sqlite:\(folder.path)/primary.sqlite",
                "SHADOW_DATABASE_URL": "none",
                "BALLAST_ADMIN_TOKEN": admin,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(receiver)",
                "OTEL_BSP_SCHEDULE_DELAY": "50",
                // The propagators many platforms set: baggage is not carried, and does not stop the server.
                "OTEL_PROPAGATORS": "tracecontext,baggage",
            ], workingDirectory: folder)
            defer { child.stop() }
            let base = try await Self.waitUntilReady(port: port, child)
            let wallet = try await Self.call(base, .POST, "/api/wallets", token: admin, body: [:])
            let walletId = try #require(wallet.json["id"] as? String)
            _ = try await Self.call(base, .POST, "/api/wallets/\(walletId)/credit", token: admin, body: ["amount": 100_000])
            let product = try await Self.call(base, .POST, "/api/products", token: admin,
                                              body: ["sku": "TRACE-2", "name": "Untraced", "price": 100, "stock": 300])
            let productId = try #require(product.json["id"] as? String)
            _ = try await Self.call(base, .POST, "/api/products/\(productId)/publish", token: admin)
            for _ in 0..<20 {
                let order = try await Self.call(
                    base, .POST, "/api/orders", token: admin,
                    body: ["walletId": walletId, "items": [["productId": productId, "quantity": 1]],
                           "destination": ["country": "US", "postalCode": "94107"]])
                #expect(order.status == 201, "\(order.json)")
                try await Task.sleep(for: .milliseconds(20))
            }
            let product2 = try await Self.call(base, .GET, "/api/products/\(productId)", token: admin)
            #expect(product2.json["stock"] as? Int == 280)
            child.signal(SIGTERM)
            #expect(try await child.wait(timeout: .seconds(30)) == 0, "\(child.readStderr())")
        }

        /// An `OTEL_*` value the exporter cannot use stops start-up with one line naming the variable (exit status 2),
        /// before the port is opened; the endpoint, which may carry credentials, is never repeated.
        @Test(arguments: [
            ("OTEL_PROPAGATORS", "b3", "invalid OTEL_PROPAGATORS=\"b3\""),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "invalid OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
            ("OTEL_TRACES_SAMPLER", "xray", "invalid OTEL_TRACES_SAMPLER=\"xray\""),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5", "invalid OTEL_TRACES_SAMPLER_ARG=\"1.5\""),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "abc", "invalid OTEL_BSP_MAX_QUEUE_SIZE=\"abc\""),
            ("OTEL_TRACES_EXPORTER", "console", "invalid OTEL_TRACES_EXPORTER=\"console\""),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://user:hunter2@example", "invalid OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:"),
        ])
        func aBadVariableStopsStartUpWithOneLine(name: String, value: String, expected: String) async throws {
            let folder = try CLITests.scratchFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let port = try freeLoopbackPort()
            let result = try await BallastProcess.run(["serve", "--port", String(port)], environment: [
                "DATABASE_URL": "sqlite:\(folder.path)/primary.sqlite",
                "SHADOW_DATABASE_URL": "none",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                name: value,
            ], workingDirectory: folder, timeout: .seconds(30))
            #expect(result.status == 2, "\(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("error: \(expected)"), "\(result.stderr)")
            #expect(!result.stderr.contains("hunter2") && !result.stdout.contains("hunter2"))
            #expect(!isListening(port: port))
        }
    }
}
