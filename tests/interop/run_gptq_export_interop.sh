#!/usr/bin/env bash
# Checks `glvq export --format gptq|gptq_v2` with an independent unpacker and
# transformers (gptq_export_interop.py). Run by CTest (label `interop`).
# Env: GLVQ_BIN_DIR, GLVQ_FIXTURES_DIR, GLVQ_TORCH_VENV as for
# run_llama_interop.sh (the same venv). Exit 77: packages not installable
# (offline, outside CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/venv.sh"
torch_interop_setup glvq

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-gptq-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" "$here/gptq_export_interop.py" --bin "$bin_dir" --fixture "$fixture" \
  --work "$work/w"
