#!/usr/bin/env bash
# The cost of inline masking on a large result: wall time of a 1,000,000-row
# SELECT (~100 bytes a row) whose email column the `customers.email` rule
# rewrites, direct vs through hoop (hoopctl tunnel + TLS + broker), and
# through hoop selecting the same rows with the email column left out (so
# the difference is the masking itself). Target: hoop masked <= 1.25x direct.
#
#   bench/mask_select.sh            # RUNS=3 by default; best of RUNS per path
#   NO_BUILD=1 bench/mask_select.sh # use the release binaries already built
#
# The broker is `hoop-broker dev` (demo-pg masks customers.email, keeping
# the domain, and card numbers anywhere, keeping the last 4 digits).
# Needs: PostgreSQL server binaries, psql, curl. Loopback only; every
# process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"

die() { echo "bench: $*" >&2; exit 1; }
command -v curl >/dev/null || die "curl not found"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --locked -q -p hoopctl -p hoop-broker
BIN="$PWD/target/release"

work="$(mktemp -d /tmp/hoop-mask-bench.XXXXXX)"
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

export HOOP_CONFIG_DIR="$work/hoop"
"$BIN/hoop-broker" dev --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/dev.out" 2>"$work/dev.err" &
pids+=($!); BROKER_PID=$!
wait_for "$work/dev.out" "Press Ctrl-C"
URL="$(awk '/listening on/ {print $4}' "$work/dev.out")"
PGPORT_DIRECT="$(sed -n 's/.*throwaway PostgreSQL on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/dev.out")"
PW="$(cat "$work/data/demo-pg.password")"

"$BIN/hoopctl" login --no-browser >"$work/login.out" 2>&1 &
login_pid=$!
wait_for "$work/login.out" "enter the code"
CODE="$(grep -oE '[A-Z0-9]{4}-[A-Z0-9]{4}' "$work/login.out" | head -1)"
curl -sf --cacert "$HOOP_CONFIG_DIR/dev-broker-ca.pem" -d "user_code=$CODE" -d username=alice "$URL/idp/device" >/dev/null
wait "$login_pid" || die "login failed: $(cat "$work/login.out")"

"$BIN/hoopctl" connect demo-pg --reason benchmark >"$work/tunnel.out" 2>&1 &
pids+=($!)
wait_for "$work/tunnel.out" "export PGPASSWORD="
PGPORT_HOOP="$(sed -n 's/^Listening on 127.0.0.1:\([0-9]*\)/\1/p' "$work/tunnel.out")"
SECRET="$(sed -n "s/^ *export PGPASSWORD=//p" "$work/tunnel.out" | tr -d "'")"

export PGHOST=127.0.0.1 PGUSER=app PGDATABASE=demo PGSSLMODE=disable
NCUST="$(PGPASSWORD="$PW" psql -X -tA -p "$PGPORT_DIRECT" -c 'select count(*) from customers')"
ROWS="from customers c cross join generate_series(1, ceil(1000000.0 / $NCUST)::int) g limit 1000000"
MASKED="select c.id, c.email, g, repeat('x', 60) as filler $ROWS"
UNMASKED="select c.id, c.full_name, g, repeat('x', 60) as filler $ROWS"

best() { # port password sql -> best wall seconds of RUNS
  local port="$1" pw="$2" sql="$3" b="" s e t
  for _ in $(seq 1 "$RUNS"); do
    s=$(date +%s%N)
    PGPASSWORD="$pw" psql -X -q -p "$port" -c "$sql" >"$work/out"
    e=$(date +%s%N)
    t=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", (b-a)/1e9 }')
    b=$(awk -v t="$t" -v b="$b" 'BEGIN { print (b == "" || t < b) ? t : b }')
  done
  echo "$b"
}
hwm() { awk '/VmHWM/ {print $2}' "/proc/$BROKER_PID/status"; }

d="$(best "$PGPORT_DIRECT" "$PW" "$MASKED")"
u="$(best "$PGPORT_HOOP" "$SECRET" "$UNMASKED")"
before="$(hwm)"
h="$(best "$PGPORT_HOOP" "$SECRET" "$MASKED")"
after="$(hwm)"
grep -q '\*\*\*\*@example.com' "$work/out" || die "hoop's output is not masked"

echo
echo "1,000,000-row SELECT (~100 bytes a row), best of $RUNS, $(nproc) cores shared by every process"
printf '%-46s %8s %8s\n' path seconds x-direct
printf '%-46s %8s %8s\n' "direct (email column)" "$d" 1.00
printf '%-46s %8s %8s\n' "hoop, no column masked (full_name)" "$u" "$(awk -v a="$u" -v b="$d" 'BEGIN { printf "%.2f", a/b }')"
printf '%-46s %8s %8s\n' "hoop, email masked (keep-domain) + card scan" "$h" "$(awk -v a="$h" -v b="$d" 'BEGIN { printf "%.2f", a/b }')"
echo "broker peak RSS during the masked runs: ${before} KiB -> ${after} KiB"
