#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test suite.
# Extra arguments go to ctest (e.g. -L unit, -R safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j "${GLVQ_JOBS:-$(nproc)}" --timeout 900 "$@"
