#!/usr/bin/env bash
# Audit append micro-benchmark: records per second with 1, 4, 16 and 64
# concurrent writers on the default SQLite store (the durable record every
# Postgres statement waits for before it is forwarded). A rate that stays
# flat as writers grow, with CPU left over, is a serial step.
#
#   bench/audit.sh                    # 3 s per writer count
#   AUDIT_BENCH_SECS=10 bench/audit.sh 16 64
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p hoop-broker --example audit_append -- "$@"
