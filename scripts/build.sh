#!/usr/bin/env bash
# Configures (once) and builds glvq into build/ with the `release` preset.
# Binaries land in build/bin/. CUDA is built when nvcc is found; set
# GLVQ_CUDA_ARCHS to choose architectures (CI builds for 90 only).
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
if [ -n "${GLVQ_CUDA_ARCHS:-}" ]; then
  args+=("-DCMAKE_CUDA_ARCHITECTURES=${GLVQ_CUDA_ARCHS}")
elif [ -n "${CI:-}" ]; then
  args+=("-DCMAKE_CUDA_ARCHITECTURES=90")
fi
if [ ! -f build/CMakeCache.txt ] || [ ${#args[@]} -gt 0 ]; then
  cmake --preset release "${args[@]}" >/dev/null
fi
cmake --build build -j "${GLVQ_JOBS:-$(nproc)}"
