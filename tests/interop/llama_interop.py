"""glvq's Llama forward pass against transformers' LlamaForCausalLM.

On the stories260K fixture, on a `glvq dequantize`d packed model of it and on
an untied variant (separate lm_head), the mean next-token NLL over the token
file computed by the reference implementation (PyTorch, float32, eager
attention) equals `glvq eval`'s within 1e-4; so do the KL and top-1 agreement
between the original and the quantized model.
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
from transformers import LlamaForCausalLM

from checker import Checker

TOLERANCE = 1e-4
REFERENCE_NLL = 2.828333  # the fixture README's figure


def read_tokens(path):
    """The token file format: one sequence per line, '#' comment lines."""
    seqs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                seqs.append([int(t) for t in line.split()])
    return seqs


def load_reference(model_dir):
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                             attn_implementation="eager")
    return model.eval()


def log_probs(model, seq):
    """log softmax of the next-token logits of every position but the last, in float64."""
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0, :-1]
    return torch.log_softmax(logits.double(), dim=-1)


def reference_eval(model_dir, seqs, original_dir=None):
    """What `glvq eval` reports, computed by transformers."""
    model = load_reference(model_dir)
    original = load_reference(original_dir) if original_dir else None
    nll = kl = 0.0
    agree = count = 0
    for seq in seqs:
        lq = log_probs(model, seq)
        targets = torch.tensor(seq[1:])[:, None]
        nll -= lq.gather(1, targets).sum().item()
        count += len(seq) - 1
        if original is not None:
            lp = log_probs(original, seq)
            kl += (lp.exp() * (lp - lq)).sum(dim=-1).clamp(min=0).sum().item()
            agree += (lp.argmax(-1) == lq.argmax(-1)).sum().item()
    out = {"nll": nll / count}
    if original is not None:
        out.update(kl=kl / count, top1=agree / count)
    return out


def glvq(bin_dir, *args):
    r = subprocess.run([os.path.join(bin_dir, "glvq"), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"glvq {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def glvq_eval(bin_dir, model_dir, tokens, packed=None):
    args = ["eval", "--model", model_dir, "--tokens", tokens, "--json"]
    if packed:
        args += ["--packed", packed]
    return json.loads(glvq(bin_dir, *args))


def expect_close(got, want, what, tol=TOLERANCE, names=("glvq", "transformers")):
    print(f"     {what}: {names[0]} {got:.7f}  {names[1]} {want:.7f}  diff {got - want:+.2e}")
    if not abs(got - want) <= tol:
        raise AssertionError(f"{what}: {names[0]} {got} vs {names[1]} {want} (tolerance {tol})")


def make_untied(fixture, out):
    """The fixture with its own lm_head (the embedding plus noise), untied."""
    os.makedirs(out)
    tensors = load_file(os.path.join(fixture, "model.safetensors"))
    embed = tensors["model.embed_tokens.weight"]
    noise = np.random.default_rng(7).standard_normal(embed.shape).astype(np.float32)
    tensors["lm_head.weight"] = embed + 0.05 * noise
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(fixture, "config.json")) as f:
        config = json.load(f)
    config["tie_word_embeddings"] = False
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def check_nll(bin_dir, model_dir, tokens, seqs, expected=None):
    ours = glvq_eval(bin_dir, model_dir, tokens)["nll"]
    theirs = reference_eval(model_dir, seqs)["nll"]
    expect_close(ours, theirs, "nll")
    if expected is not None:
        expect_close(theirs, expected, "nll", tol=2e-4, names=("transformers", "README"))


def check_packed(bin_dir, fixture, packed, dequantized, tokens, seqs):
    ours = glvq_eval(bin_dir, fixture, tokens, packed=packed)
    theirs = reference_eval(dequantized, seqs, original_dir=fixture)
    expect_close(ours["nll"], theirs["nll"], "quantized nll")
    expect_close(ours["kl"], theirs["kl"], "kl(original || quantized)")
    # An argmax may flip between two nearly equal logits: allow two positions.
    expect_close(ours["top1"], theirs["top1"], "top1", tol=2.0 / 4080)
    plain = glvq_eval(bin_dir, dequantized, tokens)["nll"]
    expect_close(plain, ours["nll"], "nll", tol=1e-12, names=("glvq on dequantized", "glvq --packed"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="build/bin with glvq and pack_model_tool")
    parser.add_argument("--fixture", required=True, help="the stories260K directory")
    parser.add_argument("--work", required=True, help="scratch directory")
    args = parser.parse_args()
    torch.set_num_threads(2)
    transformers.utils.logging.disable_progress_bar()
    print(f"interop: torch {torch.__version__}, transformers {transformers.__version__}")
    tokens = os.path.join(args.fixture, "eval_tokens_seed1234.txt")
    seqs = read_tokens(tokens)

    c = Checker(announce=True)
    c.check("fixture: glvq eval nll equals LlamaForCausalLM's",
            lambda: check_nll(args.bin, args.fixture, tokens, seqs, expected=REFERENCE_NLL))

    packed = os.path.join(args.work, "packed")
    dequantized = os.path.join(args.work, "dequantized")
    # 6-bit RTN: a model that still works (KL ~0.3), so near-tied top-1
    # predictions are as common as they will be in practice.
    subprocess.run([os.path.join(args.bin, "pack_model_tool"), args.fixture, packed, "rtn"],
                   check=True)
    glvq(args.bin, "dequantize", "--packed", packed, "--out", dequantized, "--dtype", "F32")
    c.check("dequantized packed model: nll, kl and top1 equal LlamaForCausalLM's",
            lambda: check_packed(args.bin, args.fixture, packed, dequantized, tokens, seqs))

    untied = os.path.join(args.work, "untied")
    make_untied(args.fixture, untied)
    c.check("untied lm_head: glvq eval nll equals LlamaForCausalLM's",
            lambda: check_nll(args.bin, untied, tokens, seqs))
    shutil.rmtree(args.work, ignore_errors=True)

    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
