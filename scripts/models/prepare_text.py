"""Calibration and evaluation token files from the Python 3.11 documentation.

The text is the reStructuredText sources of Debian's python3.11-doc
(html/_sources/**/*.rst.txt): real English prose with some code, under the
PSF licence. Documents are split disjointly by directory, so no evaluation
text is ever seen in calibration:

  evaluation   tutorial/ and howto/  (prose-heavy guides, ~1 MB)
  calibration  library/              (the module reference, ~7 MB)

Each document is tokenized on its own (no BOS: SmolLM2 adds none) and cut
into non-overlapping windows of SEQ_LEN tokens from its start (the tail
shorter than a window is dropped, so no window straddles two documents).
Of all windows of a set, in path order, N are taken evenly spread: window
floor((i + 1/2) * M / N) for i < N, M windows in all. Nothing is random.

Writes glvq token files (one sequence per line, ids separated by single
spaces, '#' comment lines). A file whose `# params:` line already matches
is left alone, so a second run costs nothing.

    python prepare_text.py --sources .../html/_sources --tokenizer tokenizer.json \
        --out-dir DIR [--calib-seqs 64] [--eval-seqs 32] [--seq-len 512] [--source-name NAME]
"""

import argparse
import os
import sys

from tokenizers import Tokenizer

SETS = {
    "calib": ("calibration", ("library",)),
    "eval": ("evaluation", ("tutorial", "howto")),
}


def documents(sources, dirs):
    """(relative path, text) of every *.rst.txt under sources/dir, sorted by path."""
    paths = []
    for d in dirs:
        for root, _, files in os.walk(os.path.join(sources, d)):
            paths += [os.path.join(root, f) for f in files if f.endswith(".rst.txt")]
    for path in sorted(paths):
        with open(path, encoding="utf-8") as f:
            yield os.path.relpath(path, sources), f.read()


def check_tokenizer(tok):
    """Every special added token (<|im_start|>, ...) encodes to its own single id."""
    for token_id, added in tok.get_added_tokens_decoder().items():
        ids = tok.encode(added.content).ids
        if ids != [token_id]:
            raise AssertionError(f"{added.content!r} encodes to {ids}, not [{token_id}]")


def tokenize(tok, docs):
    """The ids of each document; fails unless decoding gives the text back exactly."""
    encoded = []
    for path, text in docs:
        ids = tok.encode(text).ids
        if tok.decode(ids, skip_special_tokens=False) != text:
            raise AssertionError(f"{path}: decode(encode(text)) differs from the text")
        encoded.append(ids)
    return encoded


def windows(encoded, seq_len):
    """All non-overlapping seq_len windows, each inside one document, in order."""
    return [ids[start:start + seq_len] for ids in encoded
            for start in range(0, len(ids) - seq_len + 1, seq_len)]


def spread(items, n):
    """n of the items, evenly spaced (the middle of each of n equal stretches)."""
    if n > len(items):
        raise ValueError(f"only {len(items)} windows available, {n} asked for")
    return [items[(2 * i + 1) * len(items) // (2 * n)] for i in range(n)]


def params_line(name, seqs, seq_len, source):
    return f"# params: set={name} seqs={seqs} seq_len={seq_len} source={source}\n"


def up_to_date(path, params):
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        return params in f.readlines()[:8]


def write_tokens(path, header, seqs):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"# {line}\n" for line in header[:-1])
        f.write(header[-1])
        for seq in seqs:
            f.write(" ".join(map(str, seq)) + "\n")
    os.replace(tmp, path)  # never leave a half-written file that looks complete


def prepare_set(tok, args, key, seqs):
    label, dirs = SETS[key]
    path = os.path.join(args.out_dir, f"{key}.tokens")
    params = params_line(label, seqs, args.seq_len, args.source_name)
    if up_to_date(path, params):
        print(f"prepare_text: {path} is up to date ({seqs} x {args.seq_len} tokens)")
        return
    docs = list(documents(args.sources, dirs))
    encoded = tokenize(tok, docs)
    all_windows = windows(encoded, args.seq_len)
    chosen = spread(all_windows, seqs)
    total = sum(map(len, encoded))
    header = [
        f"glvq token file: {label} text for the model whose tokenizer.json is beside it",
        f"source: {args.source_name}, html/_sources/{{{','.join(dirs)}}}/**/*.rst.txt",
        f"{len(docs)} documents, {total} tokens, decode(encode(text)) == text for each; no BOS",
        f"{seqs} sequences x {args.seq_len} tokens: windows inside one document, taken evenly "
        f"spread from all {len(all_windows)} (deterministic, no seed); see prepare_text.py",
        params,
    ]
    write_tokens(path, header, chosen)
    print(f"prepare_text: {path}: {seqs} x {args.seq_len} tokens "
          f"from {len(docs)} documents ({total} tokens, round trip exact)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", required=True, help="the html/_sources directory")
    parser.add_argument("--tokenizer", required=True, help="tokenizer.json")
    parser.add_argument("--out-dir", required=True, help="where calib.tokens and eval.tokens go")
    parser.add_argument("--calib-seqs", type=int, default=64)
    parser.add_argument("--eval-seqs", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--source-name", default="python3.11-doc",
                        help="what the comments name as the source (the .deb file)")
    args = parser.parse_args()
    if min(args.calib_seqs, args.eval_seqs, args.seq_len) < 1:
        parser.error("sequence counts and length must be positive")
    tok = Tokenizer.from_file(args.tokenizer)
    check_tokenizer(tok)
    prepare_set(tok, args, "calib", args.calib_seqs)
    prepare_set(tok, args, "eval", args.eval_seqs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
