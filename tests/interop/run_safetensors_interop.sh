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
# The tested versions; a cached venv that already imports both is kept as is.
requirements=("safetensors==0.8.0" "numpy>=1.24")

ensure_venv() {
  "$py" -c 'import safetensors, numpy' 2>/dev/null && return 0
  python3 -m venv "$venv" &&
    "$py" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
}

# Two test runs sharing a build dir must not build the venv at the same time.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! ensure_venv; then
  # CI reaches PyPI: there a failed install is a failure, not a skip.
  if [[ -n "${CI:-}" ]]; then
    echo "interop: cannot set up $venv with ${requirements[*]}" >&2
    exit 1
  fi
  echo "interop: cannot set up $venv with ${requirements[*]} (offline?); skipping" >&2
  exit 77
fi
flock -u 9

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" "$here/safetensors_interop.py" --tool "$tool" --work "$work"
