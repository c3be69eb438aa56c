"""glvq output loads in transformers through the `glvq` Python package.

For every method the engine writes (and SDBA's mixed widths), on the
stories260K fixture and on the synthetic example model (BF16, ragged
768/688-column groups):

- `AutoModelForCausalLM.from_pretrained(PACKED)` after `import glvq` gives a
  model whose quantized linears are packed `glvq.hf.GlvqLinear` modules;
- its NLL, KL and top-1 over the fixture's tokens equal `glvq eval
  --packed`'s within 1e-4, and its logits equal transformers' on the
  `glvq dequantize --dtype F32` checkpoint within 1e-4 relative;
- `generate()` produces the same greedy tokens as that dense checkpoint;
- `glvq.hf.decode_all` (decode once, keep dense weights) gives those logits too;
- the packed linears hold the packed bytes, not a dense weight;
- a corrupted packed file raises glvq.FormatError, never garbage.

The fixture gets a small word-level tokenizer (built with `tokenizers`), so
the check also covers the copied tokenizer files and a text prompt.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

import glvq
from glvq.hf import GlvqLinear, decode_all, packed_linear_bytes

from checker import Checker
from llama_interop import expect_close, glvq as run_glvq, glvq_eval, read_tokens, reference_eval

TOLERANCE = 1e-4

# (label, `glvq quantize` flags); all without Hessians (H = I).
CASES = [
    ("rtn 4-bit", ["--method", "rtn", "--bits", "4"]),
    ("gptq 3-bit", ["--method", "gptq", "--bits", "3"]),
    ("glvq 2-bit", ["--method", "glvq", "--bits", "2"]),
    ("glvq paper (µ companding, no RHT)", ["--method", "glvq", "--bits", "2", "--preset", "paper"]),
    ("e8p 2-bit", ["--method", "e8p", "--bits", "2"]),
    ("pvq 3-bit", ["--method", "pvq", "--bits", "3"]),
    ("trellis 2-bit", ["--method", "trellis", "--bits", "2"]),
]
# SDBA's mixed widths (2 and 3 bits in the 64-column tensors' two groups)
# with per-row gains; --model and --out override the placeholder paths.
SDBA_JOB = """apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: sdba
spec:
  model:
    path: /nonexistent
  output:
    path: /nonexistent-out
  quantizer:
    method: glvq
    bits: 2.5
    groupSize: 32
    sdba: true
    rowGain: true
  tensors:
    include: ["*proj*"]
    exclude: ["*down_proj*"]
"""

def add_tokenizer(model_dir, vocab_size):
    """A word-level tokenizer over the model's vocabulary (ids 0..V-1)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for i in range(3, vocab_size):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>",
                   "bos_token": "<s>", "eos_token": "</s>"}, f)
    with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, f)


def load_packed(packed):
    return AutoModelForCausalLM.from_pretrained(packed, dtype=torch.float32,
                                                attn_implementation="eager").eval()


def load_dense(dense):
    return AutoModelForCausalLM.from_pretrained(dense, dtype=torch.float32,
                                                attn_implementation="eager").eval()


def check_modules(model, packed):
    manifest = json.load(open(os.path.join(packed, "glvq_manifest.json")))
    quantized = [t for t in manifest["tensors"] if t["quantized"]]
    linears = {m.weight_name: m for m in model.modules() if isinstance(m, GlvqLinear)}
    if sorted(linears) != sorted(t["name"] for t in quantized):
        raise AssertionError(f"GlvqLinear modules {sorted(linears)} != the manifest's tensors")
    want = sum(c["bytes"] for t in quantized for c in t["components"].values())
    got = packed_linear_bytes(model)
    print(f"     packed linear bytes {got} (manifest {want}); no dense weights held")
    if got != want:
        raise AssertionError(f"packed bytes {got} != manifest's {want}")
    for m in linears.values():
        if any(p.numel() > 0 for n, p in m.named_parameters() if n != "bias"):
            raise AssertionError(f"{m.weight_name}: holds a dense parameter")


def check_logits(model, dense_model, seqs):
    worst = 0.0
    with torch.no_grad():
        for seq in seqs[:4]:
            a = model(torch.tensor([seq])).logits
            b = dense_model(torch.tensor([seq])).logits
            worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    print(f"     logits: max |Δ| / max |logit| = {worst:.2e}")
    if not worst <= TOLERANCE:
        raise AssertionError(f"logits differ by {worst} relative (tolerance {TOLERANCE})")


def check_generate(model, dense_model, packed):
    tok = AutoTokenizer.from_pretrained(packed)
    ids = tok("w10 w20 w30", return_tensors="pt").input_ids
    with torch.no_grad():
        ours = model.generate(ids, max_new_tokens=8, do_sample=False)
        theirs = dense_model.generate(ids, max_new_tokens=8, do_sample=False)
    text = tok.decode(ours[0][ids.shape[1]:])
    print(f"     generate: {ours.shape[1] - ids.shape[1]} new tokens: {text!r}")
    if ours.shape[1] <= ids.shape[1]:
        raise AssertionError("generate() produced no tokens")
    if not torch.equal(ours, theirs):
        raise AssertionError(f"greedy tokens {ours.tolist()} != dense {theirs.tolist()}")


