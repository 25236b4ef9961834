# Sourced by infra/test.sh and infra/bench.sh: starts the AWS-API emulator
# (ministack from .venv) on a free loopback port with IAM enforced, exports
# KOINONIA_TEST_AWS_ENDPOINT and dummy credentials, and stops it on exit.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
emulator_state=$(mktemp -d)
emulator_log="$emulator_state/ministack.log"
# AUTH=true: every call is checked against the caller's IAM policies. The
# tests' own clients use the account's root key (`test`); the deployed-shape
# test's Lambdas call with their roles' credentials, so a missing IAM action
# fails it. All services run (the stack uses a dozen). AWS_ENDPOINT_URL is
# handed to every Lambda it runs, so their SDKs call the emulator.
# IOT_MTLS_ENABLED=0: otherwise ministack also listens on 0.0.0.0:8883.
AUTH=true BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" IOT_MTLS_ENABLED=0 \
  AWS_ENDPOINT_URL="http://127.0.0.1:$port" LOG_LEVEL=WARNING STATE_DIR="$emulator_state" \
  TMPDIR="$emulator_state" .venv/bin/ministack >"$emulator_log" 2>&1 &
emulator=$!
stop_emulator() {
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
  rm -rf "$emulator_state"
}
trap stop_emulator EXIT

for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$port/_ministack/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$emulator" 2>/dev/null; then
    echo "the AWS emulator (ministack) exited at start:" >&2; cat "$emulator_log" >&2; exit 1
  fi
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/_ministack/health" >/dev/null || {
  echo "the AWS emulator did not come up:" >&2; cat "$emulator_log" >&2; exit 1
}

export KOINONIA_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
# Nothing reads a profile or instance metadata: keep the SDK off the network.
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
