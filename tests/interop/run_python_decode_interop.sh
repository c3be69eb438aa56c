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
source "$here/venv.sh"
torch_interop_setup glvq

name=$(basename "$0" .sh)
name=${name#run_}
work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

install_python_package "$py" "$source_dir/python" "$work"
PYTHONPATH="$work/site" "$py" "$here/$name.py" \
  --bin "$bin_dir" --fixture "$fixture" --work "$work/cases"
