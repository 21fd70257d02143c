#!/usr/bin/env bash
# Orders: Ballast over HTTP on loopback, side by side with pgbench running the same order transaction SQL (the
# token lookup; BEGIN; the conditional stock update; the order, its item, the one-statement payment and the two
# outbox rows; COMMIT — or, when the stock update took nothing, the read that explains why and ROLLBACK), at
# concurrency 64:
# (a) a flash sale: one product with 1,000 in stock, 5,000 single-unit orders; (b) orders spread over 1,000
# products for a fixed time. Then the same HTTP runs on SQLite. Prints throughput, p50/p99 latency, the ratios,
# and the oversell count of every flash sale (units sold beyond units stocked; must be 0).
#
#   BALLAST_BENCH_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/postgres?tlsmode=disable' Benchmarks/orders.sh
#
# The user must be allowed to create databases (and the server to accept 64 more connections); the script
# creates one database and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
run_seconds=${RUN_SECONDS:-10}
concurrency=${CONCURRENCY:-64}
flash_orders=${FLASH_ORDERS:-5000}
token="bench-admin-token-0123456789abcdef0123456789"
source Benchmarks/common.sh

http_run() {  # $1 = port, $2 = flash|spread → "tps p50 p99 created"
  "$bin/ballast-bench" http-orders --url "http://127.0.0.1:$1" --token "$token" --products "$2" \
    --concurrency "$concurrency" --orders "$flash_orders" --seconds "$run_seconds" \
    | sed -E 's/tps=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+) answered=[0-9]+ created=([0-9]+).*/\1 \2 \3 \4/'
}

flash_id_sql="md5('flash')::uuid::text"
# Units of the flash product sold beyond the units it was ever stocked with (0 unless stock was oversold), and
# whether stock + units sold = units stocked.
oversold() { "$bin/ballast-bench" oversold --database-url "$1"; }
restock_flash() { sql_value "UPDATE products SET stock = stock + 1000, units_stocked = units_stocked + 1000 WHERE id = $flash_id_sql" >/dev/null; }

# --- PostgreSQL ------------------------------------------------------------------------------------------------
create_database
"$bin/ballast-bench" seed --database-url "$db_url" --token "$token" >/dev/null
hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
owner="00000000-0000-0000-0000-0000000000b1"
product_columns="id, seller_id, sku, name, price, stock, units_stocked, status, created_at_micros, updated_at_micros, deleted_at_micros"
order_script() {  # $1 = SQL expression of the product id → a pgbench script
  cat <<SQL
\\set w random(1, 10000)
\\set p random(1, 1000)
\\set o random(1, 9000000000000000)
\\set price 0
SELECT id, name, role, token_hash, created_at_micros FROM users WHERE token_hash = '$hash';
BEGIN;
UPDATE products SET stock = stock - 1 WHERE id = $1 AND status = 'active' AND deleted_at_micros IS NULL AND stock >= 1 RETURNING seller_id, price \\aset
\\if :price > 0
INSERT INTO orders (id, buyer_id, wallet_id, status, subtotal, shipping, total, shipping_source, destination_country, destination_postal_code, created_at_micros, updated_at_micros) VALUES (md5('o' || :o)::uuid::text, '$owner', md5('w' || :w)::uuid::text, 'paid', :price, 500, :price + 500, 'fallback', 'US', '94107', 0, 0);
INSERT INTO order_items (order_id, product_id, seller_id, quantity, unit_price) VALUES (md5('o' || :o)::uuid::text, $1, :seller_id, 1, :price);
WITH w AS (UPDATE wallets SET balance = balance - (:price + 500) WHERE id = md5('w' || :w)::uuid::text AND owner_id = '$owner' AND currency = 'USD' AND balance >= :price + 500 RETURNING id, owner_id, currency, balance, created_at_micros), l AS (INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros) SELECT gen_random_uuid()::text, w.id, 'debit', :price + 500, w.balance, 'order:' || md5('o' || :o)::uuid::text, md5('o' || :o)::uuid::text, 0 FROM w RETURNING entry_no, id, wallet_id, kind, amount, balance_after, reference, created_at_micros) SELECT w.id, w.owner_id, w.currency, w.balance, w.created_at_micros, l.entry_no, l.id AS entry_id, l.kind, l.amount, l.balance_after, l.reference, l.created_at_micros AS entry_created_at_micros FROM w, l;
INSERT INTO notifications (id, channel, recipient, template, data, order_id, status, attempts, next_attempt_at_micros, created_at_micros, updated_at_micros) VALUES (gen_random_uuid()::text, 'email', '$owner', 'order_confirmation', '{"lines":1}', md5('o' || :o)::uuid::text, 'pending', 0, 0, 0, 0), (gen_random_uuid()::text, 'push', :seller_id, 'new_order', '{"units":1}', md5('o' || :o)::uuid::text, 'pending', 0, 0, 0, 0);
COMMIT;
\\else
SELECT $product_columns FROM products WHERE id = $1;
ROLLBACK;
\\endif
SQL
}
order_script "$flash_id_sql" >"$work/flash.sql"
order_script "md5('p' || :p)::uuid::text" >"$work/spread.sql"

