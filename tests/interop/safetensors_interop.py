#!/usr/bin/env python3
"""Cross-checks glvq's safetensors code against the official Python package.

1. glvq writes (`safetensors_tool write`): the official package must open every
   file and find exactly the tensors this script computes on its own.
2. The official package writes: `safetensors_tool dump` must report the same
   dtypes, shapes, bytes and metadata.

The expected values are spelled out here independently of the C++ tool (bit
patterns, ramps, and F16/BF16 narrowing done by numpy / by the textbook
round-to-nearest-even formula), so a bug on either side shows up as a mismatch.
Prints "interop: N passed, M failed" last; exits non-zero on any failure.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from checker import Checker

NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "I8": "i1", "U8": "u1", "I32": "<i4", "I64": "<i8",
                "F64": "<f8"}
SPEC_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I8": "int8",
               "U8": "uint8", "I32": "int32", "I64": "int64", "F64": "float64"}
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

# Same bit patterns as ConversionInputs() in tests/tools/safetensors_tool.cc.
CONVERSION_INPUT_BITS = [
    0x3EAAAAAB, 0xBEAAAAAB, 0x477FE000, 0x477FEFFF, 0x477FF000, 0xC77FF000, 0x47C35000,
    0x33000000, 0x33000001, 0x33C00000, 0x80000000, 0x3DCCCCCD, 0x40490FDB, 0x7F7FFFFF,
    0x7F800000, 0x3F808000, 0x3F818000, 0x387FC000, 0x387FF000,
]


def tensor(dtype, shape, values, storage):
    """(dtype, shape, little-endian bytes) of `values` stored as `storage`."""
    return dtype, list(shape), np.array(values, dtype=storage).tobytes()


def bf16_round_to_nearest_even(bits32):
    bits = np.array(bits32, dtype=np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return (rounded & 0xFFFF).astype("<u2")


def reference_tensors():
    """What `safetensors_tool write` puts in reference.safetensors."""
    f32_inputs = np.array(CONVERSION_INPUT_BITS, dtype="<u4").view("<f4")
    with np.errstate(over="ignore"):  # overflow to Inf is one of the cases
        narrowed_f16 = f32_inputs.astype(np.float16)
    n = len(CONVERSION_INPUT_BITS)
    return {
        "f32": tensor("F32", [2, 4], [0x00000000, 0x80000000, 0x3F800000, 0xC0200000,
                                      0x7F7FFFFF, 0x00000001, 0x7F800000, 0x7FC00000], "<u4"),
        "f16": tensor("F16", [3, 4], [0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF,
                                      0x0400, 0x7C00, 0xFC00, 0x7E00, 0x3555], "<u2"),
        "bf16": tensor("BF16", [12], [0x0000, 0x8000, 0x3F80, 0xC000, 0x7F7F, 0x0001, 0x007F,
                                      0x0080, 0x7F80, 0xFF80, 0x7FC0, 0x3EAB], "<u2"),
        "i8": tensor("I8", [5], [-128, -1, 0, 1, 127], "i1"),
        "u8": tensor("U8", [2, 3], [0, 1, 127, 128, 254, 255], "u1"),
        "i32": tensor("I32", [5], [I32_MIN, -1, 0, 1, I32_MAX], "<i4"),
        "i64": tensor("I64", [5], [I64_MIN, -1, 0, 1, I64_MAX], "<i8"),
        "f64": tensor("F64", [2, 3], [0x0000000000000000, 0x8000000000000000, 0x3FD5555555555555,
                                      0x7FEFFFFFFFFFFFFF, 0x0000000000000001, 0x7FF8000000000000],
                      "<u8"),
        "scalar_f32": tensor("F32", [], [0x40490FDB], "<u4"),
        "empty_f16": tensor("F16", [0], [], "<u2"),
        "empty_2d_i32": tensor("I32", [3, 0], [], "<i4"),
        "converted_f16": ("F16", [n], narrowed_f16.tobytes()),
        "converted_bf16": ("BF16", [n], bf16_round_to_nearest_even(CONVERSION_INPUT_BITS).tobytes()),
    }


def sharded_tensors():
    """What `safetensors_tool write` puts in sharded/ (element i is f(i))."""
    return {
        "layers.0.weight": tensor("F32", [16], [i * 0.25 - 1.0 for i in range(16)], "<f4"),
        "layers.0.bias": tensor("F16", [4], [0x3C00 + i for i in range(4)], "<u2"),
        "layers.1.weight": tensor("BF16", [16], [0x3F80 + i for i in range(16)], "<u2"),
        "layers.1.bias": tensor("I32", [4], [i * 1000 - 7 for i in range(4)], "<i4"),
        "embed": tensor("I64", [8], [i * 10**12 - 5 for i in range(8)], "<i8"),
        "codes": tensor("U8", [3], [250 + i for i in range(3)], "u1"),
    }


def as_numpy(entry):
    dtype, shape, data = entry
    return np.frombuffer(data, dtype=NUMPY_DTYPES[dtype]).reshape(shape)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, expected {expected!r}")


def check_deserialized(path, expected):
    """The official parser sees exactly `expected` (every dtype, raw bytes)."""
    with open(path, "rb") as f:
        got = {name: (v["dtype"], list(v["shape"]), bytes(v["data"]))
               for name, v in safetensors.deserialize(f.read())}
    expect_equal(sorted(got), sorted(expected), f"{path}: tensor names")
    for name, entry in expected.items():
        expect_equal(got[name], entry, f"{path}: {name}")


def check_safe_open(path, expected, metadata):
    """safe_open (mmap) agrees on metadata, dtypes and numpy values."""
    with safe_open(path, framework="np") as f:
        expect_equal(f.metadata() or {}, metadata, f"{path}: metadata")
        expect_equal(sorted(f.keys()), sorted(expected), f"{path}: keys")
        for name, entry in expected.items():
            expect_equal(f.get_slice(name).get_dtype(), entry[0], f"{path}: {name} dtype")
            if entry[0] == "BF16":
                continue  # numpy has no bfloat16; deserialize() covered its bytes
            array = f.get_tensor(name)
            expect_equal(list(array.shape), entry[1], f"{path}: {name} shape")
            expect_equal(array.tobytes(), entry[2], f"{path}: {name} bytes")
            if not np.array_equal(array, as_numpy(entry), equal_nan=array.dtype.kind == "f"):
                raise AssertionError(f"{path}: {name} values differ")


def numpy_only(tensors):
    return {k: v for k, v in tensors.items() if v[0] in NUMPY_DTYPES}


def check_load_file(path, expected):
    loaded = load_file(path)
    expect_equal(sorted(loaded), sorted(expected), f"{path}: load_file names")
    for name, entry in expected.items():
        array = loaded[name]
        expect_equal(array.dtype, np.dtype(NUMPY_DTYPES[entry[0]]), f"{path}: {name} dtype")
        expect_equal(array.tobytes(), entry[2], f"{path}: {name} bytes")
        if not np.array_equal(array, as_numpy(entry), equal_nan=array.dtype.kind == "f"):
            raise AssertionError(f"{path}: {name} values differ")


def check_glvq_sharded(directory):
    expected = sharded_tensors()
    with open(os.path.join(directory, "model.safetensors.index.json")) as f:
        index = json.load(f)
    weight_map = index["weight_map"]
    expect_equal(sorted(weight_map), sorted(expected), "index weight_map names")
    expect_equal(index["metadata"]["total_size"], sum(len(e[2]) for e in expected.values()),
                 "index total_size")
    shards = sorted(set(weight_map.values()))
    if len(shards) < 2:
        raise AssertionError(f"expected several shards, got {shards}")
    for shard in shards:
        names = [n for n, s in weight_map.items() if s == shard]
        subset = {n: expected[n] for n in names}
        check_deserialized(os.path.join(directory, shard), subset)
        check_safe_open(os.path.join(directory, shard), subset, {"format": "pt"})


def dump(tool, path):
    out = subprocess.run([tool, "dump", path], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def check_dump(tool, path, expected, metadata):
    got = dump(tool, path)
    expect_equal(got["metadata"], metadata, f"{path}: dumped metadata")
    want = {name: {"dtype": d, "shape": s, "hex": data.hex()} for name, (d, s, data) in
            expected.items()}
    expect_equal(sorted(got["tensors"]), sorted(want), f"{path}: dumped names")
    for name in want:
        expect_equal(got["tensors"][name], want[name], f"{path}: dumped {name}")


def official_serialize(tensors, metadata):
    """Bytes of a safetensors file written by the official serializer."""
    if not hasattr(safetensors, "TensorSpec"):  # before 0.8: plain dicts
        return bytes(safetensors.serialize(
            {n: {"dtype": d, "shape": s, "data": b} for n, (d, s, b) in tensors.items()},
            metadata=metadata))
    buffers = {n: np.frombuffer(b, dtype=np.uint8).copy() for n, (_, _, b) in tensors.items()}
    specs = {n: safetensors.TensorSpec(dtype=SPEC_DTYPES[d], shape=s,
                                       data_ptr=buffers[n].ctypes.data, data_len=len(b))
             for n, (d, s, b) in tensors.items()}
    return bytes(safetensors.serialize(specs, metadata=metadata))


def write_python_files(work):
    """Files written by the official package, for glvq to read."""
    out = {}
    numpy_path = os.path.join(work, "py_numpy.safetensors")
    tensors = numpy_only(reference_tensors())
    save_file({n: as_numpy(e) for n, e in tensors.items()}, numpy_path,
              metadata={"format": "np", "writer": "safetensors.numpy"})
    out[numpy_path] = (tensors, {"format": "np", "writer": "safetensors.numpy"})

    all_path = os.path.join(work, "py_all.safetensors")
    tensors = reference_tensors()
    with open(all_path, "wb") as f:
        f.write(official_serialize(tensors, {"writer": "serialize"}))
    out[all_path] = (tensors, {"writer": "serialize"})

    sharded_dir = os.path.join(work, "py_sharded")
    os.makedirs(sharded_dir, exist_ok=True)
    tensors = sharded_tensors()
    names = sorted(tensors)
    halves = {"part-a.safetensors": names[:3], "part-b.safetensors": names[3:]}
    for shard, shard_names in halves.items():
        with open(os.path.join(sharded_dir, shard), "wb") as f:
            f.write(official_serialize({n: tensors[n] for n in shard_names}, {"format": "pt"}))
    total = sum(len(e[2]) for e in tensors.values())
    index = {"metadata": {"total_size": total},
             "weight_map": {n: s for s, ns in halves.items() for n in ns}}
    with open(os.path.join(sharded_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)
    out[sharded_dir] = (tensors, {"format": "pt", "total_size": str(total)})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, help="path to safetensors_tool")
    parser.add_argument("--work", required=True, help="scratch directory")
    args = parser.parse_args()
    print(f"interop: safetensors {safetensors.__version__}, numpy {np.__version__}")

    c = Checker()
    glvq_dir = os.path.join(args.work, "glvq")
    os.makedirs(glvq_dir, exist_ok=True)
    subprocess.run([args.tool, "write", glvq_dir], check=True)
    reference = os.path.join(glvq_dir, "reference.safetensors")
    meta = {"format": "pt", "producer": "glvq"}
    c.check("official deserialize reads glvq reference file",
            lambda: check_deserialized(reference, reference_tensors()))
    c.check("official safe_open reads glvq reference file",
            lambda: check_safe_open(reference, reference_tensors(), meta))
    empty = os.path.join(glvq_dir, "empty.safetensors")
    c.check("official package reads glvq empty file",
            lambda: (check_deserialized(empty, {}), check_safe_open(empty, {}, {})))
    numpy_file = os.path.join(glvq_dir, "numpy_dtypes.safetensors")
    c.check("official numpy load_file reads glvq file",
            lambda: check_load_file(numpy_file, numpy_only(reference_tensors())))
    c.check("official package reads glvq sharded model",
            lambda: check_glvq_sharded(os.path.join(glvq_dir, "sharded")))

    for path, (tensors, metadata) in write_python_files(args.work).items():
        label = os.path.basename(path)
        c.check(f"glvq dump reads official {label}",
                lambda p=path, t=tensors, m=metadata: check_dump(args.tool, p, t, m))

    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
