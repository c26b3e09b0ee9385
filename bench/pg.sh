#!/usr/bin/env bash
# Postgres data-path benchmark: hoop against its baselines, in ONE run.
#
#   bench/pg.sh                     # DURATION=10 CLIENTS=4 by default; about 3 minutes
#   DURATION=30 bench/pg.sh
#   NO_BUILD=1 bench/pg.sh          # use the release binaries already in target/release
#
# Four paths to one demo PostgreSQL (started by `hoop-broker dev`):
#   direct     client -> PostgreSQL (TCP, loopback)
#   pgbouncer  client -> pgbouncer (session pooling) -> PostgreSQL
#   2 relays   client -> socat -> socat -> PostgreSQL: the two hops hoop's
#              path has (hoopctl, broker) with nothing else (no TLS, no
#              inspection, no audit): the floor for any design with a local
#              agent and a gateway on this machine
#   hoop       client -> hoopctl (127.0.0.1) -> TLS tunnel -> hoop-broker -> PostgreSQL
# hoop runs as `hoop-broker dev` configures `demo-pg`: the no-destructive
# guardrail set, the review set on orders, masking of customers.email and of
# card numbers, and statement recording on.
#
# It prints, side by side: pgbench -S TPS at CLIENTS clients (simple and
# prepared protocol), the average latency at 1 client (and hoop minus
# direct, in microseconds), new connections per second, the wall time of a
# 1,000,000-row SELECT (~100 bytes a row) whose email column a masking rule
# rewrites, and the CPU time (user+sys) hoopctl and the broker spend per
# query. Needs: PostgreSQL server binaries, psql, pgbench, pgbouncer, curl,
# python3, socat. Loopback only; every process it starts is stopped on exit.
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
command -v socat >/dev/null || die "socat not found (apt-get install socat)"

[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --locked -q -p hoopctl -p hoop-broker
BIN="$PWD/target/release"

work="$(mktemp -d /tmp/hoop-bench.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # As root, dev keeps the demo cluster outside its data dir (printed as "kept in DIR").
  cluster="$(sed -n 's/.*, kept in \(.*\)$/\1/p' "$work/dev.out" 2>/dev/null | head -1)"
  case "$cluster" in "$work"/*|"") ;; *) rm -rf "$cluster" ;; esac
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
pids+=($!); BROKER_PID=$!
wait_for "$work/dev.out" "Press Ctrl-C"
URL="$(awk '/listening on/ {print $4}' "$work/dev.out")"
PGPORT_DIRECT="$(sed -n 's/.*demo-pg *PostgreSQL on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/dev.out")"
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
pids+=($!); TUNNEL_PID=$!
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

# Two bare relays in a row (a process per connection, TCP_NODELAY on both legs).
PGPORT_RELAY2="$(free_port)"; PGPORT_RELAY1="$(free_port)"
socat "TCP-LISTEN:$PGPORT_RELAY2,bind=127.0.0.1,fork,reuseaddr,nodelay" "TCP:127.0.0.1:$PGPORT_DIRECT,nodelay" &
pids+=($!)
socat "TCP-LISTEN:$PGPORT_RELAY1,bind=127.0.0.1,fork,reuseaddr,nodelay" "TCP:127.0.0.1:$PGPORT_RELAY2,nodelay" &
pids+=($!)
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$PGPORT_RELAY1") 2>/dev/null && break; sleep 0.1; done

export PGHOST=127.0.0.1 PGUSER=app PGDATABASE=demo PGSSLMODE=disable
port_of() { case "$1" in direct) echo "$PGPORT_DIRECT";; pgbouncer) echo "$PGPORT_BOUNCER";; relays) echo "$PGPORT_RELAY1";; hoop) echo "$PGPORT_HOOP";; esac; }
pw_of() { case "$1" in hoop) echo "$SECRET";; *) echo "$PW";; esac; }

echo "bench: initialising pgbench tables (scale 10) ..." >&2
PGPASSWORD="$PW" PGPORT="$PGPORT_DIRECT" "$PGBENCH" -i -q -s 10 >/dev/null 2>&1

run_pgbench() { # target, pgbench args... -> full pgbench output
  local t="$1"; shift
  PGPASSWORD="$(pw_of "$t")" PGPORT="$(port_of "$t")" "$PGBENCH" -n -T "$DURATION" "$@" 2>/dev/null
}
field() { sed -n "s/^$1 = \([0-9.]*\).*/\1/p" | awk '{ if ($1 >= 100) printf "%d\n", $1; else print $1 }'; }
# CPU ticks (user+sys) of the hoop processes: the tunnel's hoopctl and the broker.
ticks() { awk '{ s += $14 + $15 } END { print s }' "/proc/$TUNNEL_PID/stat" "/proc/$BROKER_PID/stat"; }
HZ="$(getconf CLK_TCK)"

# 1M rows of ~100 bytes with the demo customers' emails in them (the column
# keeps its source table.column, so the customers.email masking rule applies).
NCUST="$(PGPASSWORD="$PW" psql -X -tA -h 127.0.0.1 -p "$PGPORT_DIRECT" -U app -d demo -c 'select count(*) from customers')"
BIG_SELECT="select c.id, c.email, g, repeat('x', 60) as filler from customers c cross join generate_series(1, ceil(1000000.0 / $NCUST)::int) g limit 1000000"
select_secs() { # target
  local t="$1" start end
  start=$(date +%s%N)
  PGPASSWORD="$(pw_of "$t")" PGPORT="$(port_of "$t")" psql -X -q -c "$BIG_SELECT" >"$work/select.$t"
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b-a)/1e9 }'
}

