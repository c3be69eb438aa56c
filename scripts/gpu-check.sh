#!/usr/bin/env bash
# The first thing to run on a machine with an NVIDIA GPU (docs/development.md).
#
# The GPU machines this project is lent have nvcc, CMake, ninja and PyTorch
# but none of the Debian packages glvq builds against, and no network. So the
# check comes in two halves:
#
#   scripts/gpu-check.sh prepare
#       Here, on the Debian build machine: builds the CUDA configuration for
#       sm_90 into build-cuda/ (the cuda-release preset) and packs what the
#       check runs into gpu-bundle/ (git-ignored): the CUDA test binaries and
#       glvq-bench, stripped, plus every shared library they load — glibc and
#       its loader included, so the bundle does not depend on the other
#       machine's C library. Fails if the bundle exceeds 60 MiB.
#
#   scripts/gpu-check.sh run [RESULTS_FILE]
#       There, from the repository root with gpu-bundle/ beside it: records
#       the device, runs the CUDA agreement tests (ctest label `gpu`, here as
#       plain GoogleTest binaries because ctest's files hold this machine's
#       paths), glvq-bench speed --backend cuda against --backend cpu, and one
#       layer of the Llama-2-70B-shaped run for glvq and gptq. Writes every
#       output to RESULTS_FILE (default: $OUT/gpu-check.txt if $OUT is set,
#       else out/gpu-check.txt) and prints a summary table last. Each step
#       has its own time limit; together at most 8.8 minutes (typically
#       2-3). Then the packed models of `prepare` load in transformers
#       through python/glvq on the GPU (python_hf_cuda_check.py).
#       Run here, it is the rehearsal: without a device the tests skip and the
#       CUDA benchmarks say so, up to the first CUDA call.
#
# The results go into bench/RESULTS.md with the date and the device.
set -uo pipefail
cd "$(dirname "$0")/.."

BUNDLE=gpu-bundle
MAX_BUNDLE_MIB=60
TESTS=(cuda_bitpack_test cuda_codec_test cuda_scalar_test cuda_glvq_test cuda_batches_test)
TOOLS=(glvq-bench)
# Packed models for the transformers integration's CUDA check
# (tests/gpu/python_hf_cuda_check.py): one per method, from the stories260K
# fixture ($GLVQ_FIXTURES_DIR, default ../shared/fixtures), without Hessians.
HF_CASES=("rtn:--method rtn --bits 4" "gptq:--method gptq --bits 3" "glvq:--method glvq --bits 2"
          "e8p:--method e8p --bits 2" "pvq:--method pvq --bits 3" "trellis:--method trellis --bits 2")

die() { echo "gpu-check: $*" >&2; exit 1; }

