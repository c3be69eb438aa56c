"""The Python reader and decoders (python/glvq) against the C++ reference.

For each case the stories260K fixture is quantized with `glvq quantize`;
`glvq.PackedModel.open` must accept the result and `glvq.dequantize` of
every quantized tensor must equal `glvq dequantize --dtype F32` (the C++
DequantizeRef) within 1e-6 * max|w| (most are bit-identical). Corrupted
copies (a flipped codes byte, a manifest with a changed shape, an unknown
component, a wrong format_version, a config.json that disagrees, a truncated
file) must raise FormatError. The worked examples of docs/format.md §3, §12,
§12.1 and §12.2 are rebuilt in memory and decoded to the printed numbers.
Last line: "interop: N passed, N failed".
"""

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file

from checker import Checker

import glvq
from glvq import FormatError, PackedModel, QuantizedTensor, dequantize
from glvq import _bits
from glvq._crc32c import crc32c
from glvq.decode import pyramid_point_exact, pyramid_points, transform_forward, transform_inverse
from glvq.packed import accounting, validate_quantized

TOLERANCE = 1e-6  # relative to max |w| of the tensor

SDBA_JOB = """\
apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: python-decode-sdba
spec:
  model:
    path: {model}
  quantizer:
    method: glvq
    bits: 2.5
    sdba: true
    groupSize: 16
    seed: 1
  tensors:
    include: ["*"]
    exclude: ["*embed*", "*down_proj*"]
  output:
    path: {out}
"""

ROW_GAIN_JOB = """\
apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: python-decode-row-gain
spec:
  model:
    path: {model}
  quantizer:
    method: glvq
    bits: 3
    dim: 8
    groupSize: 48
    rowGain: true
    rht: {rht}
    seed: 2
  output:
    path: {out}
"""

# name, CLI flags, job spec (or None), what the packed model must show
CASES = [
    ("rtn-4", ["--method", "rtn", "--bits", "4"], None, {}),
    ("gptq-3", ["--method", "gptq", "--bits", "3"], None, {}),
    ("glvq-2", ["--method", "glvq", "--bits", "2"], None, {"rht": True}),
    ("glvq-2-paper", ["--method", "glvq", "--bits", "2", "--preset", "paper"], None,
     {"rht": False, "mu": True}),
    ("e8p-2", ["--method", "e8p", "--bits", "2"], None, {"rht": True}),
    ("pvq-3", ["--method", "pvq", "--bits", "3"], None, {"rht": True}),
    ("trellis-2", ["--method", "trellis", "--bits", "2"], None, {"rht": True}),
    ("glvq-sdba-2.5", [], SDBA_JOB, {"mixed_bits": True}),
    ("glvq-row-gain-rht", [], ROW_GAIN_JOB.replace("{rht}", "true"),
     {"row_scale": True, "rht": True}),
    ("glvq-row-gain", [], ROW_GAIN_JOB.replace("{rht}", "false"),
     {"row_scale": True, "rht": False}),
]


