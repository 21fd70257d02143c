import ChaosKit
import DomainValues
import Evidence
import EvidenceStore
import Commerce
import Operations
import Metrics

extension AppServices {
    /// Makes the series operators alert and graph on exist from start-up, at zero, for every label value known now:
    /// `rate()` and `increase()` then see the first event, and an absent series means a process that is not
    /// reporting, not one that has had no event yet. Series whose labels come from requests (route, status) appear
    /// with their first request.
    func preinitializeMetrics(subscribers: [String]) {
        let registry = metrics
        Gauge(label: "ballast_info", dimensions: [("version", BallastVersion.current), ("environment", config.environment.rawValue)],
              factory: registry.factory).record(1)
        registry.preinitialize("wallet_operations_total", WalletService.Operation.allCases.flatMap { operation in
            ["success", ErrorCode.insufficientFunds.rawValue].map { [operation.rawValue, $0] }
        })
        registry.preinitialize("orders_total", [["created"], ["replayed"]])
        registry.preinitialize("order_transitions_total", [OrderStatus.shipped, .delivered, .cancelled].map { [$0.rawValue] })
        registry.preinitialize("invariant_violations_total", [["I1"], ["I2"], ["I3"], ["I4"]])
        registry.preinitialize("notifications_total", NotificationChannel.allCases.flatMap { channel in
            NotificationDispatcher.AttemptOutcome.allCases.map { [channel.rawValue, $0.rawValue] }
        })
        registry.preinitialize("notifications_pending")
        registry.preinitialize("notifications_dead")
        registry.preinitialize("shipping_quote_fallbacks_total", ProviderShippingRates.FallbackReason.allCases.map { [$0.rawValue] })
        registry.preinitialize("circuit_breaker_state", [[ProviderShippingRates.dependency]])
        registry.preinitialize("peer_values_clamped_total", [["notify_webhook", "retry_after"]])
        registry.preinitialize("domain_events_total", DomainEvent.Kind.allCases.map { [$0.rawValue] })
        let handlers = [Self.auditLogSubscriber] + subscribers
        registry.preinitialize("event_handler_failures_total", DomainEvent.Kind.allCases.flatMap { event in
            handlers.flatMap { handler in EventBus.FailureReason.allCases.map { [event.rawValue, handler, $0.rawValue] } }
        })
        let listing = ShadowWrite.shadowedEntityType
        let operations = ShadowWrite.Operation.allCases.map(\.rawValue)
        registry.preinitialize("shadow_write_failures_total", operations.flatMap { operation in
            ShadowFailure.allCases.map { [listing, operation, $0.rawValue] }
        })
        registry.preinitialize("shadow_write_successes_total", operations.map { [listing, $0] })
        registry.preinitialize("shadow_write_duration_seconds", operations.flatMap { [[listing, $0, "true"], [listing, $0, "false"]] })
        registry.preinitialize("shadow_writes_swept_total")
        registry.preinitialize("shadow_discrepancies_total", DiscrepancyKind.allCases.map { [listing, $0.rawValue] })
        registry.preinitialize("shadow_unexplained_discrepancies_total", [[listing]])
        registry.preinitialize("shadow_discrepancy_last_check_timestamp", [[listing]])
        registry.preinitialize("chaos_enabled")
        registry.preinitialize("chaos_time_box_end_timestamp_seconds")
        registry.preinitialize("chaos_guard_trips_total")
        registry.preinitialize("chaos_injected_faults_total", FaultPoint.all.map { [$0.entityType, $0.operation] })
        registry.preinitialize("evidence_appended_total")
        registry.preinitialize("evidence_dropped_total", (EvidenceType.allCases.map(\.rawValue) + [EvidenceAppender.completionLabel]).map { [$0] })
        registry.preinitialize("evidence_chain_verifications_total", [["valid"], ["invalid"]])
        registry.preinitialize("job_runs_total", jobs.jobNames.flatMap { job in JobRunStatus.allCases.map { [job, $0.rawValue] } })
        let stores = shadow == nil ? [["primary"]] : [["primary"], ["shadow"]]
        registry.preinitialize("db_pool_wait_seconds", stores)
        registry.preinitialize("db_pool_timeouts_total", stores)
    }
}