prepare() {
  set -e
  command -v /usr/local/cuda/bin/nvcc >/dev/null || die "nvcc not found under /usr/local/cuda"
  if [ ! -f build-cuda/CMakeCache.txt ]; then
    cmake --preset cuda-release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  fi
  cmake --build build-cuda -j "${GLVQ_JOBS:-$(nproc)}" --target "${TESTS[@]}" "${TOOLS[@]}" glvq
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
  local exe lib
  for exe in "${TESTS[@]}" "${TOOLS[@]}"; do
    cp build-cuda/bin/"$exe" "$BUNDLE/bin/" && strip --strip-unneeded "$BUNDLE/bin/$exe"
  done
  # Every library ldd resolves, except the GPU driver's (it must be the
  # other machine's own) and NCCL (218 MB; CUDA images and PyTorch's
  # nvidia-nccl wheel both carry libnccl.so.2, found at run time).
  # cp -L: the bundle holds files, not links.
  for exe in "$BUNDLE"/bin/*; do
    ldd "$exe" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'
  done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in libcuda.so*|libnvidia*|libnccl.so*) continue ;; esac
    cp -L "$lib" "$BUNDLE/lib/$(basename "$lib")"
  done
  local fixture=${GLVQ_FIXTURES_DIR:-../shared/fixtures}/stories260K case
  if [ -f "$fixture/model.safetensors" ]; then
    for case in "${HF_CASES[@]}"; do
      # shellcheck disable=SC2086  # the flags are words
      build-cuda/bin/glvq quantize --model "$fixture" --out "$BUNDLE/hf/${case%%:*}" \
        ${case#*:} --seed 1 >/dev/null 2>&1 || die "glvq quantize ${case#*:} failed"
    done
  else
    echo "gpu-check: no fixture at $fixture: the bundle has no packed models for the Python check" >&2
  fi
  git rev-parse HEAD >"$BUNDLE/COMMIT"
  local mib
  mib=$(du -sm "$BUNDLE" | cut -f1)
  echo "gpu-check: $BUNDLE/ holds ${#TESTS[@]} tests, ${#TOOLS[@]} tool(s) and $(ls "$BUNDLE/lib" | wc -l) libraries, ${mib} MiB"
  [ "$mib" -le "$MAX_BUNDLE_MIB" ] || die "$BUNDLE/ is ${mib} MiB, over ${MAX_BUNDLE_MIB} MiB"
}

# The bundled loader and library path: bundled binaries run through them, so
# the other machine's C library does not matter. CUDA's own library folders
# come after the bundle's, for the driver and for cuBLAS (loaded at run time).
LOADER=
LIBPATH=
find_bundle() {
  LOADER=$(ls "$PWD/$BUNDLE"/lib/ld-linux-*.so* 2>/dev/null | head -1)
  [ -n "$LOADER" ] || die "$BUNDLE/lib has no ld-linux loader; run 'scripts/gpu-check.sh prepare'"
  LIBPATH="$PWD/$BUNDLE/lib"
  local dir nccl
  for dir in /usr/local/cuda/lib64 /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64; do
    [ -d "$dir" ] && LIBPATH="$LIBPATH:$dir"
  done
  # NCCL from PyTorch's wheel when the CUDA toolkit has none.
  nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null)
  [ -n "$nccl" ] && [ -d "$nccl" ] && LIBPATH="$LIBPATH:$nccl"
  return 0
}

SUMMARY=()
# step NAME SECONDS EXE ARGS...: runs one bundled binary (or, with EXE
# "--host", the command ARGS as it is) under a time limit, appends its
# output to $RESULTS and a line to the summary.
step() {
  local name=$1 limit=$2 exe=$3; shift 3
  local start rc log verdict=ok
  local cmd=("$LOADER" --library-path "$LIBPATH" "$PWD/$BUNDLE/bin/$exe" "$@")
  [ "$exe" = "--host" ] && cmd=("$@")
  log=$(mktemp)
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "${cmd[@]}" >"$log" 2>&1
  rc=$?
  case $rc in
    0) grep -q "SKIPPED" "$log" && verdict="skipped (no device)" ;;
    124|137) verdict="TIMEOUT" ;;
    *) verdict="FAILED (rc $rc)" ;;
  esac
  { echo; echo "===== $name: $verdict, $(( $(date +%s) - start )) s (limit $limit s)"; cat "$log"; } >>"$RESULTS"
  rm -f "$log"
  SUMMARY+=("$(printf '%-44s %-22s %5ss' "$name" "$verdict" "$(( $(date +%s) - start ))")")
}

run() {
  [ -d "$BUNDLE/bin" ] || die "no $BUNDLE/; run 'scripts/gpu-check.sh prepare' on the build machine and carry $BUNDLE"
  RESULTS=${1:-${OUT:+$OUT/gpu-check.txt}}
  RESULTS=${RESULTS:-out/gpu-check.txt}
  mkdir -p "$(dirname "$RESULTS")"
  find_bundle
  # A library missing here would fail every step alike: say which, once.
  local missing
  missing=$("$LOADER" --library-path "$LIBPATH" --list "$PWD/$BUNDLE/bin/glvq-bench" 2>&1 | grep "not found")
  [ -z "$missing" ] || echo "gpu-check: libraries not found: $missing" >&2
  {
    echo "glvq gpu-check, $(date -u '+%Y-%m-%d %H:%M UTC'), bundle of commit $(cat "$BUNDLE/COMMIT" 2>/dev/null)"
    echo "host: $(uname -srm), $(nproc) cores"
    echo "library path: $LIBPATH"
    if command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1
    else
      echo "nvidia-smi: not available (no GPU here: a rehearsal)"
    fi
  } >"$RESULTS"
  local t
  # Limits add up to under 9 minutes, inside one 10-minute device call.
  for t in "${TESTS[@]}"; do step "$t" 40 "$t"; done
  step "glvq-bench speed --backend cuda" 60 glvq-bench speed --backend cuda
  step "glvq-bench speed --backend cpu (baseline)" 60 glvq-bench speed --backend cpu
  step "shapes llama2-70b glvq, 1 layer" 60 glvq-bench shapes --model llama2-70b --layers 1 --backend cuda --method glvq
  step "shapes llama2-70b gptq, 1 layer" 60 glvq-bench shapes --model llama2-70b --layers 1 --backend cuda --method gptq
  if [ -d "$BUNDLE/hf" ]; then
    step "python: transformers + glvq on CUDA" 90 --host env PYTHONPATH="$PWD/python" \
      python3 tests/gpu/python_hf_cuda_check.py "$BUNDLE/hf"
  fi
  {
    echo
    echo "===== summary"
    printf '%s\n' "${SUMMARY[@]}"
  } | tee -a "$RESULTS"
  echo "gpu-check: full output in $RESULTS"
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/gpu-check.sh prepare | run [RESULTS_FILE]" >&2; exit 2 ;;
esac
