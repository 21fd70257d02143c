import BallastConfig
import ChaosKit
import Commerce
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import Logging
import SQLKit
import Storage
import Synchronization

/// Run-time control of fault injection, shared by every process on the primary store.
///
/// The settings in force live in one `chaos_state` row once anyone has changed them at run time; each process
/// applies a change to its own injector at once and adopts newer rows within a second (``ChaosMonitor``), so the
/// kill switch reaches every process. Until the first change, each process runs what CHAOS_* configured. Every
/// change writes CHAOS_CONFIG_CHANGED evidence in the same transaction as the row.
public struct ChaosService: Sendable {
    public let injector: FaultInjector
    let database: Database
    let evidence: EvidenceLog
    let logger: Logger
    let failpoints: Failpoints?
    /// A switch-off decided in this process and not yet stored (the store was unreachable): injection is already
    /// off here; the record waits until the store can take it.
    private let pendingSwitchOff = SharedState<PendingSwitchOff?>(nil)

    struct PendingSwitchOff: Sendable {
        let before: ChaosState
        let reason: String
    }

    /// Failpoints for tests that race two changes.
    public enum Failpoint {
        /// In a change's transaction, after the stored settings are locked and read.
        public static let changeAfterLock = "chaos.change.after_lock"
    }

    public init(injector: FaultInjector, database: Database, logger: Logger, failpoints: Failpoints? = nil) {
        self.injector = injector
        self.database = database
        self.evidence = EvidenceLog(database: database)
        self.logger = logger
        self.failpoints = failpoints
    }

    public var environment: AppEnvironment { injector.environment }

    /// Applies an operator's change (the `PUT /api/admin/chaos` body) for `actor`; refused changes are
    /// `AppError`s (422 for a bad value, 409 `forbidden_in_production`). The stored row is locked first (it always
    /// exists: version 0 until the first change), so two changes made at once by two processes are two versions,
    /// one after the other.
    @discardableResult
    public func update(_ update: ChaosUpdate, actor: String, requestId: String?) async throws -> ChaosState {
        let local = injector.state
        let environment = self.environment
        let pending = pendingSwitchOff.withLock { $0 }
        let (before, after): (ChaosState, ChaosState) = try await database.transaction { sql in
            var base = try await Self.storedState(sql, lock: database.dialect == .postgres, local: local) ?? local
            try await failpoints?.pass(Failpoint.changeAfterLock)
            // A switch-off this process decided while the store was unreachable is recorded first, as its own
            // version, so the operator's change never hides the guard's reason from the evidence.
            if let pending, base.version == pending.before.version, base.enabled {
                base = try await Self.storeSwitchOff(of: base, reason: pending.reason, evidence: evidence, in: sql)
            }
            let next: ChaosState
            do {
                next = try update.applied(to: base, environment: environment)
            } catch let refusal as ChaosUpdate.Refusal {
                switch refusal {
                case .forbiddenInProduction:
                    throw AppError(.forbiddenInProduction, "fault injection cannot be enabled when APP_ENV=production")
                case .invalid(let field, let message):
                    throw AppError.invalidField(field, message)
                }
            }
            try await Self.store(next, by: actor, in: sql)
            try await evidence.append([Self.changeEvidence(before: base, after: next, actor: actor, requestId: requestId)], in: sql)
            return (base, next)
        }
        pendingSwitchOff.withLock { $0 = nil }
        injector.apply(after)
        logger.notice("chaos settings changed", metadata: [
            "actor": .string(actor), "enabled": .stringConvertible(after.enabled),
            "failRate": .stringConvertible(after.failRate), "scope": .string(after.scope.rawValue),
            "version": .stringConvertible(Int(after.version)), "wasEnabled": .stringConvertible(before.enabled),
        ])
        return after
    }

    /// Switches injection off in this process at once, with `reason` in `/health` and the log, whether or not the
    /// store can be reached; ``recordSwitchOff()`` then stores it and writes its evidence as soon as it can.
    public func switchOffNow(reason: String) {
        let state = injector.state
        guard state.enabled else { return }
        pendingSwitchOff.withLock { pending in
            if pending == nil { pending = PendingSwitchOff(before: state, reason: reason) }
        }
        var off = state
        off.enabled = false
        off.reason = reason
        injector.apply(off)
        logger.warning("chaos switched itself off", metadata: ["reason": .string(reason)])
    }

    /// Stores a switch-off decided by ``switchOffNow(reason:)`` and writes its CHAOS_CONFIG_CHANGED record, exactly
    /// once across every process: only while the stored settings are still the ones switched off (another process
    /// may have recorded the same switch-off, or an operator changed them since; then this process adopts those).
    /// Answers whether this call wrote the record.
    @discardableResult
    public func recordSwitchOff() async throws -> Bool {
        guard let pending = pendingSwitchOff.withLock({ $0 }) else { return false }
        let switched = try await switchOff(reason: pending.reason, before: pending.before)
        pendingSwitchOff.withLock { $0 = nil }
        return switched
    }

    /// Stores `base` switched off by the system (one version later) with its CHAOS_CONFIG_CHANGED record, keyed by
    /// the version it ends, so the same switch-off is never recorded twice.
    private static func storeSwitchOff(
        of base: ChaosState, reason: String, evidence: EvidenceLog, in sql: Transaction
    ) async throws -> ChaosState {
        var next = base
        next.enabled = false
        next.reason = reason
        next.version = base.version + 1
        try await store(next, by: "system", in: sql)
        var event = changeEvidence(before: base, after: next, actor: "system", requestId: nil)
        event.key = "chaos-switch-off:\(base.version)"
        try await evidence.append([event], in: sql)
        return next
    }

