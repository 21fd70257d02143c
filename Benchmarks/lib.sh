# Shared by Benchmarks/run and Benchmarks/soak (sourced, not run): installs wrk if missing, builds the release
# binaries, finds or starts PostgreSQL, and measures CPU and memory of processes from /proc.
# Expects: token. Sets: bin, work, admin_url, postmaster; defines start_server/stop_server and the measuring helpers.
# --- Tools ------------------------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "wrk not found; installing it from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pgbench=${PGBENCH:-$pg_bin/pgbench}
psql=${PSQL:-$(command -v psql || echo "$pg_bin/psql")}
say "building release binaries"
swift build -c release --product ballast >/dev/null
swift build -c release --product ballast-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/ballast-bench.XXXXXX)
server_pid=""
created_dbs=""
own_pg=""

# --- PostgreSQL: the caller's, or a throwaway one ------------------------------------------------------------------
as_pg=()
if [ -z "${BALLAST_BENCH_POSTGRES_URL:-}" ]; then
  if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    as_pg=(runuser -u postgres --)
  fi
  own_pg="$work/pg"
  mkdir -p "$own_pg"
  [ "${#as_pg[@]}" -gt 0 ] && chown -R postgres:postgres "$work"
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${as_pg[@]}" "$pg_bin/initdb" -D "$own_pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$own_pg" -l "$work/pg.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $own_pg -c max_connections=200 -c shared_buffers=128MB" start >/dev/null
  BALLAST_BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres?tlsmode=disable"
fi
admin_url=$BALLAST_BENCH_POSTGRES_URL
libpq() { printf '%s' "$1" | sed -E 's/tlsmode=/sslmode=/'; }
url_of() { printf '%s' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$1#"; }
pg_admin() { "$psql" "$(libpq "$admin_url")" -Atqc "$1"; }
# create_database NAME: a new database, dropped again on exit.
create_database() {
  pg_admin "CREATE DATABASE $1" >/dev/null
  created_dbs="$created_dbs $1"
}
postmaster=$(head -n 1 "$(pg_admin 'SHOW data_directory')/postmaster.pid")

cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  for name in $created_dbs; do pg_admin "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true; done
  if [ -n "$own_pg" ]; then "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$own_pg" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- Measuring ----------------------------------------------------------------------------------------------------
# Clock ticks of CPU used so far by one process, and by PostgreSQL (the postmaster, its children, and the children
# it has reaped).
ticks_of() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local total; total=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$postmaster/stat")
  local child
  for child in $(ps -o pid= --ppid "$postmaster"); do
    total=$(( total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$child/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}
micros_per() { awk -v t="$1" -v n="$2" -v hz="$clk_tck" 'BEGIN { if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_server() {  # $1 = DATABASE_URL, $2 = SHADOW_DATABASE_URL (default none); default configuration (LOG_LEVEL
  # info, JSON): sets port, server_pid
  port=$(free_port)
  DATABASE_URL="$1" SHADOW_DATABASE_URL="${2:-none}" APP_ENV=staging MIGRATE_ON_START=true BALLAST_ADMIN_TOKEN="$token" \
    PORT="$port" "$bin/ballast" serve >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return
    sleep 0.1
  done
  say "server did not start"; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

