#!/usr/bin/env python3
"""Independent reference ids for the LLaMA-3 tiktoken tokenizer (lib/tokenizer tests).

Uses only the tokenizer.model file (base64 token + rank per line) and Python's `regex` module
(Debian: python3-regex), implementing the published algorithm: split the text with Meta's
LLaMA-3 pre-tokenizer pattern, then encode each piece by byte-pair merging, always merging the
adjacent pair whose concatenation has the lowest rank (leftmost first on ties); a piece that is
itself in the ranks is one token. Special tokens in the text are not parsed (Meta's encode with
allowed_special=set(), disallowed_special=()).

Usage: scripts/tokenizer_llama3_ref.py DATA_DIR OUT_JSON
  DATA_DIR holds tokenizers/llama3/tokenizer.model and text/wikitext2/wikitext2_test_joined_crlf.txt.
"""
import base64
import hashlib
import json
import os
import sys

import regex

PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

CASES = [
    "",
    "Hello, world!",
    "hello world",
    " leading space",
    "trailing space ",
    "  two leading spaces",
    "multiple   internal    spaces",
    "   ",
    "a",
    "line1\nline2",
    "I'm sure they're fine; we'll see, it's John's and I'd've DON'T YOU'RE 'S 'ſ",
    "The year 1234567 and 3.14159, 12 345, ٣٤٥ and Ⅻ",
    "tabs\tand\t\ttabs",
    "a  \n\n  b\r\n\r\nc \n d",
    "ends with newlines\n\n\n",
    "   \n  x",
    "!!!???...\n\nok",
    "naïve café résumé Ölçü",
    "中文分词测试，你好世界！",
    "日本語のテキストです。",
    "Привет, мир! Ελληνικά",
    "नमस्ते दुनिया",
    "emoji 👍🏽 and 👨‍👩‍👧‍👦 family 🎉🎉",
    "<|begin_of_text|>hello<|eot_id|> <|start_header_id|>user<|end_header_id|>",
    "def f(x):\n    return x**2  # comment\n",
    "          ten spaces then text",
    "mixed ABCdef123ghi456",
    "URL https://example.com/a_b?c=d&e=f#g",
    "\u00a0non-breaking\u00a0spaces\u3000ideographic",
    "x" * 300,
]


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def bpe(ranks, piece):
    if piece in ranks:
        return [ranks[piece]]
    parts = [bytes([b]) for b in piece]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


def encode(ranks, pat, text):
    ids = []
    for m in pat.finditer(text):
        ids.extend(bpe(ranks, m.group().encode("utf-8")))
    return ids


def main():
    data, out = sys.argv[1], sys.argv[2]
    model = os.path.join(data, "tokenizers/llama3/tokenizer.model")
    ranks = load_ranks(model)
    assert len(ranks) == 128000, len(ranks)
    pat = regex.compile(PATTERN)
    cases = []
    for text in CASES:
        pieces = [m.group() for m in pat.finditer(text)]
        cases.append({"input": text, "pretokens": pieces, "ids": encode(ranks, pat, text)})
    wiki_path = os.path.join(data, "text/wikitext2/wikitext2_test_joined_crlf.txt")
    with open(wiki_path, "rb") as f:
        wiki = f.read().replace(b"\r\n", b"\n").decode("utf-8")
    wiki_ids = encode(ranks, pat, wiki)
    with open(model, "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()
    result = {
        "description": "LLaMA-3 tiktoken reference ids from scripts/tokenizer_llama3_ref.py "
                       "(Python regex %s + BPE by rank over the tokenizer.model file; no BOS)" % regex.__version__,
        "tokenizer_model_sha256": model_sha,
        "pattern": PATTERN,
        "cases": cases,
        "wikitext2_test": {
            "file": "text/wikitext2/wikitext2_test_joined_crlf.txt with CRLF replaced by LF",
            "num_ids": len(wiki_ids),
            "first_ids": wiki_ids[:64],
            "ids_sha256": hashlib.sha256(",".join(map(str, wiki_ids)).encode()).hexdigest(),
        },
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
