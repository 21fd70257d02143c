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
        Migration(
            version: 4, name: "wallets",
            sqlite: walletTables(entryNo: "entry_no INTEGER PRIMARY KEY AUTOINCREMENT") + [
                """
                CREATE TRIGGER wallet_transactions_no_update BEFORE UPDATE ON wallet_transactions
                BEGIN SELECT RAISE(ABORT, 'wallet_transactions is append-only: UPDATE refused'); END
                """,
                """
                CREATE TRIGGER wallet_transactions_no_delete BEFORE DELETE ON wallet_transactions
                BEGIN SELECT RAISE(ABORT, 'wallet_transactions is append-only: DELETE refused'); END
                """,
            ],
            postgres: walletTables(entryNo: "entry_no BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") + [
                """
                CREATE TRIGGER wallet_transactions_no_update_delete BEFORE UPDATE OR DELETE ON wallet_transactions
                FOR EACH ROW EXECUTE FUNCTION ballast_refuse_change()
                """,
                """
                CREATE TRIGGER wallet_transactions_no_truncate BEFORE TRUNCATE ON wallet_transactions
                FOR EACH STATEMENT EXECUTE FUNCTION ballast_refuse_change()
                """,
            ]),
        Migration(
            version: 5, name: "idempotency_claim_token",
            both: [
                // Who holds an in-flight claim: only that request may complete or release it.
                "ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT",
            ]),
        Migration(version: 6, name: "catalog_orders", both: catalogTables),
        Migration(version: 7, name: "listings_discrepancies_jobs", both: [
            // Listings are soft-deleted, so a delete has a version the shadow can be ordered by.
            """
            CREATE TABLE listings (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL REFERENCES users (id),
                title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
                price BIGINT NOT NULL CHECK (price > 0 AND price <= 1000000000000),
                version BIGINT NOT NULL CHECK (version >= 1),
                created_at_micros BIGINT NOT NULL,
                updated_at_micros BIGINT NOT NULL,
                deleted_at_micros BIGINT
            )
            """,
            "CREATE INDEX listings_created ON listings (created_at_micros, id)",
            // What the discrepancy verifier found: at most one open row per entity.
            """
            CREATE TABLE shadow_discrepancies (
                id TEXT PRIMARY KEY,
                entity_type TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                discrepancy_type TEXT NOT NULL
                    CHECK (discrepancy_type IN ('missing_in_shadow', 'missing_in_primary', 'mismatch')),
                fields TEXT NOT NULL,
                expected INTEGER NOT NULL CHECK (expected IN (0, 1)),
                status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
                detected_at_micros BIGINT NOT NULL,
                resolved_at_micros BIGINT,
                resolution TEXT
            )
            """,
            "CREATE UNIQUE INDEX shadow_discrepancies_open ON shadow_discrepancies (entity_type, entity_id) WHERE status = 'open'",
            "CREATE INDEX shadow_discrepancies_status ON shadow_discrepancies (status, detected_at_micros)",
            // One row per job: its lease (who runs it, until when) and its shared schedule.
            """
            CREATE TABLE job_leases (
                name TEXT PRIMARY KEY,
                holder TEXT,
                lease_expires_at_micros BIGINT,
                started_at_micros BIGINT,
                last_run_at_micros BIGINT,
                last_status TEXT,
                last_duration_micros BIGINT,
                next_run_at_micros BIGINT
            )
            """,
        ]),
        Migration(
            version: 8, name: "listings_byte_order_index",
            // The verifier walks listings in byte order of the id (COLLATE "C" on PostgreSQL, whatever the
            // database's locale); this index lets each keyset batch be a range scan instead of a sort.
            sqlite: [],
            postgres: [#"CREATE INDEX listings_id_bytes ON listings (id COLLATE "C")"#]),
        Migration(version: 9, name: "fences_and_durable_after_commit_work", both: [
            // A dispatcher's claim on a notification: every write of an attempt must still hold this token.
            "ALTER TABLE notifications ADD COLUMN claim_token TEXT",
            // A job lease's fencing token: one more at every acquisition; every run records its own.
            "ALTER TABLE job_leases ADD COLUMN fence BIGINT NOT NULL DEFAULT 0",
            """
            CREATE TABLE job_runs (
                name TEXT NOT NULL,
                fence BIGINT NOT NULL,
                holder TEXT NOT NULL,
                started_at_micros BIGINT NOT NULL,
                finished_at_micros BIGINT,
                status TEXT,
                PRIMARY KEY (name, fence)
            )
            """,
            // Idempotent evidence appends: one record per key (NULL keys are not compared).
            "ALTER TABLE evidence_records ADD COLUMN event_key TEXT",
            "CREATE UNIQUE INDEX evidence_records_event_key ON evidence_records (event_key)",
            // Shadow writes waiting to be applied, written in the listing's own transaction, so a crash cannot
            // lose one: the process that wrote it, or any other once its claim expires, applies it.
            """
            CREATE TABLE shadow_outbox (
                entity_type TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                version BIGINT NOT NULL,
                operation TEXT NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
                request_id TEXT,
                enqueued_at_micros BIGINT NOT NULL,
                claimed_until_micros BIGINT,
                claim_token TEXT,
                PRIMARY KEY (entity_type, entity_id, version)
            )
            """,
            "CREATE INDEX shadow_outbox_due ON shadow_outbox (claimed_until_micros)",
            // The first run-time chaos change locks this row instead of racing to insert it (version 0: nothing
            // stored yet; the settings from CHAOS_* are in force). A store where chaos was changed before keeps
            // its row.
            """
            INSERT INTO chaos_state (id, version, enabled, fail_rate, scope, seed, expires_at_micros, latency_ms, reason,
                                     updated_by, updated_at_micros)
            VALUES (1, 0, 0, 0, 'shadow_write_only', '', NULL, 0, NULL, 'migration', 0)
            ON CONFLICT (id) DO NOTHING
            """,
        ]),
        // The W3C traceparent of the traced request that wrote the row (NULL when tracing is off): the notification's
        // delivery and the shadow write continue that request's trace, in whichever process. On PostgreSQL the
        // length check is added NOT VALID: every new row is checked, and the existing ones (all NULL) are not
        // scanned while the tables are locked, so the upgrade of a store with years of notifications is instant.
        Migration(
            version: 10, name: "trace_context",
            sqlite: [
                "ALTER TABLE notifications ADD COLUMN trace_parent TEXT CHECK (trace_parent IS NULL OR length(trace_parent) <= 128)",
                "ALTER TABLE shadow_outbox ADD COLUMN trace_parent TEXT CHECK (trace_parent IS NULL OR length(trace_parent) <= 128)",
            ],
            postgres: [
                "ALTER TABLE notifications ADD COLUMN trace_parent TEXT",
                """
                ALTER TABLE notifications ADD CONSTRAINT notifications_trace_parent_length
                    CHECK (trace_parent IS NULL OR length(trace_parent) <= 128) NOT VALID
                """,
                "ALTER TABLE shadow_outbox ADD COLUMN trace_parent TEXT",
                """
                ALTER TABLE shadow_outbox ADD CONSTRAINT shadow_outbox_trace_parent_length
                    CHECK (trace_parent IS NULL OR length(trace_parent) <= 128) NOT VALID
                """,
            ]),
    ]

    /// The shadow store's own schema (a separate database): the mirrored rows, with a version that only ever
    /// grows and a tombstone for deletes, so a late, older write can never undo a newer one.
    public static let shadowMigrations: [Migration] = [
        Migration(version: 1, name: "shadow_listings", both: [
            """
            CREATE TABLE listings (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL,
                title TEXT NOT NULL,
                price BIGINT NOT NULL,
                version BIGINT NOT NULL,
                created_at_micros BIGINT NOT NULL,
                updated_at_micros BIGINT NOT NULL,
                deleted INTEGER NOT NULL CHECK (deleted IN (0, 1))
            )
            """,
        ]),
        Migration(
            version: 2, name: "listings_byte_order_index", sqlite: [],
            postgres: [#"CREATE INDEX listings_id_bytes ON listings (id COLLATE "C")"#]),
    ]

    /// Products (stock never negative; `units_stocked` counts every unit ever added, so stock + units in
    /// non-cancelled orders = units_stocked can be audited), orders with their items, the notification outbox
    /// written with each order, and the ledger's link from a payment or refund to its order.
    static let catalogTables = [
        """
        CREATE TABLE products (
            id TEXT PRIMARY KEY,
            seller_id TEXT NOT NULL REFERENCES users (id),
            sku TEXT NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
            name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            price BIGINT NOT NULL CHECK (price > 0 AND price <= 1000000000000),
            stock BIGINT NOT NULL CHECK (stock >= 0),
            units_stocked BIGINT NOT NULL CHECK (units_stocked >= stock AND units_stocked <= 1000000000000),
            status TEXT NOT NULL CHECK (status IN ('draft', 'active', 'disabled', 'archived')),
            created_at_micros BIGINT NOT NULL,
            updated_at_micros BIGINT NOT NULL,
            deleted_at_micros BIGINT
        )
        """,
        // A seller's SKUs are unique among products that are not deleted.
        "CREATE UNIQUE INDEX products_seller_sku ON products (seller_id, sku) WHERE deleted_at_micros IS NULL",
        "CREATE INDEX products_listing ON products (created_at_micros, id)",
        """
        CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            buyer_id TEXT NOT NULL REFERENCES users (id),
            wallet_id TEXT NOT NULL REFERENCES wallets (id),
            status TEXT NOT NULL CHECK (status IN ('paid', 'shipped', 'delivered', 'cancelled')),
            subtotal BIGINT NOT NULL CHECK (subtotal > 0),
            shipping BIGINT NOT NULL CHECK (shipping >= 0),
            total BIGINT NOT NULL CHECK (total = subtotal + shipping),
            shipping_source TEXT NOT NULL CHECK (shipping_source IN ('provider', 'fallback')),
            destination_country TEXT NOT NULL CHECK (length(destination_country) = 2),
            destination_postal_code TEXT NOT NULL,
            created_at_micros BIGINT NOT NULL,
            updated_at_micros BIGINT NOT NULL
        )
        """,
        "CREATE INDEX orders_buyer ON orders (buyer_id, created_at_micros)",
        """
        CREATE TABLE order_items (
            order_id TEXT NOT NULL REFERENCES orders (id),
            product_id TEXT NOT NULL REFERENCES products (id),
            seller_id TEXT NOT NULL,
            quantity BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
            unit_price BIGINT NOT NULL CHECK (unit_price > 0),
            PRIMARY KEY (order_id, product_id)
        )
        """,
        "CREATE INDEX order_items_product ON order_items (product_id)",
        """
        CREATE TABLE notifications (
            id TEXT PRIMARY KEY,
            channel TEXT NOT NULL CHECK (channel IN ('email', 'push')),
            recipient TEXT NOT NULL,
            template TEXT NOT NULL,
            data TEXT NOT NULL,
            order_id TEXT,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL CHECK (attempts >= 0),
            next_attempt_at_micros BIGINT NOT NULL,
            claimed_until_micros BIGINT,
            last_error TEXT,
            created_at_micros BIGINT NOT NULL,
            updated_at_micros BIGINT NOT NULL,
            sent_at_micros BIGINT
        )
        """,
        "CREATE INDEX notifications_due ON notifications (status, next_attempt_at_micros)",
        "ALTER TABLE wallet_transactions ADD COLUMN order_id TEXT",
        "CREATE INDEX wallet_transactions_order ON wallet_transactions (order_id)",
    ]

    /// Wallets (balance never negative, never past 10^15), their append-only ledger, transfers and idempotency
    /// keys. `entryNo` is the ledger's ever-growing position column, spelled per dialect.
    static func walletTables(entryNo: String) -> [String] {
        [
            """
            CREATE TABLE wallets (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL REFERENCES users (id),
                currency TEXT NOT NULL CHECK (length(currency) = 3),
                balance BIGINT NOT NULL CHECK (balance >= 0 AND balance <= 1000000000000000),
                created_at_micros BIGINT NOT NULL
            )
            """,
            "CREATE INDEX wallets_owner ON wallets (owner_id)",
            """
            CREATE TABLE wallet_transactions (
                \(entryNo),
                id TEXT NOT NULL UNIQUE,
                wallet_id TEXT NOT NULL REFERENCES wallets (id),
                kind TEXT NOT NULL CHECK (kind IN ('credit', 'debit')),
                amount BIGINT NOT NULL CHECK (amount > 0),
                balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
                reference TEXT,
                created_at_micros BIGINT NOT NULL
            )
            """,
            "CREATE INDEX wallet_transactions_wallet ON wallet_transactions (wallet_id, entry_no)",
            """
            CREATE TABLE transfers (
                id TEXT PRIMARY KEY,
                from_wallet_id TEXT NOT NULL REFERENCES wallets (id),
                to_wallet_id TEXT NOT NULL REFERENCES wallets (id),
                amount BIGINT NOT NULL CHECK (amount > 0),
                created_by TEXT NOT NULL,
                created_at_micros BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE idempotency_keys (
                user_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
                response_status INTEGER,
                response_body TEXT,
                created_at_micros BIGINT NOT NULL,
                updated_at_micros BIGINT NOT NULL,
                PRIMARY KEY (user_id, idem_key)
            )
            """,
            "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at_micros)",
        ]
    }

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
