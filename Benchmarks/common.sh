# Shared by the benchmark scripts (sourced, not run): builds release binaries, creates a throwaway PostgreSQL
# database, starts and stops `ballast serve`, and runs pgbench with per-transaction latency logs.
# Expects: BALLAST_BENCH_POSTGRES_URL, and `token` set by the caller. Sets: bin, work, db, db_url, port.
: "${BALLAST_BENCH_POSTGRES_URL:?set BALLAST_BENCH_POSTGRES_URL to a postgres:// URL}"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pgbench=${PGBENCH:-$pg_bin/pgbench}
psql=${PSQL:-$(command -v psql || echo "$pg_bin/psql")}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/ballast-bench.XXXXXX)
db="ballast_bench_$$"
admin_url=${BALLAST_BENCH_POSTGRES_URL}
db_url=$(printf '%s' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$db#")
libpq() { printf '%s' "$1" | sed -E 's/tlsmode=/sslmode=/'; }
server_pid=""
created_dbs=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  for name in $created_dbs; do
    "$psql" "$(libpq "$admin_url")" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_server() {  # $1 = DATABASE_URL, $2 = SHADOW_DATABASE_URL (default none); sets port and server_pid
  port=$(free_port)
  DATABASE_URL="$1" SHADOW_DATABASE_URL="${2:-none}" APP_ENV=staging MIGRATE_ON_START=true LOG_LEVEL=warning \
    PORT="$port" "$bin/ballast" serve >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# create_database [NAME]: NAME (default $db) is dropped again on exit. url_of NAME: its URL.
create_database() {
  local name=${1:-$db}
  "$psql" "$(libpq "$admin_url")" -qc "CREATE DATABASE $name" >/dev/null
  created_dbs="$created_dbs $name"
}
url_of() { printf '%s' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$1#"; }
sql_value() { "$psql" "$(libpq "$db_url")" -Atqc "$1"; }

pgbench_run() {  # $1 = script, then pgbench options (-T S or -t N, -c C) → "tps p50 p99"
  local script=$1; shift
  rm -f "$work"/pgb_log*
  local out; out=$(cd "$work" && "$pgbench" -n -M extended -j 2 "$@" -f "$script" \
    -l --log-prefix=pgb_log "$(libpq "$db_url")" 2>&1)
  local tps; tps=$(printf '%s\n' "$out" | sed -nE 's/^tps = ([0-9.]+).*/\1/p' | head -n 1)
  if [ -z "$tps" ]; then echo "pgbench failed: $out" >&2; exit 1; fi
  cat "$work"/pgb_log* | awk '{print $3}' | sort -n >"$work/lat"
  local n; n=$(wc -l <"$work/lat")
  local p50; p50=$(awk -v n="$n" 'NR==int(n*0.50)+1 {printf "%.2f", $1/1000}' "$work/lat")
  local p99; p99=$(awk -v n="$n" 'NR==int(n*0.99)+1 {printf "%.2f", $1/1000}' "$work/lat")
  echo "$tps $p50 $p99"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
