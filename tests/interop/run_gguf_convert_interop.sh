#!/usr/bin/env bash
# Checks scripts/models/gguf_to_hf.py (GGUF -> Hugging Face Llama checkpoint,
# as scripts/fetch-models.sh uses it) on a tiny random Llama that
# transformers makes and the gguf package writes the way llama.cpp does
# (see gguf_convert_interop.py). Run by CTest (label `interop`); downloads
# nothing but the venv's packages and needs no glvq binary.
#
# Env: GLVQ_BIN_DIR     build/bin; its build dir holds the default venv
#      GLVQ_TORCH_VENV  virtualenv to use, created if missing (default:
#                       <build dir>/.venv-llama, shared with
#                       run_llama_interop.sh: PyTorch is installed once)
# Exit 77 (CTest: skipped) when the packages cannot be installed, e.g. offline
# (outside CI; with CI set that is a failure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${GLVQ_TORCH_VENV:-$(dirname "${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR or GLVQ_TORCH_VENV}")/.venv-llama}
py="$venv/bin/python"
# The tested versions: run_llama_interop.sh's, plus the GGUF reader/writer
# (tokenizers comes with transformers).
requirements=("torch==2.15.0" "transformers==5.23.0" "safetensors==0.8.0" "numpy>=1.24"
              "gguf==0.19.0")

source "$here/venv.sh"
ensure_interop_venv "$venv" "torch, transformers, safetensors, numpy, gguf, tokenizers" \
  "${requirements[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-gguf-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" "$here/gguf_convert_interop.py" --work "$work"
