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
        self.registry = registry
        self.factory = CachedMetricsFactory(base: CatalogMetricsFactory(registry: registry))
        self.droppedLines = logSink.map { DroppedLinesReporter(sink: $0, registry: registry) }
    }

    /// Makes each series of the catalog family `name` exist now, at zero, so that `rate()`, `increase()` and absence
    /// alerts see it from start-up rather than from its first event. `labelSets` lists the values of the family's
    /// labels, in the catalog's order; a family without labels takes one empty set.
    public func preinitialize(_ name: String, _ labelSets: [[String]] = [[]]) {
        guard let family = MetricCatalog.byName[name] else { preconditionFailure("\(name) is not in the metric catalog") }
        for values in labelSets {
            precondition(values.count == family.labels.count, "\(name) has the labels \(family.labels), given \(values)")
            let dimensions = Array(zip(family.labels, values))
            switch family.kind {
            case .counter: _ = factory.makeCounter(label: name, dimensions: dimensions)
            case .gauge: _ = factory.makeRecorder(label: name, dimensions: dimensions, aggregate: false)
            case .histogram: _ = factory.makeTimer(label: name, dimensions: dimensions)
            }
        }
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
        self.counter = registry.makeCounter(name: "log_lines_dropped_total", help: MetricCatalog.help("log_lines_dropped_total"))
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

/// The swift-metrics factory over the Prometheus registry: every family gets its `# HELP` line from ``MetricCatalog``
/// (the registry refuses two help texts for one name, so the text must come from one place).
struct CatalogMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10),
    ]
    static let valueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: MetricCatalog.help(label))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: MetricCatalog.help(label))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(name: label, labels: dimensions, help: MetricCatalog.help(label)) }
        return registry.makeValueHistogram(name: label, labels: dimensions, buckets: Self.valueBuckets, help: MetricCatalog.help(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(name: label, labels: dimensions, help: MetricCatalog.help(label))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(name: label, labels: dimensions, buckets: Self.durationBuckets, help: MetricCatalog.help(label))
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: registry.unregisterGauge(gauge)
        case let histogram as Histogram<Double>: registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? Histogram<Duration> { registry.unregisterDurationHistogram(histogram) }
    }
}
