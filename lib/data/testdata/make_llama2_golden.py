#!/usr/bin/env python3
"""Writes llama2_golden.json: reference tokenizations made with the SentencePiece library
(Debian python3-sentencepiece) and the LLaMA-2 tokenizer.model from $LLMPRUNER_DATA, following
LLM-Pruner's Python code step by step:

- eval texts: `tokenizer("\\n\\n".join(rows)).input_ids` = [BOS] + sp.encode(text) for WikiText-2
  test (rows from the HF-joined file, CRLF->LF) and PTB valid/test (rows = stripped lines);
- Alpaca: post_training.py's generate_and_tokenize_prompt (Alpaca-LoRA template, truncation to
  cutoff_len, EOS appended under the cutoff, user-prompt tokens masked with -100).

Run: LLMPRUNER_DATA=../shared/data /usr/bin/python3 lib/data/testdata/make_llama2_golden.py
"""
import hashlib
import json
import os

import sentencepiece as spm

DATA = os.environ["LLMPRUNER_DATA"]
sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "tokenizers/llama2/tokenizer.model"))
BOS, EOS = sp.bos_id(), sp.eos_id()


def hf_tokenize(text, max_length=None):
    ids = [BOS] + sp.encode(text)
    return ids[:max_length] if max_length else ids


def ids_digest(ids):
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()


def eval_entry(text):
    ids = hf_tokenize(text)
    return {"bytes": len(text.encode()), "tokens": len(ids), "head": ids[:16], "tail": ids[-16:],
            "sha256_ids": ids_digest(ids)}


def wikitext2():
    raw = open(os.path.join(DATA, "text/wikitext2/wikitext2_test_joined_crlf.txt"), "rb").read()
    return raw.decode("utf-8").replace("\r\n", "\n")


def ptb(name):
    with open(os.path.join(DATA, "text/ptb", name), encoding="utf-8") as f:
        rows = [line.strip() for line in f]  # HF ptb_text_only: one row per line, stripped
    return "\n\n".join(rows)


PROMPT_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
                "{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def prompt(rec, with_output):
    if rec["input"]:
        res = PROMPT_INPUT.format(instruction=rec["instruction"], input=rec["input"])
    else:
        res = PROMPT_NO_INPUT.format(instruction=rec["instruction"])
    if with_output and rec["output"]:
        res += rec["output"]
    return res


def tokenize(text, cutoff, add_eos):
    ids = hf_tokenize(text, cutoff)
    if ids[-1] != EOS and len(ids) < cutoff and add_eos:
        ids.append(EOS)
    return ids


def generate_and_tokenize(rec, cutoff, train_on_inputs):
    ids = tokenize(prompt(rec, True), cutoff, True)
    labels = list(ids)
    if not train_on_inputs:
        n = len(tokenize(prompt(rec, False), cutoff, False))
        labels = [-100] * n + labels[n:]
    return {"ids": ids, "labels": labels}


def main():
    recs = json.load(open(os.path.join(DATA, "text/alpaca/alpaca_cleaned_first5000.json")))
    picked = [0, 1, 2, 3, 5, 8, 13, 21]  # a few records with and without input
    alpaca = []
    for i in picked:
        for cutoff, train_on_inputs in [(256, False), (256, True), (64, False)]:
            entry = generate_and_tokenize(recs[i], cutoff, train_on_inputs)
            # When the prompt fills the cutoff the original trains on nothing; llmpruner reports an error.
            entry["prompt_too_long"] = all(l == -100 for l in entry["labels"])
            entry.update({"record": i, "cutoff": cutoff, "train_on_inputs": train_on_inputs})
            alpaca.append(entry)
    out = {
        "tokenizer": "tokenizers/llama2/tokenizer.model",
        "sentencepiece_version": spm.__version__,
        "bos": BOS, "eos": EOS,
        "eval": {"wikitext2": eval_entry(wikitext2()), "ptb_valid": eval_entry(ptb("ptb.valid.txt")),
                 "ptb_test": eval_entry(ptb("ptb.test.txt"))},
        "alpaca": alpaca,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llama2_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(path, {k: v["tokens"] for k, v in out["eval"].items()}, len(alpaca), "alpaca cases")


main()
