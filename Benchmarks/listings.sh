#!/usr/bin/env bash
# Listings: (a) creates over HTTP on PostgreSQL at concurrency 16, with shadow writes off and then on (the shadow
# a second PostgreSQL database), for the cost of mirroring: the ratio of throughput (target ≥ 0.8) and of p99
# (target ≤ 1.2); (b) the discrepancy verifier over 1,000,000 listings in each store (a hundred made to differ):
# its duration (target < 10 s) and the process's peak memory.
#
#   Benchmarks/listings.sh
#
# PostgreSQL as in Benchmarks/run (BALLAST_BENCH_POSTGRES_URL, or a throwaway server of its own). ROWS (default
# 1000000) sizes the verifier run. The databases are created and dropped again.
set -euo pipefail
cd "$(dirname "$0")/.."
run_seconds=${RUN_SECONDS:-10}
concurrency=${CONCURRENCY:-16}
rows=${ROWS:-1000000}
token="bench-admin-token-0123456789abcdef0123456789"
clk_tck=$(getconf CLK_TCK)
say() { printf '[listings] %s\n' "$*" >&2; }
source Benchmarks/lib.sh
db="ballast_listings_$$"
db_url=$(url_of "$db")

http_run() {  # $1 = port → "tps p50 p99"
  "$bin/ballast-bench" http-listings --url "http://127.0.0.1:$1" --token "$token" --concurrency "$concurrency" \
    --seconds "$run_seconds" | sed -E 's/tps=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+).*/\1 \2 \3/'
}

create_database "$db"
create_database "${db}_shadow"
"$bin/ballast-bench" seed --database-url "$db_url" --token "$token" >/dev/null
start_server "$db_url"
read -r off_tps off_p50 off_p99 < <(http_run "$port")
stop_server
start_server "$db_url" "$(url_of "${db}_shadow")"
read -r on_tps on_p50 on_p99 < <(http_run "$port")
stop_server

create_database "${db}_vp"
create_database "${db}_vs"
verifier=$("$bin/ballast-bench" verifier --database-url "$(url_of "${db}_vp")" --shadow-url "$(url_of "${db}_vs")" --rows "$rows")

printf '\nlisting creates, concurrency %s, %s s per run (PostgreSQL synchronous_commit on)\n' "$concurrency" "$run_seconds"
printf '%-24s %10s %10s %10s\n' "run" "tps" "p50 ms" "p99 ms"
printf '%-24s %10.0f %10s %10s\n' "shadow off" "$off_tps" "$off_p50" "$off_p99"
printf '%-24s %10.0f %10s %10s\n' "shadow on" "$on_tps" "$on_p50" "$on_p99"
printf 'throughput on/off: %s (target >= 0.8); p99 on/off: %s (target <= 1.2)\n' \
  "$(ratio "$on_tps" "$off_tps")" "$(ratio "$on_p99" "$off_p99")"
printf '\n%s\n' "$verifier"