def check_case(bin_dir, source, flags, work, tokens, seqs, with_tokenizer):
    packed = os.path.join(work, "packed")
    dense = os.path.join(work, "dense")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run_glvq(bin_dir, "quantize", "--model", source, "--out", packed, *flags)
    run_glvq(bin_dir, "dequantize", "--packed", packed, "--out", dense, "--dtype", "F32")
    model, dense_model = load_packed(packed), load_dense(dense)
    check_modules(model, packed)
    ours = glvq_eval(bin_dir, source, tokens, packed=packed)
    theirs = reference_eval_model(model, load_dense(source), seqs)
    expect_close(theirs["nll"], ours["nll"], "nll", names=("glvq.hf", "glvq eval"))
    expect_close(theirs["kl"], ours["kl"], "kl", names=("glvq.hf", "glvq eval"))
    expect_close(theirs["top1"], ours["top1"], "top1", tol=2.0 / 4080,
                 names=("glvq.hf", "glvq eval"))
    check_logits(model, dense_model, seqs)
    if with_tokenizer:
        check_generate(model, dense_model, packed)
    check_logits(decode_all(model, torch.float32), dense_model, seqs)  # decoded once


def reference_eval_model(model, original, seqs):
    """reference_eval's figures for an already loaded model."""
    import llama_interop

    saved = llama_interop.load_reference
    loaded = {"q": model, "o": original}
    try:
        llama_interop.load_reference = lambda d: loaded[d]
        return reference_eval("q", seqs, original_dir="o")
    finally:
        llama_interop.load_reference = saved


def corrupt_codes(packed):
    """Flips one byte inside the first quantized tensor's codes."""
    manifest = json.load(open(os.path.join(packed, "glvq_manifest.json")))
    target = next(t for t in manifest["tensors"] if t["quantized"])
    comp = target["components"]["codes"]["tensor"]
    path = os.path.join(packed, "model.safetensors")
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    begin = 8 + header_len + header[comp]["data_offsets"][0]
    with open(path, "r+b") as f:
        f.seek(begin)
        b = f.read(1)
        f.seek(begin)
        f.write(bytes([b[0] ^ 0x5A]))
    return target["name"]


def check_corrupt(bin_dir, source, work):
    packed = os.path.join(work, "packed")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run_glvq(bin_dir, "quantize", "--model", source, "--out", packed, "--method", "e8p")
    name = corrupt_codes(packed)
    try:
        load_packed(packed)
    except glvq.FormatError as e:
        print(f"     FormatError: {e}")
        if name not in str(e) and "crc" not in str(e).lower():
            raise AssertionError(f"the error does not name the tensor {name}: {e}")
        return
    raise AssertionError("a corrupted packed model loaded without an error")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="build/bin holding glvq")
    parser.add_argument("--fixture", required=True, help="the stories260K directory")
    parser.add_argument("--work", required=True, help="scratch directory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    print(f"interop: glvq {glvq.__version__}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    tokens = os.path.join(args.fixture, "eval_tokens_seed1234.txt")
    seqs = read_tokens(tokens)

    fixture = os.path.join(args.work, "fixture")
    shutil.copytree(args.fixture, fixture)
    add_tokenizer(fixture, json.load(open(os.path.join(fixture, "config.json")))["vocab_size"])
    example = os.path.join(args.work, "example")
    run_glvq(args.bin, "example-model", "--out", example, "--hidden", "768",
             "--intermediate", "688", "--layers", "1", "--heads", "12", "--kv-heads", "4",
             "--vocab", "512")
    job = os.path.join(args.work, "sdba.yaml")
    with open(job, "w") as f:
        f.write(SDBA_JOB)

    c = Checker(announce=True)
    scratch = os.path.join(args.work, "case")
    for label, flags in CASES + [("glvq sdba 2.5-bit, row gains", ["--config", job])]:
        c.check(f"fixture, {label}: loads; nll, kl, top1, logits, generate agree",
                lambda f=flags: check_case(args.bin, fixture, f, scratch, tokens, seqs, True))
    for label, flags in [CASES[4], CASES[6], CASES[2]]:
        c.check(f"example model (BF16, ragged groups), {label}: nll, kl, top1, logits agree",
                lambda f=flags: check_case(args.bin, example, f, scratch, tokens, seqs, False))
    c.check("a corrupted code byte raises glvq.FormatError",
            lambda: check_corrupt(args.bin, fixture, scratch))
    shutil.rmtree(args.work, ignore_errors=True)
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
