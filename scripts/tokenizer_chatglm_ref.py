#!/usr/bin/env python3
"""Independent reference ids for lib/tokenizer's ChatGLM-6B tokenizer.

Re-implements the logic of THUDM's published tokenization_chatglm.py (ChatGLM-6B v1) on top of
the SentencePiece library (Debian: python3-sentencepiece) and the real ice_text.model:
  - preprocess: "\n" -> "<n>", "\t" -> "<|tab|>", runs of spaces -> "<|blank_N|>" replacing
    N = 80 down to 2 (str.replace, longest first);
  - text ids: SentencePiece pieces of the preprocessed text, PieceToId + num_image_tokens
    (num_image_tokens from the released tokenizer_config.json: 0);
  - model inputs: text ids + [gMASK] + <sop> (build_inputs_with_special_tokens);
  - decode(skip_special_tokens=True): drop <pad> and the special tokens (<sop>, <eop>, <unk>,
    <pad>, [MASK]), DecodePieces, then "<n>" -> "\n", "<|tab|>" -> "\t", "<|blank_N|>" -> N spaces
    (HF's clean_up_tokenization_spaces is not applied).

Usage: scripts/tokenizer_chatglm_ref.py DATA_DIR OUT_JSON
"""
import hashlib
import json
import os
import sys

import sentencepiece as spm

MAX_BLANK = 80

CASES = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. I'm sure they're fine.",
    "你好，世界！今天天气怎么样？",
    "ChatGLM-6B 是一个开源的、支持中英双语的对话语言模型。",
    "Mixed 中英文 text with numbers 1234567 and 3.14159",
    "  two leading spaces and two trailing  ",
    "runs:  2   3     5\t1 tab\t\t2 tabs",
    "line1\nline2\n\nline4\r\nline5",
    " " * 81 + "x" + " " * 100 + "y",
    "emoji 👍🏽 and 👨‍👩‍👧‍👦 family 🎉🎉",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ　１２３ and ① ﬁ ㍿",
    "def f(x):\n    return x**2  # comment\n",
    "Ünïcödé çàfé naïve résumé",
    "日本語のテキストです。한국어 텍스트",
]


def main():
    data, out = sys.argv[1], sys.argv[2]
    folder = os.path.join(data, "tokenizers/chatglm-6b")
    model = os.path.join(folder, "ice_text.model")
    with open(os.path.join(folder, "tokenizer_config.json")) as f:
        offset = json.load(f).get("num_image_tokens", 20000)
    sp = spm.SentencePieceProcessor(model_file=model)

    def preprocess(text):
        text = text.replace("\n", "<n>")
        text = text.replace("\t", "<|tab|>")
        for i in range(MAX_BLANK, 1, -1):
            text = text.replace(" " * i, "<|blank_%d|>" % i)
        return text

    def text_ids(text):
        pieces = sp.encode_as_pieces(preprocess(text))
        return [sp.piece_to_id(p) + offset for p in pieces], pieces

    gmask = sp.piece_to_id("[gMASK]") + offset
    sop = sp.piece_to_id("<sop>") + offset
    special = {sp.piece_to_id(t) + offset for t in ["<sop>", "<eop>", "<unk>", "<pad>", "[MASK]"]}

    def decode(ids):
        pieces = [sp.id_to_piece(i - offset) for i in ids if i not in special and i >= offset]
        text = sp.decode_pieces(pieces)
        text = text.replace("<n>", "\n").replace("<|tab|>", "\t")
        for i in range(2, MAX_BLANK + 1):
            text = text.replace("<|blank_%d|>" % i, " " * i)
        return text

    cases = []
    for text in CASES:
        ids, pieces = text_ids(text)
        inputs = ids + [gmask, sop]
        cases.append({"input": text, "ids": ids, "pieces": pieces, "input_ids": inputs,
                      "decoded": decode(inputs)})
    with open(os.path.join(data, "text/wikitext2/wikitext2_test_joined_crlf.txt"), "rb") as f:
        wiki = f.read().replace(b"\r\n", b"\n").decode("utf-8")
    wiki_ids, _ = text_ids(wiki)
    with open(model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    result = {
        "description": "ChatGLM-6B reference ids: THUDM tokenization_chatglm.py logic re-implemented on "
                       "SentencePiece %s (scripts/tokenizer_chatglm_ref.py)" % spm.__version__,
        "ice_text_model_sha256": sha,
        "num_image_tokens": offset,
        "gmask_id": gmask,
        "sop_id": sop,
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
