#!/usr/bin/env bash
# Fuzzes the safetensors header parser with libFuzzer (ASan + UBSan).
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
#
# Builds build-fuzz/ with clang (needs libclang-rt-14-dev, which provides the
# fuzzer runtime), seeds a corpus from the stories260K fixture's header, and
# keeps the corpus in build-fuzz/ so that later runs start where this one
# stopped. Crashes land in build-fuzz/fuzz-artifacts/. Not part of CI.
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-fuzz"
fixture=${GLVQ_FIXTURES_DIR:-$root/../shared/fixtures}/stories260K/model.safetensors
corpus="$build/fuzz-corpus/safetensors_header"
artifacts="$build/fuzz-artifacts"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLVQ_BUILD_FUZZ=ON -DGLVQ_CUDA=OFF \
  -DGLVQ_BUILD_TESTS=OFF -DGLVQ_BUILD_BENCH=OFF >/dev/null
ninja -C "$build" -j2 safetensors_header_fuzz

# Seeds: small valid files shaped like the fixture's header (its names,
# dtype and metadata; shapes shrunk so that inputs stay a few KB), plus the
# bare header and an empty model.
mkdir -p "$corpus" "$artifacts"
if [[ -f "$fixture" ]]; then
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
else
  echo "fuzz: fixture $fixture missing; seeding with an empty model only" >&2
  printf '\x08\0\0\0\0\0\0\0{}      ' >"$corpus/seed-empty"
fi

"$build/bin/safetensors_header_fuzz" "$corpus" \
  -dict="$root/fuzz/safetensors.dict" -max_len=16384 -max_total_time="$seconds" \
  -artifact_prefix="$artifacts/" -print_final_stats=1
