"""Converts a llama-architecture GGUF file to a Hugging Face Llama checkpoint.

Writes model.safetensors (HF tensor names), config.json
(LlamaForCausalLM), generation_config.json and the tokenizer files
(tokenizer.json, tokenizer_config.json, special_tokens_map.json), all
read from the GGUF file's own metadata. Every tensor type is dequantized
with gguf.quants.dequantize, so the same code turns llama.cpp's quantized
outputs back into a checkpoint that `glvq eval` and transformers load.

llama.cpp's convert_hf_to_gguf.py permutes the rows of q_proj and k_proj
so that its interleaved-pair rotary embedding matches HF's rotate-half
one; `unpermute` undoes that exactly (a pure reordering of rows).

    python gguf_to_hf.py MODEL.gguf OUT_DIR [--dtype F32|BF16]
"""

import argparse
import json
import os
import sys

import gguf
import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_tokenizer  # noqa: E402  (beside this file)
from gguf_tokenizer import metadata  # noqa: E402

# GGUF tensor name -> HF name; "{}" is the layer index.
_LAYER_TENSORS = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_TENSORS = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}


def hf_name(gguf_name):
    """model.layers.3.self_attn.q_proj.weight for blk.3.attn_q.weight, and so on."""
    base, _, suffix = gguf_name.rpartition(".")
    parts = base.split(".")
    if parts[0] == "blk" and len(parts) == 3 and parts[2] in _LAYER_TENSORS:
        return f"model.layers.{int(parts[1])}.{_LAYER_TENSORS[parts[2]]}.{suffix}"
    if base in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[base]}.{suffix}"
    raise NotImplementedError(f"GGUF tensor {gguf_name!r} has no HF Llama equivalent "
                              "(rope scaling tables, biases and other extras are not supported)")


def permute(w, n_head):
    """llama.cpp's q/k row permutation (convert_hf_to_gguf.py, LlamaModel.permute)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    """The inverse of `permute`: each head's rows back from pairs to halves."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _float32_literal(value):
    # GGUF stores eps and rope base as float32: 1e-5 reads back as
    # 9.9999997e-06. The shortest decimal that rounds to the same float32 is
    # the number the original config had.
    return float(str(np.float32(value)))


