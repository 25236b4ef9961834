#!/usr/bin/env bash
# Runs every test: installs the AWS-API emulator (ministack, pinned, from
# PyPI) into .venv, starts it on a free loopback port, runs the workspace's
# tests against it and the embedded adapters, and stops it again.
# Extra arguments go to `cargo test` (e.g. `./infra/test.sh conformance`).
set -euo pipefail
cd "$(dirname "$0")/.."

. infra/venv.sh
. infra/emulator.sh

cargo test --workspace --locked --no-fail-fast "$@"
