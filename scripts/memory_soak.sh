#!/usr/bin/env bash
# Memory soak: runs examples/sql/soak.sql (endless generator, ~1M active keys
# per 10 s window) for DURATION seconds and prints the process RSS every
# INTERVAL seconds, with the rows read and the watermark, as a Markdown table.
#   scripts/memory_soak.sh [DURATION=120] [INTERVAL=5] [PARTITIONS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-120}
interval=${2:-5}
partitions=${3:-2}
cargo build --release -q -p eddy
bin="${CARGO_TARGET_DIR:-target}/release/eddy"
log=$(mktemp)
"$bin" run examples/sql/soak.sql --progress --partitions "$partitions" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
echo "| t (s) | RSS (MiB) | progress |"
echo "| --- | --- | --- |"
for ((t = interval; t <= duration; t += interval)); do
  sleep "$interval"
  rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  progress=$(tr '\r' '\n' <"$log" | grep -a 'rec/s' | tail -1 | sed 's/ *$//')
  echo "| $t | $rss | $progress |"
done