def read_config(reader, tensor_names):
    """The HF LlamaConfig fields from llama.* metadata (nothing assumed)."""
    arch = metadata(reader, "general.architecture")
    if arch != "llama":
        raise NotImplementedError(f"general.architecture {arch!r}: only 'llama' is supported")
    if metadata(reader, "llama.rope.scaling.type", "none") != "none":
        raise NotImplementedError("llama.rope.scaling.* is not supported")

    def need(key):
        value = metadata(reader, f"llama.{key}")
        if value is None:
            raise ValueError(f"GGUF metadata llama.{key} is missing")
        return value

    hidden, heads = int(need("embedding_length")), int(need("attention.head_count"))
    kv_heads = int(metadata(reader, "llama.attention.head_count_kv", heads))
    head_dim = int(metadata(reader, "llama.attention.key_length", hidden // heads))
    rope_dims = int(metadata(reader, "llama.rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise NotImplementedError(f"partial rotary ({rope_dims} of {head_dim} dims)")
    tokens = metadata(reader, "tokenizer.ggml.tokens")
    vocab = metadata(reader, "llama.vocab_size", len(tokens) if tokens else None)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(need("feed_forward_length")),
        "num_hidden_layers": int(need("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": int(vocab),
        "max_position_embeddings": int(need("context_length")),
        "rms_norm_eps": _float32_literal(need("attention.layer_norm_rms_epsilon")),
        "rope_theta": _float32_literal(metadata(reader, "llama.rope.freq_base", 10000.0)),
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        # llama.cpp writes no output.weight when the head shares the embedding.
        "tie_word_embeddings": "output.weight" not in tensor_names,
    }
    ids = gguf_tokenizer.special_token_ids(reader)
    for name, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"),
                      ("padding", "pad_token_id")):
        if name in ids:
            config[key] = ids[name]
    return config


def read_tensors(reader, config, dtype):
    """{HF name: array in `dtype`}: dequantized, q/k rows back in HF order."""
    out_dtype = {"F32": np.float32, "BF16": None}[dtype]
    tensors = {}
    for t in reader.tensors:
        name = hf_name(t.name)
        # Reader shapes are numpy order (rows, row bytes or elements).
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        if name.endswith("self_attn.q_proj.weight"):
            w = unpermute(w, config["num_attention_heads"])
        elif name.endswith("self_attn.k_proj.weight"):
            w = unpermute(w, config["num_key_value_heads"])
        tensors[name] = np.ascontiguousarray(w) if out_dtype else _to_bf16(w)
    return tensors


def _to_bf16(w):
    """float32 -> bfloat16 (round to nearest even), as the bytes safetensors stores."""
    # numpy has no bfloat16; gguf's BF16 quantizer rounds the same way torch does.
    return gguf.quants.quantize(w.astype(np.float32), gguf.GGMLQuantizationType.BF16)


def check_shapes(tensors, config):
    h, v = config["hidden_size"], config["vocab_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    want = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        want.update({p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
                     p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
                     p + "mlp.gate_proj.weight": (config["intermediate_size"], h),
                     p + "mlp.up_proj.weight": (config["intermediate_size"], h),
                     p + "mlp.down_proj.weight": (h, config["intermediate_size"]),
                     p + "input_layernorm.weight": (h,),
                     p + "post_attention_layernorm.weight": (h,)})
    if not config["tie_word_embeddings"]:
        want["lm_head.weight"] = (v, h)
    if set(want) != set(tensors):
        raise ValueError(f"tensors missing: {sorted(set(want) - set(tensors))[:5]}, "
                         f"unexpected: {sorted(set(tensors) - set(want))[:5]}")
    for name, shape in want.items():
        got = tensors[name].shape
        if tensors[name].dtype == np.uint8:  # BF16 bytes: two per element
            got = got[:-1] + (got[-1] // 2,)
        if got != shape:
            raise ValueError(f"{name}: shape {got}, config says {shape}")


def _save_bf16(tensors, path):
    # safetensors.numpy has no bfloat16 dtype: write the header by hand.
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, raw in tensors.items():
        shape = list(raw.shape[:-1]) + [raw.shape[-1] // 2]
        header[name] = {"dtype": "BF16", "shape": shape,
                        "data_offsets": [offset, offset + raw.nbytes]}
        offset += raw.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for raw in tensors.values():
            f.write(raw.tobytes())


def _write_json(out_dir, name, obj):
    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def tokenizer_files(reader, tokenizer, config):
    """tokenizer_config.json and special_tokens_map.json contents."""
    ids = gguf_tokenizer.special_token_ids(reader)
    names = {"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token",
             "padding": "pad_token"}
    special = {names[k]: tokenizer.id_to_token(i) for k, i in ids.items()}
    added = {str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                      "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special}
             for i, t in sorted(tokenizer.get_added_tokens_decoder().items())}
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": bool(metadata(reader, "tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(metadata(reader, "tokenizer.ggml.add_eos_token", False)),
        "add_prefix_space": bool(metadata(reader, "tokenizer.ggml.add_space_prefix", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": config["max_position_embeddings"],
        "added_tokens_decoder": added,
        **special,
    }
    template = metadata(reader, "tokenizer.chat_template")
    if template:
        tok_config["chat_template"] = template
    return tok_config, special


def convert(gguf_path, out_dir, dtype="F32"):
    """Writes the HF checkpoint of `gguf_path` into `out_dir`; returns its config."""
    if dtype not in ("F32", "BF16"):
        raise ValueError(f"dtype {dtype!r}: F32 or BF16")
    reader = gguf.GGUFReader(gguf_path)
    config = read_config(reader, {t.name for t in reader.tensors})
    config["torch_dtype"] = {"F32": "float32", "BF16": "bfloat16"}[dtype]
    tensors = read_tensors(reader, config, dtype)
    check_shapes(tensors, config)

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.safetensors")
    if dtype == "F32":
        save_file(tensors, path, metadata={"format": "pt"})
    else:
        _save_bf16(tensors, path)
    _write_json(out_dir, "config.json", config)
    generation = {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")
                  if k in config}
    _write_json(out_dir, "generation_config.json", generation)

    tokenizer = gguf_tokenizer.build_tokenizer(reader)
    tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    tok_config, special = tokenizer_files(reader, tokenizer, config)
    _write_json(out_dir, "tokenizer_config.json", tok_config)
    _write_json(out_dir, "special_tokens_map.json", special)
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", help="the .gguf file (general.architecture llama)")
    parser.add_argument("out_dir", help="directory for the HF checkpoint (created)")
    parser.add_argument("--dtype", choices=("F32", "BF16"), default="F32",
                        help="tensor type of model.safetensors (default F32)")
    args = parser.parse_args()
    config = convert(args.gguf, args.out_dir, args.dtype)
    print(f"gguf_to_hf: {args.out_dir}: {config['num_hidden_layers']} layers, hidden "
          f"{config['hidden_size']}, vocab {config['vocab_size']}, {args.dtype}")


if __name__ == "__main__":
    main()
