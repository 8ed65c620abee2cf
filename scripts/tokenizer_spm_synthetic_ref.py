#!/usr/bin/env python3
"""Small SentencePiece models that exercise the options the real LLaMA-2 and ChatGLM files do not,
with reference ids from the SentencePiece library (Debian: python3-sentencepiece, python3-protobuf).

Trains, on text generated here, tiny models:
  bpe_nofallback   BPE, no byte fallback (unknown characters -> one <unk> per run), identity
                   normalizer with remove_extra_whitespaces, no dummy prefix, user-defined symbols,
                   and two merged pieces re-marked UNUSED afterwards (SentencePiece re-splits them);
  unigram_identity unigram, identity normalizer keeping extra spaces, byte fallback, user-defined
                   symbols.
(The NFKC character map is covered by ChatGLM's real ice_text.model.)
"decoded" is the library's decode of the ids without control and unknown ids, which is what HF's
decode(skip_special_tokens=True) hands to SentencePiece.
Writes each model to OUT_DIR/<name>.model and the expected ids/pieces/decoded text for a list of
strings to OUT_DIR/spm_synthetic_reference.json.

Usage: scripts/tokenizer_spm_synthetic_ref.py OUT_DIR
"""
import io
import json
import os
import random
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

WORDS = ("the a of and to in is was for on that with as by at from his her it an were which are "
         "this be also first one new after had who their two has but its or her time they may city "
         "season film game world war river school music team album during new york station church "
         "Ｆｕｌｌ ｗｉｄｔｈ café naïve straße ﬁnal ① ㍿ 東京 大阪 中文 测试").split()

CASES = [
    "",
    "the city of new york",
    "  leading and   internal   spaces and trailing  ",
    "unknown ✓ characters ✓✓ and ∑∫ runs",
    "user symbols <sep> and [CTX] inside<sep>words",
    "Ｆｕｌｌ ｗｉｄｔｈ ﬁnal ① ㍿ café",
    "東京 中文 测试 straße",
    "newlines\nand\ttabs",
    "theseasonfilmgame",
]


def corpus(seed=7, lines=3000):
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        n = rng.randint(3, 12)
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    return out


def train(name, **kw):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus()), model_writer=model,
                                   vocab_size=kw.pop("vocab_size", 200), character_coverage=1.0,
                                   minloglevel=2, **kw)
    return model.getvalue()


def main():
    out = sys.argv[1]
    models = {
        "bpe_nofallback": train("bpe_nofallback", model_type="bpe", normalization_rule_name="identity",
                                remove_extra_whitespaces=True, add_dummy_prefix=False,
                                user_defined_symbols=["<sep>", "[CTX]"]),
        "unigram_identity": train("unigram_identity", model_type="unigram", normalization_rule_name="identity",
                                  byte_fallback=True, remove_extra_whitespaces=False,
                                  user_defined_symbols=["<sep>", "[CTX]"], vocab_size=350),
    }
    # Mark two multi-character merged pieces of the BPE model UNUSED.
    m = pb.ModelProto()
    m.ParseFromString(models["bpe_nofallback"])
    marked = []
    for p in m.pieces:
        if p.type == pb.ModelProto.SentencePiece.NORMAL and len(p.piece) >= 3 and p.piece.startswith("\u2581") and len(marked) < 2:
            if p.piece in ("\u2581the", "\u2581city", "the", "city"):
                p.type = pb.ModelProto.SentencePiece.UNUSED
                marked.append(p.piece)
    models["bpe_nofallback"] = m.SerializeToString()

    result = {"description": "Synthetic SentencePiece models trained by scripts/tokenizer_spm_synthetic_ref.py "
                             "(sentencepiece %s); ids from the library" % spm.__version__,
              "unused_pieces_in_bpe_nofallback": marked, "models": {}}
    for name, blob in models.items():
        with open(os.path.join(out, name + ".model"), "wb") as f:
            f.write(blob)
        sp = spm.SentencePieceProcessor(model_proto=blob)
        cases = []
        for text in CASES:
            ids = sp.encode(text)
            cases.append({"input": text, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids],
                          "decoded": sp.decode([i for i in ids if not sp.is_control(i) and not sp.is_unknown(i)])})
        result["models"][name] = {"file": name + ".model", "vocab_size": sp.get_piece_size(), "cases": cases}
    with open(os.path.join(out, "spm_synthetic_reference.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
