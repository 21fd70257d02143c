import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Commerce
import Testing

@Suite("Catalog", .timeLimit(.minutes(10)))
struct CatalogTests {
    @Test(arguments: TestStores.kinds)
    func aProductGoesFromDraftToActiveAndIsEditedAndRestocked(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let created = try await app.request(.post, "/api/products", token: seller,
                                                body: #"{"sku":"mug-1","name":" Blue mug ","price":1250,"stock":7}"#)
            #expect(created.status == .created)
            let id = try #require(created.json["id"] as? String)
            #expect(created.json["status"] as? String == "draft")
            #expect(created.json["name"] as? String == "Blue mug")
            #expect(created.json["price"] as? Int == 1250)
            #expect(created.json["stock"] as? Int == 7)
            #expect(created.json["deletedAt"] is NSNull)
            let me = try await app.request(.get, "/api/users/me", token: seller)
            #expect(created.json["sellerId"] as? String == me.json["id"] as? String)

            let published = try await app.request(.post, "/api/products/\(id)/publish", token: seller)
            #expect(published.status == .ok)
            #expect(published.json["status"] as? String == "active")
            // Publishing again changes nothing.
            #expect(try await app.request(.post, "/api/products/\(id)/publish", token: seller).json["status"] as? String == "active")

            let edited = try await app.request(.patch, "/api/products/\(id)", token: seller, body: #"{"price":999}"#)
            #expect(edited.status == .ok)
            #expect(edited.json["price"] as? Int == 999)
            #expect(edited.json["name"] as? String == "Blue mug")
            let renamed = try await app.request(.patch, "/api/products/\(id)", token: TestApp.adminToken, body: #"{"name":"Red mug"}"#)
            #expect(renamed.json["name"] as? String == "Red mug")
            #expect(renamed.json["price"] as? Int == 999)

            let restocked = try await app.request(.post, "/api/products/\(id)/restock", token: seller, body: #"{"quantity":5}"#)
            #expect(restocked.status == .ok)
            #expect(restocked.json["stock"] as? Int == 12)
            #expect(try await app.unitsStocked(id) == 12)

            // Anyone may look; only the seller or an admin may change it (others: not found).
            let other = try await app.createUser(name: "other")
            #expect(try await app.request(.get, "/api/products/\(id)", token: other).json["name"] as? String == "Red mug")
            for (method, path, body) in [
                (HTTPRequest.Method.patch, "/api/products/\(id)", #"{"price":1}"#),
                (.post, "/api/products/\(id)/restock", #"{"quantity":1}"#),
                (.post, "/api/products/\(id)/publish", "{}"),
            ] {
                let refused = try await app.request(method, path, token: other, body: body)
                #expect(refused.status == .notFound, "\(path)")
            }
            #expect(try await app.stock(id) == 12)
            #expect(try await app.request(.get, "/api/products/\(id)", token: seller).json["price"] as? Int == 999)
        }
    }

    @Test(arguments: TestStores.kinds)
    func badProductInputIsRefusedNamingTheField(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            let cases: [(String, String)] = [
                (#"{"name":"x","price":100,"stock":1}"#, "sku"),
                (#"{"sku":"a b","name":"x","price":100,"stock":1}"#, "sku"),
                (#"{"sku":"a","price":100,"stock":1}"#, "name"),
                (#"{"sku":"a","name":"\#(String(repeating: "n", count: 201))","price":100,"stock":1}"#, "name"),
                (#"{"sku":"a","name":"x","price":0,"stock":1}"#, "price"),
                (#"{"sku":"a","name":"x","price":-5,"stock":1}"#, "price"),
                (#"{"sku":"a","name":"x","price":1.5,"stock":1}"#, "price"),
                (#"{"sku":"a","name":"x","price":"100","stock":1}"#, "price"),
                (#"{"sku":"a","name":"x","price":1000000000001,"stock":1}"#, "price"),
                (#"{"sku":"a","name":"x","price":100,"stock":-1}"#, "stock"),
                (#"{"sku":"a","name":"x","price":100,"stock":0.5}"#, "stock"),
                (#"{"sku":"a","name":"x","price":100}"#, "stock"),
            ]
            for (body, field) in cases {
                let reply = try await app.request(.post, "/api/products", token: seller, body: body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                #expect(reply.errorDetails?["field"] as? String == field, "\(body): \(reply.body)")
            }
            #expect(try await app.integer("SELECT count(*) AS n FROM products") == 0)

            let id = try await app.createProduct(token: seller, sku: "dup", price: 500, stock: 3)
            let duplicate = try await app.request(.post, "/api/products", token: seller,
                                                  body: #"{"sku":"dup","name":"x","price":100,"stock":1}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorDetails?["field"] as? String == "sku")
            for (body, field) in [
                (#"{}"#, "name"), (#"{"price":0}"#, "price"), (#"{"name":""}"#, "name"), (#"{"stock":5}"#, "stock"),
                (#"{"price":2.5}"#, "price"),
            ] {
                let reply = try await app.request(.patch, "/api/products/\(id)", token: seller, body: body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                #expect(reply.errorDetails?["field"] as? String == field, "\(body): \(reply.body)")
            }
            for body in [#"{"quantity":0}"#, #"{"quantity":-3}"#, #"{"quantity":1.5}"#, #"{}"#, #"{"quantity":1000000001}"#] {
                let reply = try await app.request(.post, "/api/products/\(id)/restock", token: seller, body: body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                #expect(reply.errorDetails?["field"] as? String == "quantity")
            }
            let product = try await app.request(.get, "/api/products/\(id)", token: seller)
            #expect(product.json["price"] as? Int == 500)
            #expect(product.json["stock"] as? Int == 3)
            #expect(try await app.request(.get, "/api/products/not-a-uuid", token: seller).status == .notFound)
            #expect(try await app.request(.get, "/api/products/\(UUID())", token: seller).status == .notFound)
        }
    }

    @Test(arguments: TestStores.kinds)
    func theListFiltersByStatusAndPagesWithoutGapsOrRepeats(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let seller = try await app.createUser(name: "seller")
            var active: [String] = []
            for index in 0..<7 {
                active.append(try await app.createProduct(token: seller, sku: "a\(index)"))
            }
            let draft = try await app.createProduct(token: seller, sku: "draft", publish: false)
            var seen: [String] = []
            var cursor: String?
            repeat {
                let path = "/api/products?status=active&limit=3" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await app.request(.get, path, token: seller)
                #expect(page.status == .ok)
                let items = try #require(page.json["items"] as? [[String: Any]])
                seen += items.compactMap { $0["id"] as? String }
                cursor = page.json["nextCursor"] as? String
            } while cursor != nil
            #expect(seen == active)
            let drafts = try await app.request(.get, "/api/products?status=draft", token: seller)
            #expect((drafts.json["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [draft])
            let all = try await app.request(.get, "/api/products", token: seller)
            #expect((all.json["items"] as? [Any])?.count == 8)
            #expect(all.json["nextCursor"] is NSNull)

            #expect(try await app.request(.get, "/api/products?status=gone", token: seller).errorDetails?["field"] as? String == "status")
            #expect(try await app.request(.get, "/api/products?cursor=zzz", token: seller).errorDetails?["field"] as? String == "cursor")
            #expect(try await app.request(.get, "/api/products?limit=0", token: seller).status == .unprocessableContent)
            #expect(try await app.request(.get, "/api/products?includeDeleted=true", token: seller).status == .forbidden)
            #expect(try await app.request(.get, "/api/products?includeDeleted=yes", token: TestApp.adminToken).status == .unprocessableContent)
            #expect(try await app.request(.get, "/api/products?includeDeleted=true", token: TestApp.adminToken).status == .ok)
            #expect(try await app.request(.get, "/api/products").status == .unauthorized)
        }
    }
}