def run_cli(bin_dir, *args):
    subprocess.run([os.path.join(bin_dir, "glvq"), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def quantize(args, name, flags, job):
    out = os.path.join(args.work, name)
    if job is not None:
        spec = os.path.join(args.work, name + ".yaml")
        with open(spec, "w", encoding="utf-8") as f:
            f.write(job.format(model=args.fixture, out=out))
        flags = ["--config", spec, *flags]
    run_cli(args.bin, "quantize", "--model", args.fixture, "--out", out, *flags)
    run_cli(args.bin, "dequantize", "--packed", out, "--out", out + ".f32", "--dtype", "F32")
    return out


def compare_case(packed, expect, stats):
    """glvq.dequantize vs the C++ reference for every tensor of one model."""
    model = PackedModel.open(packed)
    ref = load_file(os.path.join(packed + ".f32", "model.safetensors"))
    assert model.quantized, "no quantized tensors"
    exact = 0
    worst = 0.0
    for name, qt in model.quantized.items():
        w = dequantize(qt)
        r = ref[name]
        assert w.shape == r.shape and w.dtype == torch.float32, (name, w.shape, w.dtype)
        scale = r.abs().max().item()
        diff = (w - r).abs().max().item()
        rel = diff / scale if scale else diff
        assert rel <= TOLERANCE, f"{name}: max |diff| {diff:.3g} = {rel:.3g} * max|w|"
        exact += int(torch.equal(w, r))
        worst = max(worst, rel)
    for name in model.passthrough_names:
        assert torch.equal(model.passthrough(name), ref[name]), name
    comps = [qt.components for qt in model.quantized.values()]
    if "rht" in expect:
        assert all(("rht_seed" in c) == expect["rht"] for c in comps), "rht_seed presence"
    if expect.get("mu"):
        assert any(bool((c["mu"] > 0).any()) for c in comps), "no companding (mu > 0)"
    if expect.get("mixed_bits"):
        assert any(len(set(c["bits"].tolist())) > 1 for c in comps), "no mixed bit widths"
    if expect.get("row_scale"):
        assert all("row_scale" in c for c in comps), "row_scale missing"
    stats.append(f"{len(model.quantized)} tensors, {exact} bit-identical, "
                 f"max |diff| / max|w| = {worst:.3g}")


def expect_format_error(fn, needle=""):
    try:
        fn()
    except FormatError as e:
        msg = str(e)
        assert "\n" not in msg, "message is not one line"
        assert needle.lower() in msg.lower(), f"'{needle}' not in: {msg}"
        print(f"     FormatError: {msg[:160]}")
        return
    raise AssertionError("no FormatError raised")


def bf16_checks(c, args):
    """A BF16 source: quantized dtype 'BF16', pass-through tensors stay BF16,
    dequantize(dtype=bfloat16) equals `glvq dequantize` in the source dtype."""
    def run():
        from safetensors.torch import save_file
        source = os.path.join(args.work, "stories260K-bf16")
        os.makedirs(source)
        tensors = load_file(os.path.join(args.fixture, "model.safetensors"))
        save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()},
                  os.path.join(source, "model.safetensors"))
        shutil.copy(os.path.join(args.fixture, "config.json"), source)
        out = os.path.join(args.work, "rtn-4-bf16")
        run_cli(args.bin, "quantize", "--model", source, "--out", out, "--method", "rtn",
                "--bits", "4")
        run_cli(args.bin, "dequantize", "--packed", out, "--out", out + ".bf16")
        ref = load_file(os.path.join(out + ".bf16", "model.safetensors"))
        model = PackedModel.open(out)
        for name, qt in model.quantized.items():
            assert qt.dtype == "BF16", qt.dtype
            w = dequantize(qt, torch.bfloat16)
            assert w.dtype == torch.bfloat16 and torch.equal(w, ref[name]), name
        for name in model.passthrough_names:
            t = model.passthrough(name)
            assert t.dtype == torch.bfloat16 and torch.equal(t, ref[name]), name
    c.check("rtn-4 on a BF16 source: BF16 weights and pass-through == C++", run)


def sharded_checks(c, src, work):
    """The same model as shards plus model.safetensors.index.json opens and
    decodes the same; a shard name leaving the directory is refused."""
    from safetensors.torch import save_file
    dst = os.path.join(work, "sharded")

    def run():
        shutil.copytree(src, dst)
        single = os.path.join(dst, "model.safetensors")
        tensors = load_file(single)
        os.remove(single)
        names = sorted(tensors)
        weight_map = {}
        for i, part in enumerate((names[0::2], names[1::2])):
            shard = f"model-0000{i + 1}-of-00002.safetensors"
            save_file({n: tensors[n] for n in part}, os.path.join(dst, shard))
            weight_map.update({n: shard for n in part})
        with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
        one, two = PackedModel.open(src), PackedModel.open(dst)
        assert sorted(one.quantized) == sorted(two.quantized)
        for name, qt in one.quantized.items():
            assert torch.equal(dequantize(qt), dequantize(two.quantized[name])), name
        for name in one.passthrough_names:
            assert torch.equal(one.passthrough(name), two.passthrough(name)), name
    c.check("sharded copy (2 shards + index) opens and decodes the same", run)

    def outside():
        bad = os.path.join(work, "sharded-outside")
        shutil.copytree(dst, bad)
        path = os.path.join(bad, "model.safetensors.index.json")
        with open(path) as f:
            index = json.load(f)
        name = next(iter(index["weight_map"]))
        index["weight_map"][name] = "../sharded/model-00001-of-00002.safetensors"
        with open(path, "w") as f:
            json.dump(index, f)
        expect_format_error(lambda: PackedModel.open(bad), "shard")
    c.check("corrupt: a shard name outside the directory -> FormatError", outside)


