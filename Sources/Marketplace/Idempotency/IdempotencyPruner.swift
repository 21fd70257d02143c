import Logging
import ServiceLifecycle

/// Deletes idempotency keys older than 24 hours, every `interval` (10 minutes). Any process may run it; deletes
/// by age are naturally idempotent.
public struct IdempotencyPruner: Service {
    let store: IdempotencyStore
    let logger: Logger
    let interval: Duration
    let isReady: @Sendable () -> Bool

    public init(store: IdempotencyStore, logger: Logger, interval: Duration = .seconds(600),
                isReady: @escaping @Sendable () -> Bool = { true }) {
        self.store = store
        self.logger = logger
        self.interval = interval
        self.isReady = isReady
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard isReady() else { continue }
                do {
                    let pruned = try await store.prune()
                    if pruned > 0 { logger.info("pruned idempotency keys", metadata: ["count": .stringConvertible(pruned)]) }
                } catch {
                    logger.warning("pruning idempotency keys failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
