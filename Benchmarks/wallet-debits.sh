#!/usr/bin/env bash
# Wallet debits: Ballast over HTTP on loopback, side by side with pgbench running the same SQL transaction
# (the token lookup, then BEGIN; the conditional UPDATE and its ledger INSERT in one statement; COMMIT), at
# concurrency 16:
# (a) every debit on one hot wallet, (b) debits spread over 10,000 wallets. Then the same HTTP runs on SQLite.
# Prints throughput, p50/p99 latency and the ratios. synchronous_commit stays on.
#
#   BALLAST_BENCH_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/postgres?tlsmode=disable' Benchmarks/wallet-debits.sh
#
# The user must be allowed to create databases; the script creates one and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
run_seconds=${RUN_SECONDS:-10}
concurrency=${CONCURRENCY:-16}
token="bench-admin-token-0123456789abcdef0123456789"
source Benchmarks/common.sh

http_run() {  # $1 = port, $2 = hot|spread → "tps p50 p99"
  "$bin/ballast-bench" http-debits --url "http://127.0.0.1:$1" --token "$token" --wallets "$2" \
    --concurrency "$concurrency" --seconds "$run_seconds" | sed -E 's/tps=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+).*/\1 \2 \3/'
}

# --- PostgreSQL ------------------------------------------------------------------------------------------------
create_database
"$bin/ballast-bench" seed --database-url "$db_url" --token "$token" >/dev/null
hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
owner="00000000-0000-0000-0000-0000000000b1"
cat >"$work/hot.sql" <<SQL
SELECT id, name, role, token_hash, created_at_micros FROM users WHERE token_hash = '$hash';
BEGIN;
WITH w AS (UPDATE wallets SET balance = balance - 1 WHERE id = md5('hot')::uuid::text AND balance >= 1 AND (owner_id = '$owner' OR 1 = 1) RETURNING id, owner_id, currency, balance, created_at_micros), l AS (INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros) SELECT gen_random_uuid()::text, w.id, 'debit', 1, w.balance, NULL, NULL, 0 FROM w RETURNING entry_no, id, wallet_id, kind, amount, balance_after, reference, created_at_micros) SELECT w.id, w.owner_id, w.currency, w.balance, w.created_at_micros, l.entry_no, l.id AS entry_id, l.kind, l.amount, l.balance_after, l.reference, l.created_at_micros AS entry_created_at_micros FROM w, l;
COMMIT;
SQL
cat >"$work/spread.sql" <<SQL
\set n random(1, 10000)
SELECT id, name, role, token_hash, created_at_micros FROM users WHERE token_hash = '$hash';
BEGIN;
WITH w AS (UPDATE wallets SET balance = balance - 1 WHERE id = md5('w' || :n)::uuid::text AND balance >= 1 AND (owner_id = '$owner' OR 1 = 1) RETURNING id, owner_id, currency, balance, created_at_micros), l AS (INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros) SELECT gen_random_uuid()::text, w.id, 'debit', 1, w.balance, NULL, NULL, 0 FROM w RETURNING entry_no, id, wallet_id, kind, amount, balance_after, reference, created_at_micros) SELECT w.id, w.owner_id, w.currency, w.balance, w.created_at_micros, l.entry_no, l.id AS entry_id, l.kind, l.amount, l.balance_after, l.reference, l.created_at_micros AS entry_created_at_micros FROM w, l;
COMMIT;
SQL

start_server "$db_url"
read -r h_tps h_p50 h_p99 < <(http_run "$port" hot)
read -r s_tps s_p50 s_p99 < <(http_run "$port" spread)
stop_server
read -r ph_tps ph_p50 ph_p99 < <(pgbench_run hot.sql -c "$concurrency" -T "$run_seconds")
read -r ps_tps ps_p50 ps_p99 < <(pgbench_run spread.sql -c "$concurrency" -T "$run_seconds")

# --- SQLite ----------------------------------------------------------------------------------------------------
sqlite_url="sqlite:$work/bench.sqlite"
"$bin/ballast-bench" seed --database-url "$sqlite_url" --token "$token" >/dev/null
start_server "$sqlite_url"
read -r qh_tps qh_p50 qh_p99 < <(http_run "$port" hot)
read -r qs_tps qs_p50 qs_p99 < <(http_run "$port" spread)
stop_server

printf '\nwallet debits, concurrency %s, %s s per run (PostgreSQL synchronous_commit on)\n' "$concurrency" "$run_seconds"
printf '%-30s %10s %10s %10s %8s\n' "run" "tps" "p50 ms" "p99 ms" "ratio"
printf '%-30s %10.0f %10s %10s %8s\n' "postgres hot: ballast HTTP" "$h_tps" "$h_p50" "$h_p99" "$(ratio "$h_tps" "$ph_tps")"
printf '%-30s %10.0f %10s %10s %8s\n' "postgres hot: pgbench" "$ph_tps" "$ph_p50" "$ph_p99" ""
printf '%-30s %10.0f %10s %10s %8s\n' "postgres spread: ballast HTTP" "$s_tps" "$s_p50" "$s_p99" "$(ratio "$s_tps" "$ps_tps")"
printf '%-30s %10.0f %10s %10s %8s\n' "postgres spread: pgbench" "$ps_tps" "$ps_p50" "$ps_p99" ""
printf '%-30s %10.0f %10s %10s %8s\n' "sqlite hot: ballast HTTP" "$qh_tps" "$qh_p50" "$qh_p99" ""
printf '%-30s %10.0f %10s %10s %8s\n' "sqlite spread: ballast HTTP" "$qs_tps" "$qs_p50" "$qs_p99" ""
