import HTTPTypes
import Hummingbird
import NIOCore
import Telemetry

/// `GET /metrics`: the Prometheus text exposition of this process's registry.
struct MetricsRoutes<Context: BallastRequestContext> {
    let metrics: MetricsRegistry

    func register(on router: Router<Context>) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
    }
}
