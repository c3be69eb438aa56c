#!/usr/bin/env bash
# Checks glvq's forward pass on the model families it supports (Llama with
# every rope_scaling type, Mistral, Qwen2, Qwen3) against transformers, on
# tiny random models built with transformers' own classes (see
# families_interop.py). Run by CTest (label `interop`).
#
# Env: GLVQ_BIN_DIR, GLVQ_FIXTURES_DIR, GLVQ_TORCH_VENV as for
# run_llama_interop.sh (the same shared venv). Exit 77 (CTest: skipped) when
# the packages cannot be installed, e.g. offline (outside CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/venv.sh"
torch_interop_setup glvq

source_dir=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-families-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
install_python_package "$py" "$source_dir/python" "$work"
PYTHONPATH="$work/site" "$py" "$here/families_interop.py" --bin "$bin_dir" --work "$work"
