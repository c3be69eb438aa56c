"""Helpers for scripts/llama-cpp-peer.sh (llama.cpp as a peer in the
real-model benchmark). Run with out/.venv-models/bin/python.

  float-gguf SRC DST            SRC's metadata and tokenizer unchanged, every
                                tensor dequantized and stored as F32
  calib-text TOKENS TOK OUT     a token file as text for llama-imatrix (OUT),
                                and the ids it must tokenize to (OUT.ids)
  check-ids WANT GOT            exit 1 unless llama-tokenize's ids (GOT)
                                are those calib-text meant (WANT)
  row TYPE GGUF DIR CPU IMATRIX_CPU
                                one benchmark row (JSON) for a quantized GGUF
  to-hf GGUF OUT_DIR            GGUF -> HF checkpoint (gguf_to_hf.convert)
  same-weights A B              exit 1 unless two checkpoints' tensors are equal
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize

# The linear layers glvq quantizes; their bytes over their weights is bits_total.
LINEAR = re.compile(r"blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight")

SEP = "<|endoftext|>"  # ends each calibration chunk for llama-imatrix

# The ggml type each llama.cpp file type is named after. llama.cpp advertises
# 2.06 / 2.31 / 3.06 bpw for the IQ types; the K mixes advertise only file
# sizes, so their nominal bits are those of their main type.
MAIN_TYPE = {"Q2_K": "Q2_K", "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS",
             "IQ3_XXS": "IQ3_XXS", "Q3_K_M": "Q3_K", "Q4_K_M": "Q4_K"}


def ggml_name(t: GGMLQuantizationType) -> str:
    """llama.cpp's spelling: q4_K, iq2_xxs, f32."""
    return re.sub(r"_k$", "_K", t.name.lower())


def type_bits(t: GGMLQuantizationType) -> float:
    block, size = GGML_QUANT_SIZES[t]
    return 8.0 * size / block


def read_tokens(path):
    seqs = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            seqs.append([int(x) for x in line.split()])
    return seqs


def float_gguf(src, dst):
    r = GGUFReader(src)
    w = GGUFWriter(dst, arch=r.fields["general.architecture"].contents())
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # written by GGUFWriter itself
        if key == "general.file_type":
            w.add_file_type(0)  # LLAMA_FTYPE_ALL_F32
            continue
        sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), f.types[0], sub)
    for t in r.tensors:
        w.add_tensor(t.name, np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def calib_text(tokens, tokenizer_json, out):
    """llama-imatrix reads text, tokenizes it as one stream and cuts it into
    chunks of -c tokens. Decoding the sequences back to back would let BPE
    merge tokens across sequence boundaries and shift every later chunk, so
    each sequence is followed by SEP: a special token, which both tokenizers
    split on before BPE. With -c seq_len+1 every chunk is one sequence, its
    tokens and their causal context as glvq calibrates on them, plus SEP
    last (one extra activation row in seq_len+1). A sequence whose text
    retokenizes to fewer tokens (a window cut inside a run that BPE merges
    differently) gets extra SEPs, so the chunks stay aligned."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_json))
    seqs = read_tokens(tokens)
    lengths = {len(s) for s in seqs}
    if len(lengths) != 1:
        sys.exit(f"{tokens}: sequences of different lengths {sorted(lengths)}")
    seq_len = lengths.pop()
    sep = tok.token_to_id(SEP)
    texts, ids, identical = [], [], 0
    for s in seqs:
        n = len(s)
        while True:  # a retokenization longer than seq_len: drop trailing tokens
            text = tok.decode(s[:n], skip_special_tokens=False)
            enc = tok.encode(text, add_special_tokens=False).ids
            if len(enc) <= seq_len:
                break
            n -= 1
        identical += enc == s
        pad = seq_len + 1 - len(enc)
        texts.append(text + SEP * pad)
        ids += enc + [sep] * pad
    # The text ends in SEP, so llama-imatrix's -f (which drops one trailing
    # newline) reads it unchanged; --no-escape keeps backslashes as they are.
    Path(out).write_text("".join(texts), encoding="utf-8")
    Path(out + ".ids").write_text(json.dumps(ids))
    print(json.dumps({"sequences": len(seqs), "seq_len": seq_len, "chunk": seq_len + 1,
                      "separator": SEP, "identical_sequences": identical}))


def check_ids(expected_ids, got_ids):
    """Compares the ids calib-text meant with those llama-tokenize printed."""
    want = json.loads(Path(expected_ids).read_text())
    got = json.loads(Path(got_ids).read_text())
    same = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    print(json.dumps({"expected": len(want), "llama_tokenize": len(got), "identical_prefix": same}))
    sys.exit(0 if want == got else 1)


def row(qtype, gguf_path, out_dir, cpu, imatrix_cpu):
    r = GGUFReader(gguf_path)
    nbytes = nweights = 0
    used = Counter()
    for t in r.tensors:
        if LINEAR.fullmatch(t.name):
            nbytes += int(t.n_bytes)
            nweights += int(t.n_elements)
            used[ggml_name(t.tensor_type)] += 1
    print(json.dumps({
        "method": "llama.cpp",
        "config": f"{qtype} imatrix",
        "bits": round(type_bits(GGMLQuantizationType[MAIN_TYPE[qtype]]), 4),
        "bits_total": round(8.0 * nbytes / nweights, 4),
        "dir": out_dir,
        "quantize_cpu_seconds": float(cpu),
        "imatrix_cpu_seconds": float(imatrix_cpu),
        "types_used": dict(sorted(used.items())),
    }))


def to_hf(gguf_path, out_dir):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gguf_to_hf import convert
    convert(gguf_path, out_dir, dtype="F32")


def same_weights(a, b):
    from safetensors.numpy import load_file

    def load(d):
        out = {}
        for f in sorted(Path(d).glob("*.safetensors")):
            out.update(load_file(f))
        return out
    x, y = load(a), load(b)
    shared = sorted(set(x) & set(y))
    diff = [k for k in shared if x[k].shape != y[k].shape or
            not np.array_equal(x[k].astype(np.float32), y[k].astype(np.float32))]
    only = sorted(set(x) ^ set(y))
    print(json.dumps({"tensors": len(shared), "different": diff[:5], "n_different": len(diff),
                      "unmatched": only[:5]}))
    sys.exit(1 if diff or not shared else 0)


if __name__ == "__main__":
    cmds = {"float-gguf": float_gguf, "calib-text": calib_text, "check-ids": check_ids,
            "row": row, "to-hf": to_hf, "same-weights": same_weights}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
