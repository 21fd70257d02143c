import Metrics
import Prometheus

/// The metrics of one running application: a Prometheus registry and the swift-metrics factory that feeds it.
/// Code that records metrics takes the `factory` explicitly, so two applications in one process (tests) keep
/// their own figures; `/metrics` renders `registry`.
public struct MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: any MetricsFactory

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = CachedMetricsFactory(base: factory)
    }

    /// The Prometheus text exposition of every metric recorded so far.
    public func render() -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
