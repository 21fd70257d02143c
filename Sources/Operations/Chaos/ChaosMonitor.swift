import ChaosKit
import Logging
import ServiceLifecycle

/// Once a second: adopts settings another process stored, records the end of a time box, and trips the
/// steady-state guard. Decisions already stop at the time box on their own; this makes the switch-off visible
/// (gauge, log, evidence, `/health`) and reaches the other processes.
public struct ChaosMonitor: Service {
    let chaos: ChaosService
    let guardWindow: SteadyStateGuard
    let logger: Logger
    let interval: Duration
    /// Rounds wait until this says the schema is in place (start-up migrates concurrently with services).
    let isReady: @Sendable () -> Bool

    public init(chaos: ChaosService, guardWindow: SteadyStateGuard, logger: Logger, interval: Duration = .seconds(1),
                isReady: @escaping @Sendable () -> Bool = { true }) {
        self.chaos = chaos
        self.guardWindow = guardWindow
        self.logger = logger
        self.interval = interval
        self.isReady = isReady
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if isReady() { await tick() }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One round of checks (tests call it directly instead of waiting for the loop). What this process decides
    /// (a spent time box, a tripped guard) takes effect here at once, whatever the store's state: injection off,
    /// the reason in `/health` and the log. Storing it, its evidence (exactly once) and adopting newer settings
    /// from other processes need the store, and wait for it.
    public func tick() async {
        let state = chaos.injector.state
        if state.enabled {
            if chaos.injector.isPastTimeBox {
                chaos.switchOffNow(reason: "time box expired")
            } else if let reason = guardWindow.tripReason(abortErrorRate: state.abortErrorRate) {
                chaos.injector.recordGuardTrip()
                chaos.switchOffNow(reason: reason)
            }
        }
        do {
            try await chaos.recordSwitchOff()
            try await chaos.adoptStored()
        } catch {
            logger.warning("chaos monitor could not reach the store; a switch-off stays in force here and is recorded later",
                           metadata: ["error": "\(error)"])
        }
    }
}
