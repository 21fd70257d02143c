/// One metric family Ballast exposes on `/metrics`: its name, kind, help text and label names (in the order every
/// series of it carries them).
public struct MetricDescription: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public let name: String
    public let kind: Kind
    public let help: String
    public let labels: [String]

    public init(_ name: String, _ kind: Kind, _ help: String, labels: [String] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
    }
}

/// Every metric family Ballast exposes, with its help text: the one list `/metrics` takes its `# HELP` lines from,
/// and the one the shipped alert rules and dashboard are checked against. A family recorded under a name that is not
/// here has no help text, and the catalog test fails.
public enum MetricCatalog {
    public static let all: [MetricDescription] = [
        // Process
        MetricDescription("ballast_info", .gauge, "Always 1; its labels say which version runs, in which environment.",
                          labels: ["version", "environment"]),
        MetricDescription("log_lines_dropped_total", .counter, "Log lines dropped because the log output did not keep up."),
        // HTTP
        MetricDescription("http_requests_total", .counter, "HTTP requests answered, by method, route template and status code.",
                          labels: ["method", "route", "status"]),
        MetricDescription("http_request_duration_seconds", .histogram,
                          "Time from a request's arrival to its answer, by method, route template and status code.",
                          labels: ["method", "route", "status"]),
        MetricDescription("http_internal_errors_total", .counter, "Requests answered 500 (always a bug), by route template.",
                          labels: ["route"]),
        MetricDescription("constraint_violations_total", .counter,
                          "Database constraints a request ran into (answered 409 or 422), by route template and constraint kind.",
                          labels: ["route", "constraint"]),
        // Stores
        MetricDescription("db_pool_wait_seconds", .histogram,
                          "Time a caller waited before its database work could start, by store (primary, shadow): for a free pooled connection, and on SQLite for its turn to write.",
                          labels: ["store"]),
        MetricDescription("db_pool_timeouts_total", .counter,
                          "Callers that gave up waiting for a pooled database connection (answered 503), by store.",
                          labels: ["store"]),
        // Money and stock
        MetricDescription("wallet_operations_total", .counter,
                          "Wallet operations by operation (create, credit, debit, transfer) and outcome (success or the error code).",
                          labels: ["operation", "outcome"]),
        MetricDescription("orders_total", .counter, "Order placements by outcome: created, or replayed for a repeated idempotency key.",
                          labels: ["outcome"]),
        MetricDescription("order_transitions_total", .counter, "Orders moved on to a status (shipped, delivered, cancelled).",
                          labels: ["to"]),
        MetricDescription("invariant_violations_total", .counter,
                          "Violations of SPEC invariants the ledger auditor found (each also an INVARIANT_VIOLATION record), by invariant.",
                          labels: ["invariant"]),
        // External services
        MetricDescription("notifications_total", .counter,
                          "Notification delivery attempts by channel (email, push) and outcome (sent, retry, throttled, dead, claim_lost).",
                          labels: ["channel", "outcome"]),
        MetricDescription("notifications_pending", .gauge, "Notifications waiting to be delivered (in the outbox, across every process)."),
        MetricDescription("notifications_dead", .gauge, "Notifications given up after every retry, not yet sent again by an admin."),
        MetricDescription("shipping_quote_fallbacks_total", .counter,
                          "Shipping quotes the provider could not give usably, by reason (the order then used the fixed table, or was refused with 503 under SHIPPING_FAILURE_POLICY=block).",
                          labels: ["reason"]),
        MetricDescription("circuit_breaker_state", .gauge, "State of a dependency's circuit breaker: 0 closed, 1 open, 2 half-open.",
                          labels: ["dependency"]),
        MetricDescription("peer_values_clamped_total", .counter,
                          "Values a peer sent outside what Ballast accepts, clamped to the accepted range, by peer and value.",
                          labels: ["peer", "value"]),
        // Events
        MetricDescription("domain_events_total", .counter, "Domain events published after their transaction committed, by event.",
                          labels: ["event"]),
        MetricDescription("event_handler_failures_total", .counter,
                          "Event subscribers that failed (error, timeout, injected, dropped), by event, handler and reason.",
                          labels: ["event", "handler", "reason"]),
        // Shadow store (SPEC §7)
        MetricDescription("shadow_write_failures_total", .counter,
                          "Shadow writes that failed, by entity type, operation and failure type (injected, error, timeout, dropped).",
                          labels: ["entity_type", "operation", "failure_type"]),
        MetricDescription("shadow_write_successes_total", .counter, "Shadow writes that landed, by entity type and operation.",
                          labels: ["entity_type", "operation"]),
        MetricDescription("shadow_write_duration_seconds", .histogram,
                          "Time a shadow write took, by entity type, operation and whether it succeeded.",
                          labels: ["entity_type", "operation", "success"]),
        MetricDescription("shadow_writes_swept_total", .counter,
                          "Queued shadow writes taken over by the sweeper after their process's claim expired."),
        MetricDescription("shadow_discrepancies_total", .counter,
                          "Differences between the primary and the shadow the verifier found, by entity type and discrepancy type.",
                          labels: ["entity_type", "discrepancy_type"]),
        MetricDescription("shadow_unexplained_discrepancies_total", .counter,
                          "Discrepancies no recorded shadow-write failure explains: real bugs, by entity type.",
                          labels: ["entity_type"]),
        MetricDescription("shadow_discrepancy_last_check_timestamp", .gauge,
                          "When the verifier last finished a check (Unix time in seconds; 0 before the first), by entity type.",
                          labels: ["entity_type"]),
        // Chaos
        MetricDescription("chaos_enabled", .gauge, "1 while fault injection is on in this process, else 0."),
        MetricDescription("chaos_time_box_end_timestamp_seconds", .gauge,
                          "When the fault injection now on switches itself off (Unix time in seconds); 0 while it is off."),
        MetricDescription("chaos_injected_faults_total", .counter, "Faults injected on purpose, by entity type and operation.",
                          labels: ["entity_type", "operation"]),
        MetricDescription("chaos_guard_trips_total", .counter,
                          "Times the steady-state guard switched fault injection off because unexpected 5xx answers passed its limit."),
        // Evidence
        MetricDescription("evidence_appended_total", .counter, "Evidence records appended to the hash chain."),
        MetricDescription("evidence_dropped_total", .counter,
                          "Evidence items dropped because the append queue was full, by event type.", labels: ["event_type"]),
        MetricDescription("evidence_chain_verifications_total", .counter,
                          "Verifications of the evidence hash chain, by result (valid, invalid).", labels: ["result"]),
        // Jobs
        MetricDescription("job_runs_total", .counter, "Job runs by job and how they ended (succeeded, failed, lease_lost).",
                          labels: ["job", "status"]),
    ]

    public static let byName: [String: MetricDescription] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// The help text of `name`, or empty for a name the catalog does not have.
    public static func help(_ name: String) -> String { byName[name]?.help ?? "" }
}
