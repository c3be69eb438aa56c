#!/usr/bin/env bash
# Runs check_smollm2.py (arguments passed on) in a virtualenv with torch and
# transformers: build/.venv-llama, which tests/interop/run_llama_interop.sh
# makes, when it has them, else out/.venv-torch with the same pins (made
# once; PyTorch from PyPI pulls its CUDA wheels, several GB).
#
#   scripts/models/check_smollm2.sh [--glvq build/bin/glvq [--wait SECONDS]]
set -euo pipefail
cd "$(dirname "$0")/../.."

imports="torch, transformers, tokenizers"
venv=build/.venv-llama
if ! "$venv/bin/python" -c "import $imports" 2>/dev/null; then
  venv=out/.venv-torch
  if ! "$venv/bin/python" -c "import $imports" 2>/dev/null; then
    echo "check_smollm2: making $venv (torch, transformers)"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "torch==2.15.0" "transformers==5.23.0" "safetensors==0.8.0" "numpy>=1.24"
  fi
fi
exec "$venv/bin/python" scripts/models/check_smollm2.py "$@"
