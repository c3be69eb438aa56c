"""`glvq export --format gptq` against an independent GPTQ unpacker.

The unpacker below is written from the public description of the GPTQ
checkpoint format (AutoGPTQ / GPTQModel, checkpoint_format "gptq"):
qweight int32 [in·bits/32, out] holds 32/bits codes per word along the
input dimension, lowest bits first (3 bits: 32 codes in three words, a code
straddling words 0/1 and 1/2); qzeros int32 [groups, out·bits/32] holds
zero − 1 packed the same way along outputs (checkpoint_format "gptq_v2",
GPTQModel's: the zero itself); scales float16 [groups, out]; g_idx int32
[in]; w[i][o] = scales[g][o] · (q[i][o] − zero[g][o]).

For 2, 3, 4 and 8 bits on the synthetic example model (v2 at 2 and 3 bits,
where min-max grids have zero points of 0, which v1 cannot store): the unpacked weights
equal `glvq dequantize`'s within the F16 rounding of the scales, the NLL of
the GPTQ weights in transformers equals `glvq eval --packed`'s within 2e-3,
and a model GPTQ cannot hold (RHT, clip-search grid) is refused with one
line naming the tensor.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file, save_file

from checker import Checker
from llama_interop import expect_close, glvq as run_glvq, glvq_eval, read_tokens, reference_eval


def unpack_rows(words, bits, n):
    """Codes along axis 0 from int32 words [n·bits/32, m] (GPTQ's packing)."""
    w = words.astype(np.uint32)
    mask = (1 << bits) - 1
    if bits in (2, 4, 8):
        per = 32 // bits
        out = np.empty((w.shape[0] * per, w.shape[1]), dtype=np.int64)
        for k in range(per):
            out[k::per] = (w >> (bits * k)) & mask
        return out[:n]
    assert bits == 3
    out = np.empty((w.shape[0] // 3 * 32, w.shape[1]), dtype=np.int64)
    for blk in range(w.shape[0] // 3):
        w0, w1, w2 = (w[3 * blk + j].astype(np.int64) for j in range(3))
        base = 32 * blk
        for k in range(10):
            out[base + k] = (w0 >> (3 * k)) & 7
        out[base + 10] = ((w0 >> 30) & 3) | ((w1 & 1) << 2)
        for k in range(10):
            out[base + 11 + k] = (w1 >> (3 * k + 1)) & 7
        out[base + 21] = ((w1 >> 31) & 1) | ((w2 & 3) << 1)
        for k in range(10):
            out[base + 22 + k] = (w2 >> (3 * k + 2)) & 7
    return out[:n]


def gptq_weight(t, prefix, bits, v1):
    qweight, qzeros = t[prefix + ".qweight"], t[prefix + ".qzeros"]
    scales, g_idx = t[prefix + ".scales"].astype(np.float32), t[prefix + ".g_idx"]
    n_in, n_out = g_idx.shape[0], scales.shape[1]
    q = unpack_rows(qweight, bits, n_in)                       # [in, out]
    z = unpack_rows(qzeros.T.copy(), bits, n_out).T + (1 if v1 else 0)  # [groups, out]
    w = scales[g_idx] * (q - z[g_idx]).astype(np.float32)      # [in, out]
    return w.T


def gptq_to_dense(gptq_dir, out_dir, bits, fmt):
    t = load_file(os.path.join(gptq_dir, "model.safetensors"))
    dense = {k: v for k, v in t.items() if not k.endswith((".qweight", ".qzeros", ".scales", ".g_idx"))}
    for k in t:
        if k.endswith(".qweight"):
            prefix = k[: -len(".qweight")]
            w = gptq_weight(t, prefix, bits, fmt == "gptq")
            dense[prefix + ".weight"] = np.ascontiguousarray(w)
    os.makedirs(out_dir)
    save_file(dense, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = json.load(open(os.path.join(gptq_dir, "config.json")))
    q = config.pop("quantization_config")
    if q["quant_method"] != "gptq" or q["bits"] != bits or q["checkpoint_format"] != fmt:
        raise AssertionError(f"quantization_config {q}")
    json.dump(config, open(os.path.join(out_dir, "config.json"), "w"))
    return dense


def check_bits(bin_dir, example, bits, fmt, work, tokens, seqs):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    packed, gptq, ref, dense = (os.path.join(work, d) for d in ("packed", "gptq", "ref", "dense"))
    run_glvq(bin_dir, "quantize", "--model", example, "--out", packed, "--method", "gptq",
             "--bits", str(bits), "--rht", "false", "--rtn-variant", "minMax")
    run_glvq(bin_dir, "export", "--packed", packed, "--out", gptq, "--format", fmt)
    run_glvq(bin_dir, "dequantize", "--packed", packed, "--out", ref, "--dtype", "F32")
    ours = gptq_to_dense(gptq, dense, bits, fmt)
    want = load_file(os.path.join(ref, "model.safetensors"))
    worst = 0.0
    for name, w in want.items():
        if name.endswith("proj.weight"):
            err = np.abs(ours[name] - w) - 2.0 ** -11 * np.abs(w)
            worst = max(worst, float((np.abs(ours[name] - w) / (np.abs(w) + 1e-30)).max()))
            if not (err <= 1e-7).all():
                raise AssertionError(f"{name}: GPTQ weights differ beyond F16 scale rounding")
    print(f"     {bits} bits: weights agree, worst relative error {worst:.2e} (F16 scales)")
    got = reference_eval(dense, seqs)["nll"]
    expect_close(got, glvq_eval(bin_dir, example, tokens, packed=packed)["nll"], "nll",
                 tol=2e-3, names=("GPTQ in transformers", "glvq eval"))


def refused(bin_dir, work, *quantize_flags, fmt="gptq"):
    """The stderr of a refused export of a model quantized with the flags."""
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    packed = os.path.join(work, "packed")
    run_glvq(bin_dir, "quantize", "--out", packed, *quantize_flags)
    r = subprocess.run([os.path.join(bin_dir, "glvq"), "export", "--packed", packed, "--out",
                        os.path.join(work, "gptq"), "--format", fmt],
                       capture_output=True, text=True)
    print(f"     {r.stderr.strip()}")
    if r.returncode == 0 or os.path.exists(os.path.join(work, "gptq")):
        raise AssertionError("a model GPTQ cannot hold was exported")
    if "cannot be written as GPTQ" not in r.stderr or r.stderr.count("\n") != 1:
        raise AssertionError(f"expected one line naming the tensor, got {r.stderr!r}")
    return r.stderr


def check_refused(bin_dir, example, work):
    refused(bin_dir, work, "--model", example, "--method", "rtn", "--bits", "4")  # RHT on
    refused(bin_dir, work, "--model", example, "--method", "rtn", "--bits", "4", "--rht",
            "false")  # clip-search grid: zero points 2^(b-1) - 1/2
    err = refused(bin_dir, work, "--model", example, "--method", "gptq", "--bits", "2", "--rht",
                  "false", "--rtn-variant", "minMax")
    if "gptq_v2" not in err:
        raise AssertionError("a zero point of 0 in v1 should point to gptq_v2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--fixture", required=True, help="stories260K (for its token file)")
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    tokens = os.path.join(args.fixture, "eval_tokens_seed1234.txt")
    seqs = read_tokens(tokens)
    example = os.path.join(args.work, "example")
    run_glvq(args.bin, "example-model", "--out", example, "--hidden", "256", "--intermediate",
             "512", "--layers", "2", "--vocab", "512", "--dtype", "F32")
    c = Checker(announce=True)
    scratch = os.path.join(args.work, "case")
    for bits, fmt in ((2, "gptq_v2"), (3, "gptq_v2"), (4, "gptq"), (8, "gptq")):
        c.check(f"{bits}-bit {fmt} export: independent unpacker and transformers agree",
                lambda b=bits, f=fmt: check_bits(args.bin, example, b, f, scratch, tokens, seqs))
    c.check("models GPTQ cannot hold (RHT, clip search, v1 zero 0) are refused in one line",
            lambda: check_refused(args.bin, example, scratch))
    shutil.rmtree(args.work, ignore_errors=True)
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