    /// Switches injection off by itself (time box, steady-state guard), unless another process already changed
    /// the settings since `version`; then there is nothing to do and no second record. Returns whether this
    /// call switched it off.
    @discardableResult
    public func switchOff(reason: String, expectedVersion: Int64) async throws -> Bool {
        try await switchOff(reason: reason, before: injector.state, expectedVersion: expectedVersion)
    }

    private func switchOff(reason: String, before: ChaosState, expectedVersion: Int64? = nil) async throws -> Bool {
        let expected = expectedVersion ?? before.version
        let switched: ChaosState? = try await database.transaction { sql in
            let base = try await Self.storedState(sql, lock: database.dialect == .postgres, local: before) ?? before
            guard base.version == expected, base.enabled else { return nil }
            return try await Self.storeSwitchOff(of: base, reason: reason, evidence: evidence, in: sql)
        }
        if let switched {
            injector.apply(switched)
            logger.warning("chaos switch-off recorded", metadata: ["reason": .string(reason)])
            return true
        }
        try await adoptStored()
        return false
    }

    /// Applies the stored settings if they are newer than this process's.
    public func adoptStored() async throws {
        let local = injector.state
        let stored = try await database.read { sql in
            try await Self.storedState(sql, lock: false, local: local)
        }
        if let stored, stored.version > local.version {
            injector.apply(stored)
            logger.info("adopted chaos settings", metadata: [
                "version": .stringConvertible(Int(stored.version)), "enabled": .stringConvertible(stored.enabled),
            ])
        }
    }

    static func storedState(_ sql: any SQLDatabase, lock: Bool, local: ChaosState) async throws -> ChaosState? {
        let query: SQLQueryString = lock
            ? "SELECT * FROM chaos_state WHERE id = 1 FOR UPDATE"
            : "SELECT * FROM chaos_state WHERE id = 1"
        // Version 0 is the row the schema starts with: nothing stored yet, CHAOS_* is in force.
        guard let row = try await sql.raw(query).first(decoding: ChaosRow.self), row.version > 0 else { return nil }
        return ChaosState(
            enabled: row.enabled == 1, failRate: row.fail_rate, scope: ChaosScope(rawValue: row.scope) ?? .shadowWriteOnly,
            seed: row.seed.isEmpty ? local.seed : row.seed,
            expiresAt: row.expires_at_micros.map { StoredTime.date(fromMicros: $0) },
            latencyMilliseconds: row.latency_ms, abortErrorRate: local.abortErrorRate,
            version: row.version, reason: row.reason)
    }

    static func store(_ state: ChaosState, by actor: String, in sql: Transaction) async throws {
        let expires = state.expiresAt.map { StoredTime.micros(from: $0) }
        try await sql.raw("""
            INSERT INTO chaos_state (id, version, enabled, fail_rate, scope, seed, expires_at_micros, latency_ms,
                                     reason, updated_by, updated_at_micros)
            VALUES (1, \(bind: state.version), \(bind: state.enabled ? 1 : 0), \(bind: state.failRate),
                    \(bind: state.scope.rawValue), \(bind: state.seed), \(bind: expires),
                    \(bind: state.latencyMilliseconds), \(bind: state.reason), \(bind: actor), \(bind: StoredTime.nowMicros()))
            ON CONFLICT (id) DO UPDATE SET
                version = excluded.version, enabled = excluded.enabled, fail_rate = excluded.fail_rate,
                scope = excluded.scope, seed = excluded.seed, expires_at_micros = excluded.expires_at_micros,
                latency_ms = excluded.latency_ms, reason = excluded.reason, updated_by = excluded.updated_by,
                updated_at_micros = excluded.updated_at_micros
            """).run()
    }

    static func changeEvidence(before: ChaosState, after: ChaosState, actor: String, requestId: String?) -> EvidenceEvent {
        EvidenceEvent(
            .chaosConfigChanged, outcome: .success, entityType: "chaos_config",
            entityId: "chaos", requestId: requestId,
            details: [
                "actor": .string(actor),
                "before": summary(before),
                "after": summary(after),
                "reason": after.reason.map { .string($0) } ?? .null,
            ])
    }

    static func summary(_ state: ChaosState) -> CanonicalJSON {
        [
            "enabled": .bool(state.enabled),
            // Rates as integer parts per million: canonical JSON has no floating point.
            "failRatePpm": .integer(Int64((state.failRate * 1_000_000).rounded())),
            "scope": .string(state.scope.rawValue),
            "seed": .string(state.seed),
            "expiresAt": state.expiresAt.map { .string(EvidenceTime.rfc3339(micros: StoredTime.micros(from: $0))) } ?? .null,
            "latencyMilliseconds": .integer(Int64(state.latencyMilliseconds)),
            "version": .integer(state.version),
        ]
    }
}

/// A `chaos_state` row as stored. The abort rate is each process's configuration (CHAOS_ABORT_ERROR_RATE), not
/// shared state, so it is not stored.
struct ChaosRow: Decodable {
    let version: Int64
    let enabled: Int
    let fail_rate: Double
    let scope: String
    let seed: String
    let expires_at_micros: Int64?
    let latency_ms: Int
    let reason: String?
}
