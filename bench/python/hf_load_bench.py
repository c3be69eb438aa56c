"""Memory and speed of a packed glvq model loaded in transformers.

    python bench/python/hf_load_bench.py --packed out/smollm2-2bit \
        --dense out/models/smollm2 [--tokens 128] [--new-tokens 16]

Each model is loaded in its own child process (so resident memory is not
shared between them): the packed directory through `import glvq` +
`AutoModelForCausalLM.from_pretrained` in bf16 (decoding every weight on
every forward pass), the same after `glvq.hf.decode_all` (decoded once to bf16),
and the dense source in bf16 and in f32. Prints one table row per model:
bytes of the linear layers' weights as held (packed components, or dense
parameters), bytes of every parameter and buffer of the model, the
process's peak resident set over loading and one forward pass of
`--tokens` tokens, and greedy decoding speed in tokens/s (also as a ratio
to dense bf16 in the same run). With --json, one JSON object per row.
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def dense_linear_bytes(model):
    import torch

    return sum(m.weight.numel() * m.weight.element_size() for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "lm_head" not in n)


def measure(kind, path, tokens, new_tokens):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(1)
    if kind.startswith("packed"):
        import glvq
        from glvq.hf import decode_all, packed_linear_bytes

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
        linear = packed_linear_bytes(model)
        if kind == "packed_decoded":
            model = decode_all(model, torch.bfloat16)
            linear = dense_linear_bytes(model)
    else:
        dtype = torch.bfloat16 if kind == "dense_bf16" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        linear = dense_linear_bytes(model)
    model.eval()
    held = sum(t.numel() * t.element_size()
               for t in list(model.parameters()) + list(model.buffers()))
    ids = torch.randint(0, model.config.vocab_size, (1, tokens))
    with torch.no_grad():
        model(ids)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        start = time.perf_counter()
        model.generate(ids[:, :8], max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False)
        seconds = time.perf_counter() - start
    return {"model": kind, "linear_bytes": linear, "model_bytes": held, "rss_peak": peak,
            "tokens_per_s": new_tokens / seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packed", required=True)
    p.add_argument("--dense", required=True, help="the source checkpoint")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(measure(a.child[0], a.child[1], a.tokens, a.new_tokens)))
        return 0
    rows = []
    for kind, path in (("packed", a.packed), ("packed_decoded", a.packed),
                       ("dense_bf16", a.dense), ("dense_f32", a.dense)):
        out = subprocess.run([sys.executable, __file__, "--packed", a.packed, "--dense", a.dense,
                              "--tokens", str(a.tokens), "--new-tokens", str(a.new_tokens),
                              "--child", kind, path], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 1 << 20
    bf16 = next(r for r in rows if r["model"] == "dense_bf16")["tokens_per_s"]
    for r in rows:
        r["speed_vs_bf16"] = r["tokens_per_s"] / bf16
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'model':<15} {'linear MiB':>10} {'model MiB':>9} {'peak RSS MiB':>12} {'tok/s':>7} "
          f"{'vs bf16':>7}")
    for r in rows:
        print(f"{r['model']:<15} {r['linear_bytes'] / mib:>10.1f} {r['model_bytes'] / mib:>9.1f} "
              f"{r['rss_peak'] / mib:>12.1f} {r['tokens_per_s']:>7.2f} {r['speed_vs_bf16']:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