declare -A R
for t in direct pgbouncer relays hoop; do
  echo "bench: $t ..." >&2
  [ "$t" = hoop ] && before="$(ticks)"
  out="$(run_pgbench "$t" -S -M simple -c "$CLIENTS" -j 2)"
  if [ "$t" = hoop ]; then
    after="$(ticks)"
    n="$(printf '%s\n' "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')"
    R[hoop,cpu]="$(awk -v a="$before" -v b="$after" -v n="$n" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", (b-a)/hz*1e6/n; else print "n/a" }')"
  fi
  R[$t,ro]="$(printf '%s\n' "$out" | field tps)"
  R[$t,prep]="$(run_pgbench "$t" -S -M prepared -c "$CLIENTS" -j 2 | field tps)"
  R[$t,lat]="$(run_pgbench "$t" -S -M simple -c 1 | field 'latency average')"
  # The relays are a floor for the small-statement rows only.
  [ "$t" = relays ] && { R[$t,conn]="-"; R[$t,select]="-"; continue; }
  R[$t,conn]="$(run_pgbench "$t" -S -C -c 2 -j 2 | field tps)"
  R[$t,select]="$(select_secs "$t")"
done
R[direct,cpu]="-"; R[pgbouncer,cpu]="-"; R[relays,cpu]="-"

masked_ok="no"
if grep -q '@' "$work/select.hoop" && ! cmp -s "$work/select.direct" "$work/select.hoop"; then masked_ok="yes"; fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
echo
echo "PostgreSQL data path, ${DURATION}s per pgbench run, $(nproc) cores shared by every process, $(uname -m)"
printf '%-44s %10s %10s %10s %10s %12s %15s %14s\n' measure direct pgbouncer '2 relays' hoop hoop/direct hoop/pgbouncer relays/direct
row() { # label key
  local d="${R[direct,$2]}" b="${R[pgbouncer,$2]}" r="${R[relays,$2]}" h="${R[hoop,$2]}"
  printf '%-44s %10s %10s %10s %10s %12s %15s %14s\n' "$1" "$d" "$b" "$r" "$h" "$(ratio "$h" "$d")" "$(ratio "$h" "$b")" "$(ratio "$r" "$d")"
}
row "pgbench -S, $CLIENTS clients, simple (tps)" ro
row "pgbench -S, $CLIENTS clients, prepared (tps)" prep
row "pgbench -S, 1 client, latency (ms)" lat
row "new connection per transaction (tps)" conn
row "1M-row SELECT, email masked (s)" select
printf '%-44s %10s %10s %10s %10s\n' "hoopctl+broker CPU per query (us)" - - - "${R[hoop,cpu]}"
echo
added="$(awk -v h="${R[hoop,lat]}" -v d="${R[direct,lat]}" 'BEGIN { printf "%.0f", (h-d)*1000 }')"
floor="$(awk -v h="${R[relays,lat]}" -v d="${R[direct,lat]}" 'BEGIN { printf "%.0f", (h-d)*1000 }')"
echo "added latency at 1 client (hoop - direct): ${added} us; two bare relays add ${floor} us"
echo "masked values seen in hoop's SELECT output and not in direct's: $masked_ok"
echo "tps: higher is better; ms and s: lower is better (ratio > 1 means hoop is slower)."
