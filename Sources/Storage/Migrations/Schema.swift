/// Every schema change, oldest first. New tables arrive as new versions at the end.
///
/// Portable SQL where it can be (`length()`, `BIGINT`, `TEXT` and `CHECK` mean the same on both dialects);
/// `Migration(version:name:sqlite:postgres:)` where the two really differ.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(
            version: 1, name: "users",
            both: [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
                    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
                    created_at_micros BIGINT NOT NULL
                )
                """,
            ]),
        Migration(
            version: 2, name: "evidence_records",
            sqlite: evidenceTable + [
                """
                CREATE TRIGGER evidence_records_no_update BEFORE UPDATE ON evidence_records
                BEGIN SELECT RAISE(ABORT, 'evidence_records is append-only: UPDATE refused'); END
                """,
                """
                CREATE TRIGGER evidence_records_no_delete BEFORE DELETE ON evidence_records
                BEGIN SELECT RAISE(ABORT, 'evidence_records is append-only: DELETE refused'); END
                """,
            ],
            postgres: evidenceTable + [
                """
                CREATE FUNCTION ballast_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                        USING ERRCODE = 'insufficient_privilege';
                END
                $$
                """,
                """
                CREATE TRIGGER evidence_records_no_update_delete BEFORE UPDATE OR DELETE ON evidence_records
                FOR EACH ROW EXECUTE FUNCTION ballast_refuse_change()
                """,
                """
                CREATE TRIGGER evidence_records_no_truncate BEFORE TRUNCATE ON evidence_records
                FOR EACH STATEMENT EXECUTE FUNCTION ballast_refuse_change()
                """,
            ]),
        Migration(
            version: 3, name: "chaos_state",
            both: [
                """
                CREATE TABLE chaos_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    version BIGINT NOT NULL,
                    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
                    fail_rate DOUBLE PRECISION NOT NULL CHECK (fail_rate >= 0 AND fail_rate <= 1),
                    scope TEXT NOT NULL CHECK (scope IN ('shadow_write_only', 'all_writes', 'reads')),
                    seed TEXT NOT NULL,
                    expires_at_micros BIGINT,
                    latency_ms INTEGER NOT NULL CHECK (latency_ms >= 0),
                    reason TEXT,
                    updated_by TEXT NOT NULL,
                    updated_at_micros BIGINT NOT NULL
                )
                """,
            ]),
    ]

    /// The evidence table: written only by the evidence log, refused UPDATE and DELETE by triggers.
    static let evidenceTable = [
        """
        CREATE TABLE evidence_records (
            id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL UNIQUE CHECK (seq >= 1),
            occurred_at_micros BIGINT NOT NULL,
            control_id TEXT NOT NULL,
            category TEXT NOT NULL,
            event_type TEXT NOT NULL,
            event_outcome TEXT NOT NULL,
            entity_type TEXT,
            entity_id TEXT,
            request_id TEXT,
            details TEXT NOT NULL,
            previous_hash TEXT NOT NULL CHECK (length(previous_hash) = 64),
            content_hash TEXT NOT NULL CHECK (length(content_hash) = 64)
        )
        """,
        "CREATE INDEX evidence_records_event_type ON evidence_records (event_type, seq)",
        "CREATE INDEX evidence_records_entity ON evidence_records (entity_type, entity_id, seq)",
        "CREATE INDEX evidence_records_occurred ON evidence_records (occurred_at_micros)",
    ]
}
