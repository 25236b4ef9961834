#!/usr/bin/env bash
# Runs every test: installs the AWS-API emulator (ministack, pinned, from
# PyPI), the SAM translator and schemathesis (the OpenAPI fuzz's) into .venv, starts the emulator on a free
# loopback port with IAM enforced, builds the Lambda bootstrap, runs the
# workspace's tests (the deployed-shape test among them: template.yaml
# created in the emulator and driven through its gateway) against it and the
# embedded adapters, and stops it again.
# Extra arguments go to `cargo test` (e.g. `./infra/test.sh conformance`).
set -euo pipefail
cd "$(dirname "$0")/.."

. infra/venv.sh
. infra/emulator.sh

# The Lambda bootstrap as it is deployed (its own package, no local stack),
# for the deployed-shape test: stood up from template.yaml in the emulator.
cargo build --locked -p koinonia-lambda
export KOINONIA_LAMBDA_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/koinonia-lambda"

cargo test --workspace --locked --no-fail-fast "$@"
