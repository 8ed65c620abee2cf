#!/usr/bin/env python3
"""Reference ids for lib/tokenizer's SentencePiece encoder from the SentencePiece library itself
(Debian: python3-sentencepiece), with the LLaMA-2 tokenizer.model: extra strings beyond
../shared/golden/tokenizer_llama2.json, and the whole WikiText-2 test text (as LLM-Pruner's
perplexity tokenizes it: one string) summarised by id count, first ids and a hash.

Usage: scripts/tokenizer_sp_ref.py DATA_DIR OUT_JSON
"""
import hashlib
import json
import os
import sys

import sentencepiece as spm

CASES = [
    "Hello\tworld\r\nagain",
    "naïve café résumé Ölçü",
    "中文分词测试，你好世界！",
    "emoji 👍🏽 and 👨‍👩‍👧‍👦 family 🎉🎉",
    "literal <s> and </s> and <unk> stay text",
    "the ▁ character itself ▁▁",
    "          ten spaces",
    "I'm sure they're fine; 1234567 = 3.14159",
    "def f(x):\n    return x**2\n",
    "\x00\x01 control bytes \x7f",
    "x" * 300,
]


def main():
    data, out = sys.argv[1], sys.argv[2]
    model = os.path.join(data, "tokenizers/llama2/tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=model)
    cases = []
    for text in CASES:
        ids = sp.encode(text)
        cases.append({"input": text, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids],
                      "decoded": sp.decode(ids)})
    with open(os.path.join(data, "text/wikitext2/wikitext2_test_joined_crlf.txt"), "rb") as f:
        wiki = f.read().replace(b"\r\n", b"\n").decode("utf-8")
    ids = sp.encode(wiki)
    with open(model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    result = {
        "description": "SentencePiece %s reference ids for the LLaMA-2 tokenizer.model (no BOS); "
                       "written by scripts/tokenizer_sp_ref.py" % spm.__version__,
        "tokenizer_model_sha256": sha,
        "cases": cases,
        "wikitext2_test": {
            "file": "text/wikitext2/wikitext2_test_joined_crlf.txt with CRLF replaced by LF",
            "num_ids": len(ids),
            "first_ids": ids[:64],
            "ids_sha256": hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest(),
        },
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
