"""glvq's forward pass on today's model families, against transformers.

For each family and RoPE scaling the forward pass supports, a tiny model is
built with transformers' own config and model classes (random weights, with
biases and norm weights drawn away from their zero/one initialisation so
that a missing term shows) and saved with save_pretrained. Then:

- `glvq eval`'s mean next-token NLL over random sequences equals
  transformers' (float32, eager attention) within 1e-5, for: Llama, Llama
  with attention_bias + mlp_bias, Llama with rope_scaling linear, dynamic,
  llama3 and yarn, Mistral with a sliding window shorter than the sequences,
  Qwen2 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm);
- for Qwen2 and Qwen3, `glvq quantize` (rtn, 8 bits) keeps the biases and
  norms: `glvq eval --packed` equals transformers on `glvq dequantize`'s
  checkpoint within 1e-5, and so does the packed directory loaded in
  transformers through the `glvq` package;
- each RoPE variant and the sliding window move transformers' NLL by at
  least 1e-3 from the same weights without them, so every case tests
  something;
- a mixture-of-experts model (Mixtral) is refused before any work, naming
  what is missing.
"""

import argparse
import os
import subprocess
import sys

import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, MistralConfig, MixtralConfig,
                          Qwen2Config, Qwen3Config)

import glvq  # noqa: F401  (registers the packed format with transformers)
from checker import Checker
from llama_interop import expect_close, glvq, glvq_eval

# initializer_range well above the default 0.02: with tiny weights attention
# is nearly uniform and positions (hence RoPE and windows) barely matter.
SIZES = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=128, max_position_embeddings=64,
             rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.3)
# glvq and transformers agree to F32 rounding (up to about 4e-7 here).
NLL_TOLERANCE = 1e-5
# A variant must move transformers' NLL at least this much away from its
# plain counterpart (same weights), or the case would test nothing.
MIN_EFFECT = 1e-3
SEQ_LEN = 40
ROPE_THETA = 10000.0

# (label, config class, config extras, the plain counterpart's extras for the
# effect check, or None: biases and norms are drawn large enough to matter).
CASES = [
    ("llama", LlamaConfig, {}, None),
    ("llama attention_bias + mlp_bias", LlamaConfig, dict(attention_bias=True, mlp_bias=True),
     None),
    ("llama rope linear", LlamaConfig,
     dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": ROPE_THETA}), {}),
    # Within max_position_embeddings dynamic NTK equals plain RoPE (and glvq
    # eval refuses longer sequences), so it has no effect check.
    ("llama rope dynamic", LlamaConfig,
     dict(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": ROPE_THETA}),
     None),
    ("llama rope llama3", LlamaConfig,
     dict(rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 32,
                           "rope_theta": 500000.0}),
     dict(rope_parameters={"rope_type": "default", "rope_theta": 500000.0})),
    ("llama rope yarn", LlamaConfig,
     dict(rope_parameters={"rope_type": "yarn", "factor": 4.0,
                           "original_max_position_embeddings": 16, "rope_theta": ROPE_THETA}),
     {}),
    ("mistral sliding window 8", MistralConfig, dict(sliding_window=8, head_dim=16),
     dict(sliding_window=None, head_dim=16)),
    ("qwen2", Qwen2Config, {}, None),
    ("qwen3", Qwen3Config, dict(head_dim=16), None),
]
QUANTIZED = {"qwen2", "qwen3"}


def build(config_class, extra, out):
    torch.manual_seed(0)
    config = config_class(**SIZES, **extra)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.5)
            elif "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.save_pretrained(out)
    return out


def transformers_nll(model_dir, seqs):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for seq in seqs:
            logits = model(torch.tensor([seq])).logits[0, :-1].double()
            lp = torch.log_softmax(logits, dim=-1)
            nll -= lp.gather(1, torch.tensor(seq[1:])[:, None]).sum().item()
            count += len(seq) - 1
    return nll / count


def write_tokens(path, seqs):
    with open(path, "w") as f:
        f.write("# random token sequences\n")
        for seq in seqs:
            f.write(" ".join(map(str, seq)) + "\n")


def check_family(bin_dir, work, label, config_class, extra, plain, tokens, seqs):
    model_dir = build(config_class, extra, os.path.join(work, label.replace(" ", "_")))
    ours, theirs = glvq_eval(bin_dir, model_dir, tokens)["nll"], transformers_nll(model_dir, seqs)
    expect_close(ours, theirs, "nll", tol=NLL_TOLERANCE)
    if plain is not None:
        plain_dir = build(config_class, plain, model_dir + "-plain")
        effect = abs(theirs - transformers_nll(plain_dir, seqs))
        print(f"     the variant moves transformers' nll by {effect:.2e}")
        if effect < MIN_EFFECT:
            raise AssertionError(f"{label}: the variant changes the nll by only {effect}")
    family = label.split()[0]
    if family in QUANTIZED:
        packed, dense = model_dir + "-packed", model_dir + "-dense"
        glvq(bin_dir, "quantize", "--model", model_dir, "--out", packed, "--method", "rtn",
             "--bits", "8")
        glvq(bin_dir, "dequantize", "--packed", packed, "--out", dense, "--dtype", "F32")
        ours, theirs = glvq_eval(bin_dir, model_dir, tokens, packed=packed)["nll"], \
            transformers_nll(dense, seqs)
        expect_close(ours, theirs, "quantized nll", tol=NLL_TOLERANCE)
        # The packed directory itself, through the glvq package (GlvqLinear
        # keeps the biases; q/k norms pass through unquantized).
        expect_close(transformers_nll(packed, seqs), theirs, "packed in transformers",
                     tol=NLL_TOLERANCE, names=("glvq package", "dequantized"))


def check_moe_refused(bin_dir, work, tokens):
    moe = build(MixtralConfig, dict(num_local_experts=4, num_experts_per_tok=2),
                os.path.join(work, "mixtral"))
    r = subprocess.run([os.path.join(bin_dir, "glvq"), "eval", "--model", moe, "--tokens", tokens],
                       capture_output=True, text=True)
    print(f"     {r.stderr.strip()}")
    if r.returncode == 0 or "mixtral" not in r.stderr:
        raise AssertionError(f"a Mixtral model was not refused by model_type: {r.stderr}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    print(f"interop: torch {torch.__version__}, transformers {transformers.__version__}")
    generator = torch.Generator().manual_seed(1234)
    seqs = [torch.randint(0, SIZES["vocab_size"], (SEQ_LEN,), generator=generator).tolist()
            for _ in range(4)]
    tokens = os.path.join(args.work, "tokens.txt")
    write_tokens(tokens, seqs)
    c = Checker(announce=True)
    for label, config_class, extra, plain in CASES:
        c.check(label, lambda: check_family(args.bin, args.work, label, config_class, extra, plain,
                                            tokens, seqs))
    c.check("mixture of experts refused", lambda: check_moe_refused(args.bin, args.work, tokens))
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
