"""The CUDA half of the transformers integration (python/glvq/hf.py).

For each packed model under DIR (scripts/gpu-check.sh prepare writes them
from the stories260K fixture, one per method), loads it with transformers
after `import glvq` and checks on the GPU, with the same code as on the CPU:

- the logits equal the CPU's within 1e-4 relative (F32, TF32 off);
- the quantized linears stay packed there: their buffers live on the GPU
  and no dense weight is kept;
- greedy generate() gives the CPU's tokens.

Prints one line per check and "python-hf-cuda: N passed, M failed" last;
exit 1 if any failed. Without a CUDA device: says so and exits 0 (the
rehearsal). Usage: python3 python_hf_cuda_check.py DIR
"""

import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

import glvq  # registers the quantizer with transformers
from glvq.hf import GlvqLinear

TOLERANCE = 1e-4


def main():
    root = sys.argv[1]
    # GLVQ_CHECK_DEVICE=cpu runs the checks CPU against CPU: a rehearsal of
    # the script itself on a machine without a GPU.
    device = "cuda" if torch.cuda.is_available() else os.environ.get("GLVQ_CHECK_DEVICE")
    if device is None:
        print("python-hf-cuda: no CUDA device: SKIPPED")
        return 0
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok    " if ok else "FAIL  ") + what)
        passed += bool(ok)
        failed += not ok

    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        cpu = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        gpu = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval().to(device)
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(0, cpu.config.vocab_size, (2, 64), generator=generator)
        with torch.no_grad():
            want = cpu(tokens).logits
            got = gpu(tokens.to(device)).logits.cpu()
        rel = float((got - want).norm() / want.norm())
        check(rel <= TOLERANCE, f"{name}: logits on {device} vs CPU, relative error {rel:.2e}")
        linears = [m for m in gpu.modules() if isinstance(m, GlvqLinear)]
        on_gpu = all(b.device.type == device for m in linears for b in m.buffers())
        dense = [m for m in linears if getattr(m, "weight", None) is not None]
        check(linears and on_gpu and not dense,
              f"{name}: {len(linears)} packed linears on {device}, {len(dense)} with a dense weight")
        with torch.no_grad():
            prompt = tokens[:, :8]
            greedy = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
            greedy_cpu = cpu.generate(prompt, attention_mask=torch.ones_like(prompt), **greedy)
            greedy_gpu = gpu.generate(prompt.to(device),
                                      attention_mask=torch.ones_like(prompt).to(device),
                                      **greedy).cpu()
        check(torch.equal(greedy_cpu, greedy_gpu), f"{name}: greedy generate() on {device} = CPU")
    print(f"python-hf-cuda: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
