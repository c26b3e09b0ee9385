#!/usr/bin/env bash
# Postgres data-path benchmark: hoop against its baselines, in the same run.
#
#   bench/pg_throughput.sh            # DURATION=10 CLIENTS=4 by default
#   DURATION=30 CLIENTS=8 bench/pg_throughput.sh
#   NO_BUILD=1 bench/pg_throughput.sh  # use the release binaries already in target/release
#
# Three paths to one throwaway PostgreSQL (started by `hoop-broker dev`):
#   direct     pgbench/psql -> PostgreSQL (TCP, loopback)
#   pgbouncer  pgbench/psql -> pgbouncer (session pooling) -> PostgreSQL
#   hoop       pgbench/psql -> hoopctl (127.0.0.1) -> TLS tunnel -> hoop-broker -> PostgreSQL
# and four workloads: read-only prepared statements, TPC-B-like writes over the
# simple protocol, a new connection per transaction (connect cost: for hoop
# that includes a TLS handshake, token validation and the upstream SCRAM
# login), and a 1M-row COPY out (bulk relay throughput). It prints each number
# and the ratios hoop/direct and hoop/pgbouncer. Release binaries are built if
# missing. Needs: PostgreSQL server binaries, psql, pgbench, pgbouncer, curl.
# Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-4}"

die() { echo "bench: $*" >&2; exit 1; }
pgbin() { command -v "$1" 2>/dev/null || ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1; }
PGBENCH="$(pgbin pgbench)"; [ -n "$PGBENCH" ] || die "pgbench not found (apt-get install postgresql-contrib)"
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
[ -x "$PGBOUNCER" ] || die "pgbouncer not found (apt-get install pgbouncer)"
command -v curl >/dev/null || die "curl not found"

[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --locked -q -p hoopctl -p hoop-broker
BIN="$PWD/target/release"

work="$(mktemp -d /tmp/hoop-bench.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_for() { # file pattern
  for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  die "timed out waiting for '$2' in $1: $(cat "$1")"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export HOOP_CONFIG_DIR="$work/hoop"
"$BIN/hoop-broker" dev --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/dev.out" 2>"$work/dev.err" &
pids+=($!)
wait_for "$work/dev.out" "Press Ctrl-C"
URL="$(awk '/listening on/ {print $4}' "$work/dev.out")"
PGPORT_DIRECT="$(sed -n 's/.*throwaway PostgreSQL on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/dev.out")"
PW="$(cat "$work/data/demo-pg.password")"

# Log in as alice through the device flow, approving by form POST.
"$BIN/hoopctl" login --no-browser >"$work/login.out" 2>&1 &
login_pid=$!
wait_for "$work/login.out" "enter the code"
CODE="$(grep -oE '[A-Z0-9]{4}-[A-Z0-9]{4}' "$work/login.out" | head -1)"
curl -sf --cacert "$HOOP_CONFIG_DIR/dev-broker-ca.pem" -d "user_code=$CODE" -d username=alice "$URL/idp/device" >/dev/null
wait "$login_pid" || die "login failed: $(cat "$work/login.out")"

# A long-lived hoop tunnel on a local port.
"$BIN/hoopctl" connect demo-pg --reason benchmark >"$work/tunnel.out" 2>&1 &
pids+=($!)
wait_for "$work/tunnel.out" "export PGPASSWORD="
PGPORT_HOOP="$(sed -n 's/^Listening on 127.0.0.1:\([0-9]*\)/\1/p' "$work/tunnel.out")"
SECRET="$(sed -n "s/^ *export PGPASSWORD=//p" "$work/tunnel.out" | tr -d "'")"

# pgbouncer in session mode (it refuses to run as root: run it as postgres).
PGPORT_BOUNCER="$(free_port)"
bdir="$work/pgbouncer"
mkdir -p "$bdir"
printf '"app" "%s"\n' "$PW" >"$bdir/userlist.txt"
chmod 600 "$bdir/userlist.txt"
cat >"$bdir/pgbouncer.ini" <<INI
[databases]
demo = host=127.0.0.1 port=$PGPORT_DIRECT dbname=demo
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGPORT_BOUNCER
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $bdir/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
logfile = $bdir/pgbouncer.log
INI
RUNAS=()
if [ "$(id -u)" = 0 ]; then chown -R postgres "$bdir"; RUNAS=(runuser -u postgres --); fi
"${RUNAS[@]}" "$PGBOUNCER" "$bdir/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$PGPORT_BOUNCER") 2>/dev/null && break; sleep 0.1; done
PGPASSWORD="$PW" psql -X -q -h 127.0.0.1 -p "$PGPORT_BOUNCER" -U app -d demo -c 'select 1' >/dev/null \
  || die "pgbouncer does not answer: $(cat "$bdir/pgbouncer.log" 2>/dev/null)"

export PGHOST=127.0.0.1 PGUSER=app PGDATABASE=demo PGSSLMODE=disable
port_of() { case "$1" in direct) echo "$PGPORT_DIRECT";; pgbouncer) echo "$PGPORT_BOUNCER";; hoop) echo "$PGPORT_HOOP";; esac; }
pw_of() { case "$1" in hoop) echo "$SECRET";; *) echo "$PW";; esac; }

echo "bench: initialising pgbench tables (scale 10) ..." >&2
PGPASSWORD="$PW" PGPORT="$PGPORT_DIRECT" "$PGBENCH" -i -q -s 10 >/dev/null 2>&1

tps() { # target, pgbench args...
  local t="$1"; shift
  PGPASSWORD="$(pw_of "$t")" PGPORT="$(port_of "$t")" "$PGBENCH" -n -T "$DURATION" "$@" 2>/dev/null \
    | sed -n 's/^tps = \([0-9]*\).*/\1/p'
}
copy_secs() { # target
  local t="$1" start end
  start=$(date +%s%N)
  PGPASSWORD="$(pw_of "$t")" PGPORT="$(port_of "$t")" psql -X -q -c \
    "copy (select g, md5(g::text) from generate_series(1,1000000) g) to stdout" >/dev/null
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b-a)/1e9 }'
}

declare -A R
for t in direct pgbouncer hoop; do
  echo "bench: $t ..." >&2
  R[$t,ro]="$(tps "$t" -S -M prepared -c "$CLIENTS" -j 2)"
  R[$t,rw]="$(tps "$t" -M simple -c "$CLIENTS" -j 2)"
  R[$t,conn]="$(tps "$t" -S -C -c 2 -j 2)"
  R[$t,copy]="$(copy_secs "$t")"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
echo
echo "PostgreSQL data path, ${DURATION}s per run, $CLIENTS clients, $(nproc) cores, one machine"
printf '%-34s %12s %12s %12s %12s %14s\n' workload direct pgbouncer hoop hoop/direct hoop/pgbouncer
row() { # label key unit higher-is-better
  local d="${R[direct,$2]}" b="${R[pgbouncer,$2]}" h="${R[hoop,$2]}"
  printf '%-34s %12s %12s %12s %12s %14s\n' "$1 ($3)" "$d" "$b" "$h" "$(ratio "$h" "$d")" "$(ratio "$h" "$b")"
}
row "read-only, prepared" ro tps
row "TPC-B-like writes, simple" rw tps
row "new connection per transaction" conn tps
row "COPY 1M rows out" copy seconds
echo
echo "tps: higher is better (ratio < 1 means hoop is slower); seconds: lower is better (ratio > 1 means hoop is slower)."
