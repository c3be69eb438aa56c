"""scripts/models/gguf_to_hf.py against transformers and the gguf package.

A tiny random Llama made by transformers' own LlamaConfig is written as a
GGUF file the way llama.cpp's convert_hf_to_gguf.py writes one (llama
metadata, q/k rows permuted for its rotary embedding, tied embedding as
no output tensor), then converted back:

  * F32: every tensor comes back bit for bit, and LlamaForCausalLM on the
    converted checkpoint gives the original's logits (max abs diff <= 1e-5);
    a converter that skipped the q/k un-permutation would fail that check;
  * untied lm_head and BF16 output round-trip too;
  * Q8_0 and Q4_1 dequantize to within half a quantization step per block;
  * config.json holds the original config's fields.

A small byte-level BPE tokenizer trained with `tokenizers` and stored in the
GGUF metadata as llama.cpp stores it (tokenizer.ggml.*) is rebuilt by
scripts/models/gguf_tokenizer.py and must encode sample text identically.
No download beyond the venv, no glvq binary.
"""

import argparse
import importlib.metadata
import json
import os
import shutil
import sys

import gguf
import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from safetensors.torch import load_file as load_torch_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

from checker import Checker

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "models"))
import gguf_to_hf  # noqa: E402
import gguf_tokenizer  # noqa: E402

LOGITS_TOLERANCE = 1e-5
ROPE_THETA = 100000.0  # not transformers' default, so a dropped value shows
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEXT = [
    "The quick brown fox jumps over the lazy dog. It's 12:45 and 2024 was a leap year.",
    "Python's standard library is very extensive, offering a wide range of facilities.",
    "  Indented code:\n\tdef f(x):\n\t\treturn x ** 2  # squares 1234567890\n",
    "Unicode too: café, naïve, Ångström, 日本語, emoji 😀 and a\r\nWindows line end.",
]
SAMPLES = TEXT + ["<|im_start|>user\nWhat's 17 * 3?<|im_end|>\n<|im_start|>assistant\n51",
                  "unseen words: zymurgy quixotic 3.14159 (parens) [brackets] {braces}"]

# GGUF name of each HF tensor (inverse of gguf_to_hf's table), as llama.cpp names them.
GGUF_NAMES = {v: k for k, v in {**gguf_to_hf._LAYER_TENSORS, **gguf_to_hf._GLOBAL_TENSORS}.items()}


# ---- the tiny model and tokenizer -------------------------------------------------------

def train_tokenizer():
    """A SmolLM2-style byte-level BPE (Digits then ByteLevel), 320 tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXT * 4, trainer=trainer)
    return tok


def make_model(vocab_size, tied):
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=ROPE_THETA,
                         tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2,
                         hidden_act="silu")
    torch.manual_seed(0 if tied else 1)
    # Eager attention as in the converted model's check: sdpa rounds differently.
    model = LlamaForCausalLM._from_config(config, attn_implementation="eager").eval()
    # transformers' init (std 0.02) leaves attention nearly uniform, where a
    # wrong q/k row order barely shows: use unit-scale weights instead.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / (p.shape[-1] ** 0.5 if "embed" not in name else 1))
    return model


# ---- writing a GGUF file as llama.cpp does -----------------------------------------------

def gguf_name(hf):
    base, _, suffix = hf.rpartition(".")
    if base.startswith("model.layers."):
        _, _, layer, rest = base.split(".", 3)
        return f"blk.{layer}.{GGUF_NAMES[rest]}.{suffix}"
    return f"{GGUF_NAMES[base]}.{suffix}"


def add_tokenizer(writer, tok):
    """tokenizer.ggml.* as llama.cpp's converter (gguf.SpecialVocab) writes them."""
    spec = json.loads(tok.to_str())
    n = tok.get_vocab_size()
    tokens = [tok.id_to_token(i) for i in range(n)]
    specials = {tok.token_to_id(s) for s in SPECIAL}
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL
                            for i in range(n)])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tok.token_to_id("<|im_start|>"))
    writer.add_eos_token_id(tok.token_to_id("<|im_end|>"))
    writer.add_add_bos_token(False)


