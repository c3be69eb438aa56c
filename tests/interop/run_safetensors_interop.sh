#!/usr/bin/env bash
# Checks glvq's safetensors files against the official Python package, both
# ways (see safetensors_interop.py). Run by CTest (label `interop`).
#
# Env: GLVQ_BIN_DIR   build/bin holding safetensors_tool (required)
#      GLVQ_PY_VENV   virtualenv to use, created if missing
#                     (default: <build dir>/.venv-interop, reused across runs)
# Exit 77 (CTest: skipped) when the packages cannot be installed, e.g. offline
# (outside CI; with CI set that is a failure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin_dir=${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR to the build/bin directory}
tool="$bin_dir/safetensors_tool"
if [[ ! -x "$tool" ]]; then
  echo "interop: $tool is not built (ninja safetensors_tool)" >&2
  exit 1
fi

venv=${GLVQ_PY_VENV:-$(dirname "$bin_dir")/.venv-interop}
py="$venv/bin/python"
# The tested versions.
requirements=("safetensors==0.8.0" "numpy>=1.24")

source "$here/venv.sh"
ensure_interop_venv "$venv" "safetensors, numpy" "${requirements[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" "$here/safetensors_interop.py" --tool "$tool" --work "$work"