start_server "$db_url"
read -r f_tps f_p50 f_p99 f_created < <(http_run "$port" flash)
f_over=$(oversold "$db_url")
read -r s_tps s_p50 s_p99 s_created < <(http_run "$port" spread)
stop_server
restock_flash
per_client=$(( flash_orders / concurrency ))
read -r pf_tps pf_p50 pf_p99 < <(pgbench_run flash.sql -c "$concurrency" -t "$per_client")
pf_over=$(oversold "$db_url")
pf_created=$(sql_value "SELECT count(*) FROM order_items WHERE product_id = $flash_id_sql")
pf_created=$(( pf_created - f_created ))
read -r ps_tps ps_p50 ps_p99 < <(pgbench_run spread.sql -c "$concurrency" -T "$run_seconds")

# --- SQLite ----------------------------------------------------------------------------------------------------
sqlite_url="sqlite:$work/bench.sqlite"
"$bin/ballast-bench" seed --database-url "$sqlite_url" --token "$token" >/dev/null
start_server "$sqlite_url"
read -r qf_tps qf_p50 qf_p99 qf_created < <(http_run "$port" flash)
read -r qs_tps qs_p50 qs_p99 qs_created < <(http_run "$port" spread)
stop_server
qf_over=$(oversold "$sqlite_url")

printf '\norders, concurrency %s; flash sale %s orders for 1,000 units; spread %s s (PostgreSQL synchronous_commit on)\n' \
  "$concurrency" "$flash_orders" "$run_seconds"
printf '%-32s %9s %9s %9s %7s %8s %s\n' "run" "tps" "p50 ms" "p99 ms" "ratio" "created" "oversold"
printf '%-32s %9.0f %9s %9s %7s %8s %s\n' "postgres flash: ballast HTTP" "$f_tps" "$f_p50" "$f_p99" "$(ratio "$f_tps" "$pf_tps")" "$f_created" "$f_over"
printf '%-32s %9.0f %9s %9s %7s %8s %s\n' "postgres flash: pgbench" "$pf_tps" "$pf_p50" "$pf_p99" "" "$pf_created" "$pf_over"
printf '%-32s %9.0f %9s %9s %7s %8s\n' "postgres spread: ballast HTTP" "$s_tps" "$s_p50" "$s_p99" "$(ratio "$s_tps" "$ps_tps")" "$s_created"
printf '%-32s %9.0f %9s %9s %7s\n' "postgres spread: pgbench" "$ps_tps" "$ps_p50" "$ps_p99" ""
printf '%-32s %9.0f %9s %9s %7s %8s %s\n' "sqlite flash: ballast HTTP" "$qf_tps" "$qf_p50" "$qf_p99" "" "$qf_created" "$qf_over"
printf '%-32s %9.0f %9s %9s %7s %8s\n' "sqlite spread: ballast HTTP" "$qs_tps" "$qs_p50" "$qs_p99" "" "$qs_created"
