"""A Hugging Face `tokenizers` tokenizer rebuilt from a GGUF file's metadata.

llama.cpp's converter stores a byte-level BPE tokenizer as plain arrays:
tokenizer.ggml.tokens (id order), tokenizer.ggml.merges ("left right", rank
order), tokenizer.ggml.token_type and the name of its pre-tokenizer
(tokenizer.ggml.pre). Vocabulary and merges carry over as they are; the
pre-tokenizer is only a name, so it is mapped here to the Hugging Face
pipeline that splits text the way llama.cpp's regexes for that name do.
"""

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

# llama.cpp (llama-vocab.cpp) splits "smollm" text with "\p{N}" first, then
# with GPT-2's regex; the original Hugging Face SmolLM2 tokenizer.json does
# the same with Digits(individual_digits) followed by ByteLevel's built-in
# GPT-2 regex. starcoder, refact and codeshell share that regex list.
_DIGITS_THEN_GPT2 = ("smollm", "starcoder", "refact", "codeshell")
_GPT2 = ("gpt-2", "gpt2")


def metadata(reader, key, default=None):
    """The value of a GGUF metadata key (str, number, bool or list), or default."""
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _byte_level():
    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)


def pre_tokenizer_for(pre):
    if pre in _DIGITS_THEN_GPT2:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        _byte_level()])
    if pre in _GPT2:
        return _byte_level()
    raise NotImplementedError(f"tokenizer.ggml.pre {pre!r}: no known Hugging Face equivalent "
                              f"(supported: {', '.join(_DIGITS_THEN_GPT2 + _GPT2)})")


def _merge_pair(merge):
    # Byte-level symbols never hold a real space (it is "Ġ"), so the one
    # space separates the pair.
    left, sep, right = merge.partition(" ")
    if not sep or not left or not right or " " in right:
        raise ValueError(f"malformed merge {merge!r}")
    return left, right


def _added_tokens(tokens, types, kind):
    return [AddedToken(token, special=kind == gguf.TokenType.CONTROL, normalized=False,
                       lstrip=False, rstrip=False, single_word=False)
            for token, t in zip(tokens, types) if t == kind]


def build_tokenizer(reader):
    """The Tokenizer described by a GGUFReader's tokenizer.ggml.* metadata."""
    model = metadata(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise NotImplementedError(f"tokenizer.ggml.model {model!r}: only byte-level BPE "
                                  "('gpt2') is supported")
    tokens = metadata(reader, "tokenizer.ggml.tokens")
    types = metadata(reader, "tokenizer.ggml.token_type", [gguf.TokenType.NORMAL] * len(tokens))
    merges = [_merge_pair(m) for m in metadata(reader, "tokenizer.ggml.merges", [])]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("tokenizer.ggml.tokens has duplicate tokens")
    # No unk token and no byte fallback: llama.cpp's BPE has neither.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                               fuse_unk=False, byte_fallback=False, ignore_merges=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizer_for(metadata(reader, "tokenizer.ggml.pre", "gpt-2"))
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    # BOS/EOS are added by whoever builds a prompt (tokenizer.ggml.add_bos_token
    # is false for SmolLM2); the processor only fixes up offsets.
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False,
                                              use_regex=True)
    # Control tokens (<|im_start|>, ...) are matched whole in the text, as
    # llama.cpp does with special parsing on, and skipped when decoding with
    # skip_special_tokens; user-defined ones are matched whole but kept.
    tok.add_special_tokens(_added_tokens(tokens, types, gguf.TokenType.CONTROL))
    tok.add_tokens(_added_tokens(tokens, types, gguf.TokenType.USER_DEFINED))
    return tok


def special_token_ids(reader):
    """{'bos': id, 'eos': id, ...} for the special ids the metadata names."""
    ids = {}
    for name in ("bos", "eos", "unknown", "padding"):
        value = metadata(reader, f"tokenizer.ggml.{name}_token_id")
        if value is not None:
            ids[name] = int(value)
    return ids
