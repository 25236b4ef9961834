#!/usr/bin/env bash
# The bench: the ports on the embedded store and on the AWS emulator, and the
# local stack's HTTP path; then the member directory over 10,000 members.
# Built in release mode. Prints Markdown tables.
# BENCH_N sets the operation count (default 2000; the emulator gets a quarter).
set -euo pipefail
cd "$(dirname "$0")/.."

. infra/venv.sh
. infra/emulator.sh

cargo bench --locked -p koinonia-functions --bench foundation --bench directory --bench pipeline
