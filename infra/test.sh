#!/usr/bin/env bash
# Runs every test: installs the AWS-API emulator (ministack, pinned, from
# PyPI) into .venv, starts it on a free loopback port, runs the workspace's
# tests against it and the embedded adapters, and stops it again.
# Extra arguments go to `cargo test` (e.g. `./infra/test.sh conformance`).
set -euo pipefail
cd "$(dirname "$0")/.."

. infra/venv.sh

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
state=$(mktemp -d)
log="$state/ministack.log"
# IOT_MTLS_ENABLED=0: otherwise ministack also listens on 0.0.0.0:8883.
BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" IOT_MTLS_ENABLED=0 SERVICES=dynamodb,sqs,s3,events \
  LOG_LEVEL=WARNING STATE_DIR="$state" .venv/bin/ministack >"$log" 2>&1 &
emulator=$!
stop() {
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
  rm -rf "$state"
}
trap stop EXIT

for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$port/_ministack/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$emulator" 2>/dev/null; then
    echo "the AWS emulator (ministack) exited at start:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/_ministack/health" >/dev/null || { echo "the AWS emulator did not come up:" >&2; cat "$log" >&2; exit 1; }

export KOINONIA_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
# No test reads a profile or instance metadata: keep the SDK off the network.
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

cargo test --workspace --locked --no-fail-fast "$@"
