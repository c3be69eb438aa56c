"""Memory and speed of a packed glvq model loaded in transformers.

    python bench/python/hf_load_bench.py --packed out/smollm2-2bit \
        --dense out/models/smollm2 [--tokens 128] [--new-tokens 16]

Each model is loaded in its own child process (so resident memory is not
shared between them): the packed directory through `import glvq` +
`AutoModelForCausalLM.from_pretrained`, and the dense source in bf16 and in
f32. Prints one table row per model: bytes of the linear layers' weights as
held (packed components, or dense parameters), the process's resident set
after loading and its peak over one forward pass of `--tokens` tokens,
and greedy decoding speed in tokens/s. With --json, one JSON object per row.
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(kind, path, tokens, new_tokens):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(1)
    base = rss_bytes()
    if kind == "packed":
        import glvq
        from glvq.hf import packed_linear_bytes

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        linear = packed_linear_bytes(model)
    else:
        dtype = torch.bfloat16 if kind == "dense_bf16" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        linear = sum(m.weight.numel() * m.weight.element_size()
                     for n, m in model.named_modules()
                     if isinstance(m, torch.nn.Linear) and "lm_head" not in n)
    model.eval()
    loaded = rss_bytes() - base
    ids = torch.randint(0, model.config.vocab_size, (1, tokens))
    with torch.no_grad():
        model(ids)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
        start = time.perf_counter()
        model.generate(ids[:, :8], max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False)
        seconds = time.perf_counter() - start
    return {"model": kind, "linear_bytes": linear, "rss_loaded": loaded, "rss_peak": peak,
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
    for kind, path in (("packed", a.packed), ("dense_bf16", a.dense), ("dense_f32", a.dense)):
        out = subprocess.run([sys.executable, __file__, "--packed", a.packed, "--dense", a.dense,
                              "--tokens", str(a.tokens), "--new-tokens", str(a.new_tokens),
                              "--child", kind, path], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 1 << 20
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'model':<11} {'linear MiB':>10} {'RSS MiB':>8} {'peak MiB':>9} {'tok/s':>7}")
    for r in rows:
        print(f"{r['model']:<11} {r['linear_bytes'] / mib:>10.1f} {r['rss_loaded'] / mib:>8.1f} "
              f"{r['rss_peak'] / mib:>9.1f} {r['tokens_per_s']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
