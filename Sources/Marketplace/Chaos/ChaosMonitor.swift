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

    /// One round of checks (tests call it directly instead of waiting for the loop).
    public func tick() async {
        do {
            try await chaos.adoptStored()
            let state = chaos.injector.state
            guard state.enabled else { return }
            if chaos.injector.isPastTimeBox {
                try await chaos.switchOff(reason: "time box expired", expectedVersion: state.version)
            } else if let reason = guardWindow.tripReason(abortErrorRate: state.abortErrorRate) {
                try await chaos.switchOff(reason: reason, expectedVersion: state.version)
            }
        } catch {
            logger.warning("chaos monitor round failed", metadata: ["error": "\(error)"])
        }
    }
}
