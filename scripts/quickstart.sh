#!/usr/bin/env bash
# README command 1: install dependencies, build, generate the small example
# model (synthetic, Llama-shaped, LLM-like weight statistics) and run the
# main job on it: quantize it to 2 bits per weight with GLVQ in embedded
# mode (a coordinator and workers in one process, docs/service.md), which
# ends with the per-tensor quality report; then the model-level report:
# NLL of original and quantized model, their difference, KL and top-1
# agreement on text sampled from the original model itself (the example
# model has no dataset; docs/calibration.md). tests/integration/
# quickstart_test.cc runs these commands on a tiny example model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

model=out/example-model
if [ ! -f "$model/model.safetensors" ]; then
  rm -rf "$model"
  mkdir -p out
  build/bin/glvq example-model --out "$model"
fi
# glvq never overwrites an output: drop the previous run's.
out=out/example-model-glvq2
rm -rf "$out"
build/bin/glvq quantize --model "$model" --out "$out" \
  --config examples/quickstart-job.yaml --workers 2

tokens=out/example-model-samples.txt
rm -f "$tokens"
build/bin/glvq sample --model "$model" --out "$tokens" --sequences 16 --length 128 --seed 1
build/bin/glvq eval --model "$model" --packed "$out" --tokens "$tokens"