def write_gguf(path, model, tok, qtype):
    """The model as llama.cpp would write it, 2-D weights in qtype, norms in F32."""
    c = model.config
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.head_dim)
    w.add_vocab_size(c.vocab_size)
    add_tokenizer(w, tok)
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and c.tie_word_embeddings:
            continue  # llama.cpp writes no output tensor for a tied head
        a = t.numpy()
        if name.endswith("q_proj.weight"):
            a = gguf_to_hf.permute(a, c.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            a = gguf_to_hf.permute(a, c.num_key_value_heads)
        if a.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
            w.add_tensor(gguf_name(name), gguf.quants.quantize(a, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(gguf_name(name), a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- checks ------------------------------------------------------------------------------

def originals(model):
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        del state["lm_head.weight"]
    return state


def logits(model_or_dir, ids):
    model = model_or_dir
    if isinstance(model_or_dir, str):
        model = LlamaForCausalLM.from_pretrained(model_or_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def sample_ids(vocab_size):
    return np.random.default_rng(3).integers(0, vocab_size, size=48).tolist()


def check_exact(model, out_dir):
    got = load_file(os.path.join(out_dir, "model.safetensors"))
    want = originals(model)
    if set(got) != set(want):
        raise AssertionError(f"tensor names {sorted(got)} != {sorted(want)}")
    for name, a in want.items():
        if got[name].dtype != np.float32 or not np.array_equal(got[name], a):
            raise AssertionError(f"{name} differs after the round trip")
    print(f"     {len(want)} tensors bit for bit")


def check_logits(model, out_dir, min_diff=None):
    """Converted logits equal the original's; with min_diff, they must differ instead."""
    ids = sample_ids(model.config.vocab_size)
    diff = np.abs(logits(out_dir, ids) - logits(model, ids)).max()
    print(f"     logits max abs diff {diff:.3e} (logits' scale "
          f"{np.abs(logits(model, ids)).max():.1f})")
    if min_diff is None and not diff <= LOGITS_TOLERANCE:
        raise AssertionError(f"logits differ by {diff} > {LOGITS_TOLERANCE}")
    if min_diff is not None and not diff >= min_diff:
        raise AssertionError(f"logits differ by only {diff}: the check cannot see this error")


def check_config(model, out_dir):
    with open(os.path.join(out_dir, "config.json")) as f:
        written = json.load(f)
    loaded = LlamaConfig.from_pretrained(out_dir)
    c = model.config
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "head_dim",
                "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings",
                "bos_token_id", "eos_token_id", "hidden_act", "model_type"):
        want = getattr(c, key)
        if written.get(key) != want or getattr(loaded, key) != want:
            raise AssertionError(f"{key}: written {written.get(key)!r}, transformers reads "
                                 f"{getattr(loaded, key)!r}, original {want!r}")
    theta = getattr(loaded, "rope_parameters", None) or {"rope_theta": loaded.rope_theta}
    if written["rope_theta"] != ROPE_THETA or theta["rope_theta"] != ROPE_THETA:
        raise AssertionError(f"rope_theta: written {written['rope_theta']}, read {theta}")


def block_steps(a, qtype):
    """Per block of 32 along each row: the quantization step of qtype."""
    blocks = a.reshape(*a.shape[:-1], -1, 32)
    if qtype == gguf.GGMLQuantizationType.Q8_0:
        return np.abs(blocks).max(-1) / 127
    return (blocks.max(-1) - blocks.min(-1)) / 15  # Q4_1: min + 4-bit steps


def check_quantized(model, out_dir, qtype):
    """Each dequantized weight is within half a step (plus float16 scale rounding)."""
    got = load_file(os.path.join(out_dir, "model.safetensors"))
    worst = 0.0
    for name, a in originals(model).items():
        if a.ndim == 1:
            if not np.array_equal(got[name], a):
                raise AssertionError(f"{name} (F32) differs")
            continue
        err = np.abs(got[name] - a).reshape(*a.shape[:-1], -1, 32).max(-1)
        step = block_steps(a, qtype)
        # float16 scales: the step and (Q4_1) the block minimum round by 2^-11.
        slack = 2.0 ** -10 * (np.abs(a).reshape(*a.shape[:-1], -1, 32).max(-1) + 32 * step)
        ratio = err / (0.5 * step + slack)
        worst = max(worst, float(ratio.max()))
        if not (ratio <= 1).all():
            raise AssertionError(f"{name}: error {err.max()} beyond half a step {step.max() / 2}")
    print(f"     worst error / (half step + fp16 slack) = {worst:.3f}")


def check_bf16(model, out_dir):
    got = load_torch_file(os.path.join(out_dir, "model.safetensors"))
    for name, t in model.state_dict().items():
        if name in got and not torch.equal(got[name], t.to(torch.bfloat16)):
            raise AssertionError(f"{name}: BF16 differs from torch's rounding")
    LlamaForCausalLM.from_pretrained(out_dir, dtype=torch.float32)  # and transformers loads it


def check_tokenizer(tok, gguf_path):
    rebuilt = gguf_tokenizer.build_tokenizer(gguf.GGUFReader(gguf_path))
    for text in SAMPLES:
        want, got = tok.encode(text).ids, rebuilt.encode(text).ids
        if got != want:
            raise AssertionError(f"{text!r}: rebuilt {got} != original {want}")
        if rebuilt.decode(got, skip_special_tokens=False) != text:
            raise AssertionError(f"{text!r}: decode(encode(text)) differs")
    for s in SPECIAL:
        if rebuilt.encode(s).ids != [tok.token_to_id(s)]:
            raise AssertionError(f"{s} is not one token")
    print(f"     {len(SAMPLES)} texts: identical ids, exact round trip; specials single ids")


# ---- driver ------------------------------------------------------------------------------

def convert(model, tok, work, name, qtype, dtype="F32"):
    path = os.path.join(work, f"{name}.gguf")
    write_gguf(path, model, tok, qtype)
    out = os.path.join(work, name)
    gguf_to_hf.convert(path, out, dtype=dtype)
    return path, out


def without_unpermute(model, tok, work):
    """The converter with q/k rows left in llama.cpp's order."""
    real = gguf_to_hf.unpermute
    gguf_to_hf.unpermute = lambda w, n_head: w
    try:
        return convert(model, tok, work, "no-unpermute", gguf.GGMLQuantizationType.F32)[1]
    finally:
        gguf_to_hf.unpermute = real


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="scratch directory")
    args = parser.parse_args()
    torch.set_num_threads(2)
    transformers.utils.logging.disable_progress_bar()
    print(f"interop: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"gguf {importlib.metadata.version('gguf')}")
    F32, Q8_0, Q4_1 = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.Q8_0,
                       gguf.GGMLQuantizationType.Q4_1)
    tok = train_tokenizer()
    tied = make_model(tok.get_vocab_size(), tied=True)
    untied = make_model(tok.get_vocab_size(), tied=False)
    path, f32 = convert(tied, tok, args.work, "f32", F32)

    c = Checker(announce=True)
    c.check("F32 GGUF: every tensor round-trips exactly", lambda: check_exact(tied, f32))
    c.check("F32 GGUF: converted logits equal the original's", lambda: check_logits(tied, f32))
    c.check("without the q/k un-permutation the logits check fails",
            lambda: check_logits(tied, without_unpermute(tied, tok, args.work), min_diff=0.1))
    c.check("config.json holds the original config", lambda: check_config(tied, f32))
    c.check("tokenizer rebuilt from tokenizer.ggml.* encodes identically",
            lambda: check_tokenizer(tok, path))

    def untied_round_trip():
        out = convert(untied, tok, args.work, "untied", F32)[1]
        check_exact(untied, out)
        check_logits(untied, out)
    c.check("untied lm_head: exact tensors and logits", untied_round_trip)
    c.check("BF16 output: torch's bfloat16 rounding of every tensor",
            lambda: check_bf16(tied, convert(tied, tok, args.work, "bf16", F32, "BF16")[1]))
    for qtype in (Q8_0, Q4_1):
        c.check(f"{qtype.name} GGUF: dequantized within half a step per block",
                lambda q=qtype: check_quantized(tied, convert(tied, tok, args.work, q.name, q)[1], q))
    shutil.rmtree(args.work, ignore_errors=True)

    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
