import BallastConfig
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /openapi.json`: the document of this server's operations, written once at start.
struct OpenAPIRoutes<Context: BallastRequestContext> {
    let environment: AppEnvironment
    let jobNames: [String]

    func register(on router: Router<Context>) {
        let document = OpenAPIDocument.document(environment: environment, jobNames: jobNames)
        let body = (try? JSONResponse.encoder.encode(document)) ?? Data()
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
