#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/, ASan + UBSan), each for SECONDS.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s, every target)
#   targets: safetensors_header job_spec task_result packed_format
#
# Builds build-fuzz/ with clang (needs libclang-rt-14-dev, which provides the
# fuzzer runtime), seeds each corpus (the fixture's safetensors header, the
# example job specs, results and packed tensors made by fuzz_seeds), and
# keeps the corpora in build-fuzz/ so later runs start where this one
# stopped. Crashes land in build-fuzz/fuzz-artifacts/<target>/; each one
# found gets a regression test (tests/unit/fuzz_regression_test.cc).
# Not part of CI.
set -euo pipefail

seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors_header job_spec task_result packed_format)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-fuzz"
fixture=${GLVQ_FIXTURES_DIR:-$root/../shared/fixtures}/stories260K/model.safetensors

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLVQ_BUILD_FUZZ=ON -DGLVQ_CUDA=OFF \
  -DGLVQ_BUILD_TESTS=OFF -DGLVQ_BUILD_BENCH=OFF >/dev/null
ninja -C "$build" -j "${GLVQ_JOBS:-2}" fuzz_seeds "${targets[@]/%/_fuzz}"

# Seeds for the safetensors header: small valid files shaped like the
# fixture's header (its names, dtype and metadata; shapes shrunk so that
# inputs stay a few KB), plus the bare header and an empty model.
seed_safetensors_header() {
  local corpus=$1
  if [[ ! -f "$fixture" ]]; then
    echo "fuzz: fixture $fixture missing; seeding with an empty model only" >&2
    printf '\x08\0\0\0\0\0\0\0{}      ' >"$corpus/seed-empty"
    return
  fi
  python3 - "$fixture" "$corpus" <<'PY'
import json, struct, sys

fixture, corpus = sys.argv[1], sys.argv[2]
with open(fixture, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))

def write(name, head, data_len):
    text = json.dumps(head, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(f"{corpus}/{name}", "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + bytes(data_len))

tensors = sorted(k for k in header if k != "__metadata__")
for count in (1, 3, 8):
    head, offset = {"__metadata__": header["__metadata__"]}, 0
    for i, name in enumerate(tensors[:count]):
        shape = [2, i + 1] if i % 2 else [i + 1]
        size = 4 * shape[0] * (shape[1] if len(shape) > 1 else 1)
        head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    write(f"seed-fixture-{count}", head, offset)
write("seed-fixture-header-only", header, 0)
write("seed-empty", {}, 0)
PY
}

seed_job_spec() {
  cp "$root"/examples/*.yaml "$1/"
}

seeds="$build/fuzz-seeds"
"$build/bin/fuzz_seeds" "$seeds"

status=0
for target in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  case $target in
    safetensors_header) seed_safetensors_header "$corpus"; extra=(-dict="$root/fuzz/safetensors.dict" -max_len=16384) ;;
    job_spec) seed_job_spec "$corpus"; extra=(-max_len=8192) ;;
    task_result | packed_format) cp "$seeds/$target"/* "$corpus/"; extra=(-max_len=65536) ;;
    *) echo "fuzz: unknown target $target" >&2; exit 2 ;;
  esac
  echo "== $target: ${seconds}s"
  # -timeout: an input running over 10 s is a finding (a hang); the outer
  # timeout stops a fuzzer that hangs in its own exit path.
  timeout --kill-after=10 $((seconds + 120)) "$build/bin/${target}_fuzz" "$corpus" "${extra[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 || status=1
done
exit $status