# ---------------------------------------------------------------------------
# Corrupted copies


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data, 8 + n


def corrupt_copy(src, dst, edit_manifest=None, edit_config=None, edit_bytes=None):
    shutil.copytree(src, dst)
    if edit_manifest:
        path = os.path.join(dst, "glvq_manifest.json")
        with open(path) as f:
            m = json.load(f)
        edit_manifest(m)
        with open(path, "w") as f:
            json.dump(m, f, indent=2, sort_keys=True)
    if edit_config:
        path = os.path.join(dst, "config.json")
        with open(path) as f:
            c = json.load(f)
        edit_config(c)
        with open(path, "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
    if edit_bytes:
        path = os.path.join(dst, "model.safetensors")
        header, data, base = read_safetensors(path)
        data = edit_bytes(header, bytearray(data), base)
        with open(path, "wb") as f:
            f.write(data)
    return dst


def first_quantized(manifest):
    return next(t for t in manifest["tensors"] if t["quantized"])


def add_unknown_component(src, dst):
    """A real extra tensor P.glvq.extra in the data and the manifest, with a
    correct checksum: only the unknown-component rule can reject it."""
    shutil.copytree(src, dst)
    path = os.path.join(dst, "model.safetensors")
    header, data, base = read_safetensors(path)
    meta = header.pop("__metadata__", None)
    with open(os.path.join(dst, "glvq_manifest.json")) as f:
        manifest = json.load(f)
    entry = first_quantized(manifest)
    extra = bytes([1, 2, 3, 4])
    name = entry["name"] + ".glvq.extra"
    end = len(data) - base
    header[name] = {"dtype": "U8", "shape": [4], "data_offsets": [end, end + 4]}
    if meta is not None:
        header["__metadata__"] = meta
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[base:] + extra)
    entry["components"]["extra"] = {"tensor": name, "dtype": "U8", "shape": [4], "bytes": 4,
                                    "crc32c": f"{crc32c(extra):08x}"}
    with open(os.path.join(dst, "glvq_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return dst


def corruption_checks(c, src, work):
    def flip_codes_byte(header, data, base):
        with open(os.path.join(src, "glvq_manifest.json")) as f:
            entry = first_quantized(json.load(f))
        begin, end = header[entry["name"] + ".glvq.codes"]["data_offsets"]
        data[base + (begin + end) // 2] ^= 0x10
        return data

    def shape(m):  # more rows, with per-weight figures that follow from it
        entry = first_quantized(m)
        entry["shape"][0] += 1
        weights = entry["shape"][0] * entry["shape"][1]
        entry["bits_per_weight_payload"] = entry["bits_payload"] / weights
        entry["bits_per_weight_total"] = entry["bits_total"] / weights

    def version(m):
        m["format_version"] = 2

    def config(cfg):
        cfg["quantization_config"]["group_size"] += 1

    def truncate(header, data, base):
        return data[:-3]

    flipped = corrupt_copy(src, os.path.join(work, "bad-crc"), edit_bytes=flip_codes_byte)
    c.check("corrupt: a flipped byte in codes -> FormatError (CRC32C mismatch)",
            lambda: expect_format_error(lambda: PackedModel.open(flipped), "crc32c mismatch"))
    reshaped = corrupt_copy(src, os.path.join(work, "bad-shape"), edit_manifest=shape)
    c.check("corrupt: manifest with a changed shape -> FormatError",
            lambda: expect_format_error(lambda: PackedModel.open(reshaped)))
    unknown = add_unknown_component(src, os.path.join(work, "bad-component"))
    c.check("corrupt: an unknown component (in data and manifest) -> FormatError",
            lambda: expect_format_error(lambda: PackedModel.open(unknown), "unknown component"))
    v2 = corrupt_copy(src, os.path.join(work, "bad-version"), edit_manifest=version)
    c.check("corrupt: format_version 2 -> FormatError",
            lambda: expect_format_error(lambda: PackedModel.open(v2), "format_version"))
    cfg = corrupt_copy(src, os.path.join(work, "bad-config"), edit_config=config)
    c.check("corrupt: config.json quantization_config != manifest's -> FormatError",
            lambda: expect_format_error(lambda: PackedModel.open(cfg), "quantization_config"))
    short = corrupt_copy(src, os.path.join(work, "bad-truncated"), edit_bytes=truncate)
    c.check("corrupt: truncated model.safetensors -> FormatError",
            lambda: expect_format_error(lambda: PackedModel.open(short, verify=False)))


# ---------------------------------------------------------------------------
# In-memory tensors: the worked examples and validation rules


def u8(values):
    return torch.tensor(list(values), dtype=torch.uint8)


def f32(values):
    return torch.tensor(values, dtype=torch.float32)


def i64(values):
    return torch.tensor(values, dtype=torch.int64)


def pack_lsb_first(fields):
    """(value, bits) pairs -> bytes, LSB-first (docs/format.md §3)."""
    acc, pos = 0, 0
    for value, bits in fields:
        assert 0 <= value < (1 << bits) or bits == 0 and value == 0
        acc |= value << pos
        pos += bits
    return list(acc.to_bytes((pos + 7) // 8, "little"))


def example_12():
    codes = [0x88, 0xC6, 0xFA, 0x77, 0x39, 0x05, 0x49, 0x92, 0x24, 0xE4, 0x03]
    gen = (0.25 * torch.eye(4)).expand(2, 4, 4).contiguous()
    return QuantizedTensor("l.weight", "glvq", 3, 10, 8, 4, "F32", {
        "codes": u8(codes), "bits": u8([3, 2]), "offsets": i64([0, 9, 11]),
        "generators": gen, "mu": f32([0, 10]), "scale": f32([0.5, 0.25])})


def check_example_12():
    qt = example_12()
    validate_quantized(qt)
    assert accounting(qt) == (84, 1448), accounting(qt)
    w = dequantize(qt).double()
    row0 = [0.125 * (code - 3.5) for code in range(8)]
    assert w[0, :8].tolist() == row0, w[0, :8]
    assert w[1, :8].tolist() == [0.125 * (code - 3.5) for code in range(7, -1, -1)]
    assert w[2, :8].tolist() == [0.125 * (1 - 3.5)] * 8
    assert torch.allclose(w[0, 8:], torch.tensor([-0.0364416, -0.0087376], dtype=torch.float64),
                          rtol=0, atol=5e-8), w[0, 8:]
    # Rows 1 and 2 of group 1 (codes 2 3 | 3 0) by the formula.
    def glvq_w(code):
        y = 0.25 * (code - 1.5)
        return 0.25 * math.copysign(math.expm1(abs(y) * math.log1p(10)) / 10, y)
    expect = [[glvq_w(2), glvq_w(3)], [glvq_w(3), glvq_w(0)]]
    got = w[1:, 8:].tolist()
    assert all(abs(a - float(np.float32(b))) == 0 for ra, rb in zip(got, expect)
               for a, b in zip(ra, rb)), (got, expect)


def check_example_12_1():
    def qt(seed):
        comps = {"codes": u8([0x00, 0x01, 0x00, 0x80, 0x01, 0x80, 0x00, 0x00]),
                 "bits": u8([2, 2]), "offsets": i64([0, 4, 8]), "scale": f32([0.5, 2.0])}
        if seed:
            comps["rht_seed"] = i64([1, 2])
        return QuantizedTensor("e.weight", "e8p", 2, 10, 8, 8, "F32", comps)
    plain = qt(False)
    validate_quantized(plain)
    w = dequantize(plain).double()
    assert w.tolist() == [[-0.375, -0.375] + [0.125] * 6 + [-0.5, 1.5],
                          [0.375] * 8 + [0.5, 0.5]], w
    rotated = qt(True)
    validate_quantized(rotated)
    assert accounting(rotated) == (64, 464), accounting(rotated)
    w = dequantize(rotated).double()
    expect = torch.tensor([
        [-0.6187184, -0.2651650, 0.4419417, 0.7954952, 0.6187184, 0.2651650, -0.7954952,
         0.2651650, -0.25, -0.5],
        [0.04419417, 0.06564078, 0.2209709, 0.2424175, -0.04419417, -0.06564078, 0.3093592,
         -1.126301, 0.125, 0.5]], dtype=torch.float64)
    assert torch.allclose(w, expect, rtol=1e-6, atol=1e-7), w
    # The signs the example lists.
    d1, d2 = glvq.decode.hadamard_signs(2, 1)
    assert d1.tolist() == [-1, 1] and d2 is None
    d1, d2 = glvq.decode.hadamard_signs(10, 2)
    assert d1.tolist() == [1, 1, 1, 1, -1, -1, -1, -1, -1, -1], d1
    assert d2.tolist() == [-1, 1, 1, -1, 1, 1, -1, -1, -1, 1], d2


def example_12_2():
    return QuantizedTensor("p.weight", "pvq", 2, 5, 4, 2, "F32", {
        "codes": u8([0x7A, 0xD0, 0x06]), "offsets": i64([0, 2, 3]),
        "pulses": torch.tensor([[2, 0], [0, 1]], dtype=torch.int32),
        "gains": f32([[0.5, 1.0], [0.25, 0.75]]), "norms": f32([2.0, 4.0])})


def check_example_12_2():
    qt = example_12_2()
    validate_quantized(qt)
    assert accounting(qt) == (20, 536), accounting(qt)
    order = pyramid_points(torch.arange(8), 2, 2).tolist()
    assert order == [[0, 2], [0, -2], [1, 1], [1, -1], [-1, 1], [-1, -1], [2, 0], [-2, 0]], order
    w = dequantize(qt).double()
    r2 = float(np.float32(2 / math.sqrt(2)))
    r4 = float(np.float32(4 / math.sqrt(2)))  # (-1, -1) with gamma_1 = 1
    assert w.tolist() == [[r2, r2, -1, 0, 1.5], [0, 2, -r4, -r4, -1]], w
    assert abs(r2 - 1.4142135) < 1e-7 and abs(r4 - 2.8284271) < 1e-7


def check_bit_packing_examples():
    """§3: b = 3, codes 1..7, 0 -> D1 58 1F; b = 5, codes 31, 1, 2 -> 3F 08."""
    for bits, codes, stream in ((3, [1, 2, 3, 4, 5, 6, 7, 0], [0xD1, 0x58, 0x1F]),
                                (5, [31, 1, 2], [0x3F, 0x08])):
        n = len(codes)
        qt = QuantizedTensor("r.weight", "rtn", 1, n, n, 1, "F32", {
            "codes": u8(stream), "bits": u8([bits]), "offsets": i64([0, len(stream)]),
            "scale": f32([[1.0]]), "zero": f32([[0.0]])})
        validate_quantized(qt)
        assert dequantize(qt)[0].tolist() == codes


def check_validation_rules():
    """§5 rules on in-memory tensors: each broken copy raises FormatError."""
    def broken(make, edit, needle):
        qt = make()
        edit(qt.components)
        expect_format_error(lambda: validate_quantized(qt), needle)

    def set_padding(c):
        c["codes"] = c["codes"].clone()
        c["codes"][10] |= 0x80

    broken(example_12, set_padding, "padding")
    broken(example_12, lambda c: c.__setitem__("offsets", i64([0, 9, 12])), "offsets")
    broken(example_12, lambda c: c.__setitem__("bits", u8([9, 2])), "bits")
    broken(example_12, lambda c: c.__setitem__("mu", f32([0, -1])), "mu")
    broken(example_12, lambda c: c.__setitem__("scale", f32([0.5, float("nan")])), "scale")
    broken(example_12, lambda c: c.__setitem__("row_scale", f32([1, 0, 1])), "row_scale")
    broken(example_12, lambda c: c.__setitem__("extra", u8([0])), "unknown component")
    broken(example_12, lambda c: c.__setitem__("mu", f32([0, 10, 1])), "mu")
    broken(example_12_2, lambda c: c.__setitem__("pulses", torch.tensor(
        [[2, 1], [0, 1]], dtype=torch.int32)), "pulses")
    # A pyramid whose N is not a power of two: P(3, 1) has N = 6, 3 index bits.
    def pvq_index(index):
        return QuantizedTensor("q.weight", "pvq", 1, 3, 3, 3, "F32", {
            "codes": u8(pack_lsb_first([(index, 3)])), "offsets": i64([0, 1]),
            "pulses": torch.tensor([[1, 0]], dtype=torch.int32), "gains": f32([[1.0]]),
            "norms": f32([1.0])})
    validate_quantized(pvq_index(5))
    assert dequantize(pvq_index(5)).tolist() == [[-1, 0, 0]]
    expect_format_error(lambda: validate_quantized(pvq_index(6)), "beyond")
    trellis = QuantizedTensor("t.weight", "trellis", 1, 3, 3, 8, "F32", {
        "codes": u8([0x3F]), "bits": u8([2]), "offsets": i64([0, 1]),
        "row_scale": f32([1.0]), "scale": f32([1.0])})
    validate_quantized(trellis)
    for edit, needle in ((lambda c: c.__setitem__("codes", u8([0x7F])), "padding"),
                         (lambda c: c.__setitem__("bits", u8([5])), "bits")):
        broken(lambda: QuantizedTensor(**{**trellis.__dict__,
                                          "components": dict(trellis.components)}),
               edit, needle)
    # Tiles (§4.8): 3 rows in tiles of 2 are a 6-weight sequence (12 bits,
    # 2 bytes) and a 3-weight one (6 bits, 1 byte). Rows 0-1 decode like one
    # 6-column row holding the same stream, row by row.
    tiled = QuantizedTensor("t.weight", "trellis", 3, 3, 3, 8, "F32", {
        "codes": u8([0xA5, 0x07, 0x2C]), "bits": u8([2]), "offsets": i64([0, 3]),
        "row_scale": f32([1.0, 2.0, 0.5]), "scale": f32([1.0])}, tile_rows=2)
    validate_quantized(tiled)
    flat = QuantizedTensor("f.weight", "trellis", 1, 6, 6, 8, "F32", {
        "codes": u8([0xA5, 0x07]), "bits": u8([2]), "offsets": i64([0, 2]),
        "row_scale": f32([1.0]), "scale": f32([1.0])})
    pair = dequantize(flat).reshape(2, 3) * f32([[1.0], [2.0]])
    assert torch.equal(dequantize(tiled)[:2], pair), "a tile is one row-major sequence"
    for edit, needle in ((lambda c: c.__setitem__("codes", u8([0xA5, 0x17, 0x2C])), "tile 0"),
                         (lambda c: c.__setitem__("codes", u8([0xA5, 0x07, 0xEC])), "tile 1"),
                         (lambda c: c.__setitem__("offsets", i64([0, 4])), "offsets")):
        broken(lambda: QuantizedTensor(**{**tiled.__dict__,
                                          "components": dict(tiled.components)}),
               edit, needle)
    for bad in (0, 65):
        expect_format_error(lambda: validate_quantized(
            QuantizedTensor(**{**tiled.__dict__, "tile_rows": bad})), "tile_rows")
    expect_format_error(lambda: validate_quantized(
        QuantizedTensor(**{**trellis.__dict__, "method": "e8p", "tile_rows": 2})), "tile_rows")


# ---------------------------------------------------------------------------
# pvq enumeration, big pyramids, RHT, CRC


def pyramid_counts(n, k_max):
    table = [[1] + [0] * k_max]
    for _ in range(n):
        prev, row = table[-1], [1] * (k_max + 1)
        for k in range(1, k_max + 1):
            row[k] = prev[k] + prev[k - 1] + row[k - 1]
        table.append(row)
    return table


def pyramid_index(y, pulses):
    """The index formula of §4.7, written independently of the decoder."""
    n = len(y)
    table = pyramid_counts(n, pulses)
    index, k = 0, pulses
    for i, v in enumerate(y):
        if v:
            m = n - 1 - i
            index += table[m][k] + 2 * sum(table[m][k - a] for a in range(1, abs(v)))
            if v < 0:
                index += table[m][k - abs(v)]
        k -= abs(v)
    return index


def random_point(rng, n, pulses):
    y = [0] * n
    for _ in range(pulses):
        y[rng.integers(n)] += 1
    return [v if rng.integers(2) else -v for v in y]


def check_pvq_enumeration():
    rng = np.random.default_rng(5)
    for n, pulses in ((8, 10), (16, 25), (5, 1), (1, 7)):
        points = [random_point(rng, n, pulses) for _ in range(300)]
        index = torch.tensor([pyramid_index(y, pulses) for y in points])
        assert pyramid_points(index, n, pulses).tolist() == points, (n, pulses)
        assert [pyramid_point_exact(int(i), n, pulses) for i in index[:20]] == points[:20]


def check_big_pyramid():
    """D = 64, K = 43: 128-bit indices take the exact Python-int path."""
    n, pulses, rows = 64, 43, 3
    count = _bits.pyramid_size(n, pulses)
    nbits = _bits.index_bits(count)
    assert nbits > 62
    rng = np.random.default_rng(7)
    points = [random_point(rng, n, pulses) for _ in range(rows)]
    fields = [(pyramid_index(y, pulses), nbits) for y in points]
    qt = QuantizedTensor("big.weight", "pvq", rows, n, n, n, "F32", {
        "codes": u8(pack_lsb_first(fields)), "offsets": i64([0, (rows * nbits + 7) // 8]),
        "pulses": torch.tensor([[pulses, 0]], dtype=torch.int32), "gains": f32([[1.0]]),
        "norms": f32([1.0, 2.0, 3.0])})
    validate_quantized(qt)
    w = dequantize(qt).double()
    for r, y in enumerate(points):
        f = float(r + 1) / math.sqrt(sum(v * v for v in y))
        assert w[r].tolist() == [float(np.float32(f * v)) for v in y], r
    bad = pack_lsb_first([(count, nbits)] + fields[1:])  # index N itself
    qt.components["codes"] = u8(bad)
    expect_format_error(lambda: validate_quantized(qt), "beyond")


def check_rht():
    for n, seed in ((1, 3), (2, 1), (10, 2), (64, 9), (172, 12345), (96, 2 ** 64 - 1)):
        x = torch.randn(5, n, dtype=torch.float64)
        back = transform_inverse(transform_forward(x, seed), seed)
        assert torch.allclose(back, x, atol=1e-12), n
        # Orthogonal: norms preserved.
        assert torch.allclose(transform_forward(x, seed).norm(dim=1), x.norm(dim=1))


def check_crc32c():
    assert crc32c(b"123456789") == 0xE3069283
    rng = np.random.default_rng(3)
    buf = rng.integers(0, 256, 100_001, dtype=np.uint8)
    reg = 0xFFFFFFFF
    table = []
    for b in range(256):
        r = b
        for _ in range(8):
            r = (r >> 1) ^ (0x82F63B78 if r & 1 else 0)
        table.append(r)
    for byte in buf.tobytes():
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    assert crc32c(buf) == reg ^ 0xFFFFFFFF
    big = rng.integers(0, 256, 50 << 20, dtype=np.uint8)
    start = time.perf_counter()
    crc32c(big)
    seconds = time.perf_counter() - start
    print(f"     crc32c: 50 MiB in {seconds:.2f} s")
    assert seconds < 5, seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory holding the glvq CLI")
    ap.add_argument("--fixture", required=True, help="the stories260K model directory")
    ap.add_argument("--work", required=True, help="scratch directory")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.work, exist_ok=True)
    print(f"glvq {glvq.__version__} from {os.path.dirname(glvq.__file__)}")

    c = Checker()
    c.check("crc32c: check value, agrees bytewise, 50 MiB < 5 s", check_crc32c)
    c.check("format.md §3: bit packing examples", check_bit_packing_examples)
    c.check("format.md §12: glvq worked example", check_example_12)
    c.check("format.md §12.1: e8p worked example (with and without rht_seed)",
            check_example_12_1)
    c.check("format.md §12.2: pvq worked example", check_example_12_2)
    c.check("format.md §5: broken in-memory tensors -> FormatError", check_validation_rules)
    c.check("pvq: vectorised enumeration decodes the §4.7 index formula", check_pvq_enumeration)
    c.check("pvq: 128-bit indices (exact path) decode and validate", check_big_pyramid)
    c.check("rht: inverse undoes forward, orthogonal, any n", check_rht)

    packed = {}
    for name, flags, job, expect in CASES:
        stats = []

        def case(name=name, flags=flags, job=job, expect=expect, stats=stats):
            packed[name] = quantize(args, name, flags, job)
            compare_case(packed[name], expect, stats)

        c.check(f"{name}: glvq.dequantize == C++ DequantizeRef", case)
        if stats:
            print(f"     {name}: {stats[0]}")

    if "glvq-2" in packed:
        def f16():
            run_cli(args.bin, "dequantize", "--packed", packed["glvq-2"], "--out",
                    packed["glvq-2"] + ".f16", "--dtype", "F16")
            ref = load_file(os.path.join(packed["glvq-2"] + ".f16", "model.safetensors"))
            model = PackedModel.open(packed["glvq-2"])
            for name, qt in model.quantized.items():
                assert torch.equal(dequantize(qt, torch.float16), ref[name]), name
        c.check("glvq-2: dequantize(dtype=float16) == glvq dequantize --dtype F16", f16)
        corruption_checks(c, packed["glvq-2"], args.work)
        sharded_checks(c, packed["glvq-2"], args.work)
    bf16_checks(c, args)

    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
