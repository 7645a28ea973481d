#!/usr/bin/env bash
# The Nexmark suite's queries (tests/nexmark/qN.sql, Flink's text) over the
# built-in generator into their blackhole sinks, each run alone by the
# release `eddy run`; prints events/s (the whole mixed sequence, as Nexmark
# counts) and events/s per core (over the --partitions workers).
#
#   scripts/nexmark-bench.sh [EVENTS] [PARTITIONS] [QUERIES...]
#   scripts/nexmark-bench.sh 10000000 2 q0 q5 q7
#
# EDDY: the eddy binary (default: build it with cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-10000000}
partitions=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
queries=("$@")
if [ ${#queries[@]} -eq 0 ]; then
  queries=(q0 q1 q2 q3 q4 q5 q7 q8 q9 q10 q11 q12 q13 q14 q15 q16 q17 q18 q19 q20 q21 q22)
fi
eddy=${EDDY:-}
if [ -z "$eddy" ]; then
  cargo build --release -q -p eddy --bin eddy
  eddy="${CARGO_TARGET_DIR:-target}/release/eddy"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# q14's count_char: the WebAssembly function of examples-udf/nexmark
udf_home="$work/udfs"
if printf '%s\n' "${queries[@]}" | grep -qx q14; then
  (cd examples-udf && cargo build -q --release --target wasm32-unknown-unknown -p nexmark)
  wasm="examples-udf/target/wasm32-unknown-unknown/release/nexmark.wasm"
  [ -n "${CARGO_TARGET_DIR:-}" ] && [ ! -f "$wasm" ] && wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/nexmark.wasm"
  "$eddy" --data-dir "$udf_home" udf register "$wasm" >/dev/null
fi
# q13's side input: keys 0..9999 (JSON lines; Flink's is CSV)
awk 'BEGIN { for (k = 0; k < 10000; k++) printf "{\"key\":%d,\"value\":\"side-%d\"}\n", k, k }' > "$work/side_input.jsonl"
printf '| query | events | seconds | events/s | events/s per core |\n| --- | --- | --- | --- | --- |\n'
for q in "${queries[@]}"; do
  sed "s/\${GENERATOR}/events = '$events'/" tests/nexmark/ddl.sql > "$work/$q.sql"
  sed "s|\${SIDE_INPUT}|$work/side_input.jsonl|" "tests/nexmark/$q.sql" >> "$work/$q.sql"
  start=$(date +%s.%N)
  "$eddy" --data-dir "$udf_home" run "$work/$q.sql" --partitions "$partitions" --quiet > /dev/null
  end=$(date +%s.%N)
  awk -v q="$q" -v n="$events" -v s="$start" -v e="$end" -v p="$partitions" 'BEGIN {
    t = e - s; printf "| %s | %d | %.2f | %.0f K | %.0f K |\n", q, n, t, n / t / 1000, n / t / p / 1000 }'
done
