import Metrics
import Prometheus
import Synchronization

/// The metrics of one running application: a Prometheus registry and the swift-metrics factory that feeds it.
/// Code that records metrics takes the `factory` explicitly, so two applications in one process (tests) keep
/// their own figures; `/metrics` renders `registry`.
public struct MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: any MetricsFactory
    private let droppedLines: DroppedLinesReporter?

    /// `logSink`: the sink whose dropped lines (its output stuck, its bounded queue full) `/metrics` reports as
    /// `log_lines_dropped_total`, read at each scrape; nil when nothing should be reported (tests).
    public init(logSink: LogSink? = nil) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = CachedMetricsFactory(base: factory)
        self.droppedLines = logSink.map { DroppedLinesReporter(sink: $0, registry: registry) }
    }

    /// The Prometheus text exposition of every metric recorded so far.
    public func render() -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        droppedLines?.update()
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Carries the log sink's drop count (a plain number it keeps) into a Prometheus counter, by the difference since the
/// last scrape; the counter exists, at 0, from start-up.
final class DroppedLinesReporter: Sendable {
    private let sink: LogSink
    private let counter: Prometheus.Counter
    private let reported = Mutex(0)

    init(sink: LogSink, registry: PrometheusCollectorRegistry) {
        self.sink = sink
        self.counter = registry.makeCounter(
            name: "log_lines_dropped_total", help: "Log lines dropped because the log output did not keep up.")
    }

    func update() {
        let dropped = sink.droppedLines
        let delta = reported.withLock { reported -> Int in
            defer { reported = max(reported, dropped) }
            return max(0, dropped - reported)
        }
        if delta > 0 { counter.increment(by: Int64(delta)) }
    }
}
