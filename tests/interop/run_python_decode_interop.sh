#!/usr/bin/env bash
# Runs a check of the Python package (python/glvq, built and installed for
# the run) by CTest (label `interop`):
#   run_python_decode_interop.sh  python_decode_interop.py: the reader and
#       decoders against the C++ reference decoder, corrupted copies, the
#       worked examples of docs/format.md;
#   run_python_hf_interop.sh (a link to this file)  python_hf_interop.py:
#       packed models loaded by transformers against glvq eval.
#
# Env: GLVQ_BIN_DIR       build/bin holding glvq (required)
#      GLVQ_FIXTURES_DIR  shared fixtures (required; exit 77 if stories260K is absent)
#      GLVQ_TORCH_VENV    virtualenv to use, created if missing
#                         (default: <build dir>/.venv-llama, shared with the
#                         Llama interop test)
# Exit 77 (CTest: skipped) when the packages cannot be installed, e.g. offline
# (outside CI; with CI set that is a failure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
bin_dir=${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR to the build/bin directory}
fixture=${GLVQ_FIXTURES_DIR:?set GLVQ_FIXTURES_DIR}/stories260K
if [[ ! -x "$bin_dir/glvq" ]]; then
  echo "interop: $bin_dir/glvq is not built (ninja glvq)" >&2
  exit 1
fi
if [[ ! -f "$fixture/model.safetensors" ]]; then
  echo "interop: fixture $fixture not found; skipping" >&2
  exit 77
fi

venv=${GLVQ_TORCH_VENV:-$(dirname "$bin_dir")/.venv-llama}
py="$venv/bin/python"
# The tested versions (as run_llama_interop.sh).
requirements=("torch==2.15.0" "transformers==5.23.0" "safetensors==0.8.0" "numpy>=1.24")

source "$here/venv.sh"
ensure_interop_venv "$venv" "torch, transformers, safetensors, numpy" "${requirements[@]}"

name=$(basename "$0" .sh)
name=${name#run_}
work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

install_python_package "$py" "$source_dir/python" "$work"
PYTHONPATH="$work/site" "$py" "$here/$name.py" \
  --bin "$bin_dir" --fixture "$fixture" --work "$work/cases"
