import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /openapi.json`.
struct OpenAPIRoutes<Context: BallastRequestContext> {
    func register(on router: Router<Context>) {
        let body = (try? JSONResponse.encoder.encode(OpenAPIDocument.document())) ?? Data()
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}

import Foundation
