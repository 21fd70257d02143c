import Metrics
import Synchronization

/// A metrics factory that makes each counter, timer and gauge handler once per label set and hands out the same one
/// afterwards. Code records metrics as `Counter(label:dimensions:factory:)` where the event happens; without
/// this, every such call would look its series up in the registry under the registry's lock.
///
/// Bounded: past ``capacity`` label sets (a label value that is not from a small known set would be a bug
/// elsewhere), handlers are made by the underlying factory each time, uncached.
struct CachedMetricsFactory: MetricsFactory {
    static let capacity = 4096

    private struct Key: Hashable {
        let label: String
        let dimensions: [String]

        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            var flat: [String] = []
            flat.reserveCapacity(dimensions.count * 2)
            for (name, value) in dimensions {
                flat.append(name)
                flat.append(value)
            }
            self.dimensions = flat
        }
    }

    private final class Handlers: Sendable {
        let counters = Mutex<[Key: any CounterHandler]>([:])
        let timers = Mutex<[Key: any TimerHandler]>([:])
        /// Gauges (recorders that keep the last value), the only recorders Ballast makes.
        let gauges = Mutex<[Key: any RecorderHandler]>([:])
    }

    private let base: any MetricsFactory
    private let handlers = Handlers()

    init(base: any MetricsFactory) {
        self.base = base
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        let key = Key(label, dimensions)
        if let cached = handlers.counters.withLock({ $0[key] }) { return cached }
        let made = base.makeCounter(label: label, dimensions: dimensions)
        return handlers.counters.withLock { counters in
            if let raced = counters[key] { return raced }
            if counters.count < Self.capacity { counters[key] = made }
            return made
        }
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let key = Key(label, dimensions)
        if let cached = handlers.timers.withLock({ $0[key] }) { return cached }
        let made = base.makeTimer(label: label, dimensions: dimensions)
        return handlers.timers.withLock { timers in
            if let raced = timers[key] { return raced }
            if timers.count < Self.capacity { timers[key] = made }
            return made
        }
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        base.makeMeter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard !aggregate else { return base.makeRecorder(label: label, dimensions: dimensions, aggregate: true) }
        let key = Key(label, dimensions)
        if let cached = handlers.gauges.withLock({ $0[key] }) { return cached }
        let made = base.makeRecorder(label: label, dimensions: dimensions, aggregate: false)
        return handlers.gauges.withLock { gauges in
            if let raced = gauges[key] { return raced }
            if gauges.count < Self.capacity { gauges[key] = made }
            return made
        }
    }

    // Cached handlers live as long as the registry; destroying one series is not something Ballast does.
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
}
