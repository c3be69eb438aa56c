#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test suite.
# Extra arguments go to ctest (e.g. -L unit, -R safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
# CI also installs the servers that some tests start (a missing one fails
# them there; elsewhere they skip).
if [ -n "${CI:-}" ]; then scripts/install-deps.sh --with-services; else scripts/install-deps.sh; fi
scripts/build.sh
cd build
ctest --output-on-failure -j "${GLVQ_JOBS:-$(nproc)}" --timeout 900 "$@"
