#!/usr/bin/env bash
# Starts a local Kafka-protocol broker for the integration tests: the
# single-binary broker of the `noida-db` PyPI package (MIT), installed into
# .venv/ (ignored by git). Prints `export EDDY_TEST_KAFKA=127.0.0.1:PORT`
# on success; `scripts/kafka-broker.sh stop` stops it.
#
#   eval "$(scripts/kafka-broker.sh)"   # then: cargo test --test kafka
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${EDDY_KAFKA_PORT:-19092}"
DATA="${EDDY_KAFKA_DATA:-$PWD/target/noida-db}"
VENV="$PWD/.venv"
PIDFILE="$DATA/broker.pid"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if [ "${1:-}" = "stop" ]; then
  if [ -f "$PIDFILE" ]; then
    # the launcher and the broker binary it starts share a process group
    kill -- "-$(cat "$PIDFILE")" 2>/dev/null || true
    for _ in $(seq 1 50); do port_open || break; sleep 0.1; done
    rm -f "$PIDFILE"
  fi
  exit 0
fi

if port_open; then
  echo "port $PORT is already in use (another broker?); stop it, or set EDDY_KAFKA_PORT" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/noida-db" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check noida-db==0.2.3 >&2
fi
# a fresh data directory each time: tests create their own topics
rm -rf "$DATA"
mkdir -p "$DATA"
setsid "$VENV/bin/noida-db" start --only kafka --kafka-port "$PORT" --host 127.0.0.1 \
  --data-dir "$DATA" >"$DATA/broker.log" 2>&1 &
echo $! >"$PIDFILE" # setsid: also the process group's id
for _ in $(seq 1 100); do
  if port_open; then
    echo "export EDDY_TEST_KAFKA=127.0.0.1:$PORT"
    exit 0
  fi
  sleep 0.1
done
echo "the noida-db Kafka broker did not start; its log:" >&2
cat "$DATA/broker.log" >&2
exit 1
