#!/usr/bin/env bash
# Checks glvq's Llama forward pass against the reference implementation,
# transformers' LlamaForCausalLM on PyTorch (CPU), both on the stories260K
# fixture and on a dequantized packed model (see llama_interop.py). Run by
# CTest (label `interop`).
#
# PyPI has no CPU-only PyTorch wheel for Linux x86-64: `torch` pulls its
# CUDA runtime wheels (nvidia-*, about 3 GB more), and its libraries need
# them even to run on the CPU. That is the smallest install that works from
# PyPI alone; it is done once per venv and reused.
#
# Env: GLVQ_BIN_DIR       build/bin holding glvq and pack_model_tool (required)
#      GLVQ_FIXTURES_DIR  shared fixtures (required; exit 77 if stories260K is absent)
#      GLVQ_TORCH_VENV    virtualenv to use, created if missing
#                         (default: <build dir>/.venv-llama, reused across runs)
# Exit 77 (CTest: skipped) when the packages cannot be installed, e.g. offline
# (outside CI; with CI set that is a failure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/venv.sh"
torch_interop_setup glvq pack_model_tool

work=$(mktemp -d "${TMPDIR:-/tmp}/glvq-llama-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" "$here/llama_interop.py" --bin "$bin_dir" --fixture "$fixture" --work "$work"
