"""Checks the SmolLM2 checkpoint that scripts/fetch-models.sh converted.

1. transformers' LlamaForCausalLM (float32, eager attention, CPU) loads it
   and its mean next-token NLL on eval.tokens is that of a working model
   (about 3.15 nats/token on held-out English prose was measured elsewhere;
   a conversion error such as q/k rows left permuted scores far worse).
2. transformers' AutoTokenizer on the converted tokenizer files encodes
   like the `tokenizers` Tokenizer, and the chat template renders.
3. When a glvq binary is given (or appears within --wait seconds),
   `glvq eval` reports the same NLL within 1e-4 relative; its wall time is
   printed, as it sizes the real-model benchmark.

Needs torch and transformers: run it through check_smollm2.sh, which picks
or makes such a virtualenv.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoTokenizer, LlamaForCausalLM

RELATIVE_TOLERANCE = 1e-4
# A correct SmolLM2-135M reads documentation prose at about 3 nats/token;
# broken weights (wrong row order, wrong scale) land well above 5.
PLAUSIBLE_NLL = (1.5, 4.5)
SAMPLE = "Hello, world! The year 2024 had 366 days; it's <|im_start|>user\nhi<|im_end|>"


def read_tokens(path):
    """The token file format: one sequence per line, '#' comment lines."""
    with open(path) as f:
        return [[int(t) for t in line.split()] for line in f
                if line.strip() and not line.lstrip().startswith("#")]


def reference_nll(model_dir, seqs):
    """Mean NLL of every next token after the first, as `glvq eval` computes it."""
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for seq in seqs:  # one at a time: a batch's float64 logits need GBs
            logits = model(torch.tensor([seq])).logits[0, :-1]
            log_probs = torch.log_softmax(logits.double(), dim=-1)
            nll -= log_probs.gather(1, torch.tensor(seq[1:])[:, None]).sum().item()
            count += len(seq) - 1
    return nll / count


def check_tokenizer(model_dir):
    fast = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(model_dir)
    ours, theirs = fast.encode(SAMPLE).ids, auto(SAMPLE)["input_ids"]
    if ours != theirs:
        raise AssertionError(f"AutoTokenizer {theirs} != tokenizers {ours}")
    chat = auto.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    if "<|im_start|>user\nhi<|im_end|>" not in chat:
        raise AssertionError(f"chat template rendered {chat!r}")
    print(f"check: AutoTokenizer ({type(auto).__name__}) encodes like tokenizers; "
          f"chat template renders")


def wait_for(path, seconds):
    deadline = time.monotonic() + seconds
    while not os.access(path, os.X_OK) and time.monotonic() < deadline:
        time.sleep(30)
    return os.access(path, os.X_OK)


def glvq_nll(glvq, model_dir, tokens):
    """`glvq eval`'s NLL and its wall time in seconds."""
    start = time.monotonic()
    r = subprocess.run([glvq, "eval", "--model", model_dir, "--tokens", tokens, "--json"],
                       capture_output=True, text=True)
    seconds = time.monotonic() - start
    if r.returncode != 0:
        raise AssertionError(f"glvq eval failed: {r.stderr.strip()}")
    return json.loads(r.stdout)["nll"], seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="out/models/smollm2")
    parser.add_argument("--tokens", help="token file (default: eval.tokens in --model)")
    parser.add_argument("--glvq", help="a glvq binary to compare (e.g. build/bin/glvq)")
    parser.add_argument("--wait", type=float, default=0,
                        help="seconds to wait for --glvq to be built (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    tokens = args.tokens or os.path.join(args.model, "eval.tokens")
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    print(f"check: torch {torch.__version__}, transformers {transformers.__version__}")

    check_tokenizer(args.model)
    seqs = read_tokens(tokens)
    start = time.monotonic()
    nll = reference_nll(args.model, seqs)
    print(f"check: transformers nll {nll:.6f} nats/token over {len(seqs)} sequences "
          f"({sum(map(len, seqs))} tokens) in {time.monotonic() - start:.1f} s")
    if not PLAUSIBLE_NLL[0] <= nll <= PLAUSIBLE_NLL[1]:
        raise AssertionError(f"nll {nll} is outside {PLAUSIBLE_NLL}: the conversion is broken")

    if args.glvq:
        if not wait_for(args.glvq, args.wait):
            print(f"check: {args.glvq} is not built; glvq eval not compared")
            return 0
        ours, seconds = glvq_nll(args.glvq, args.model, tokens)
        rel = abs(ours - nll) / nll
        print(f"check: glvq eval nll {ours:.6f} (relative diff {rel:.2e}) in {seconds:.1f} s wall")
        if rel > RELATIVE_TOLERANCE:
            raise AssertionError(f"glvq {ours} vs transformers {nll}: beyond {RELATIVE_TOLERANCE}")
    print("check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
