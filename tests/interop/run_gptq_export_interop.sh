#!/usr/bin/env bash
# Checks `glvq export --format gptq|gptq_v2` with an independent unpacker and
# transformers (gptq_export_interop.py). Run by CTest (label `interop`).
# Env: GLVQ_BIN_DIR, GLVQ_FIXTURES_DIR, GLVQ_TORCH_VENV as for
# run_llama_interop.sh (the same venv). Exit 77: packages not installable
# (offline, outside CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin_dir=${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR to the build/bin directory}
fixture=${GLVQ_FIXTURES_DIR:?set GLVQ_FIXTURES_DIR}/stories260K
if [[ ! -x "$bin_dir/glvq" ]]; then
  echo "interop: $bin_dir/glvq is not built (ninja glvq)" >&2
  exit 1
fi
if [[ ! -f "$fixture/eval_tokens_seed1234.txt" ]]; then
  echo "interop: fixture $fixture not found; skipping" >&2
  exit 77
fi

venv=${GLVQ_TORCH_VENV:-$(dirname "$bin_dir")/.venv-llama}
requirements=("torch==2.15.0" "transformers==5.23.0" "safetensors==0.8.0" "numpy>=1.24")
source "$here/venv.sh"
ensure_interop_venv "$venv" "torch, transformers, safetensors, numpy" "${requirements[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-gptq-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$here/gptq_export_interop.py" --bin "$bin_dir" --fixture "$fixture" \
  --work "$work/w"
