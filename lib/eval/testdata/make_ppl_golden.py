#!/usr/bin/env python3
"""Writes ppl_golden.json: perplexities of the random tiny LLaMA in $LLMPRUNER_GOLDEN/tiny-llama-mha
on prefixes of the WikiText-2 test and PTB validation evaluation strings, computed with PyTorch by
LLM-Pruner's own protocol (ppl_dataset.process_data + evaluator/ppl.llama_eval, transliterated):
the text tokenized once with BOS, non-overlapping seq_len windows, tail dropped, batches of 4,
CrossEntropyLoss(reduction="none") on shifted logits, exp of the mean.

The model is a plain PyTorch LLaMA in Hugging Face conventions (rotate_half RoPE, float32), weights
read from model.safetensors with numpy; the tokenizer is the SentencePiece library.

Run: LLMPRUNER_DATA=../shared/data /usr/bin/python3 lib/eval/testdata/make_ppl_golden.py
(Debian python3-torch, python3-sentencepiece, python3-numpy).
"""
import json
import math
import os
import struct

import numpy as np
import sentencepiece as spm
import torch

DATA = os.environ["LLMPRUNER_DATA"]
GOLDEN = os.environ.get("LLMPRUNER_GOLDEN", os.path.join(os.path.dirname(os.path.normpath(DATA)), "golden"))
MODEL = os.path.join(GOLDEN, "tiny-llama-mha")
PREFIX_BYTES = 8000  # evaluation texts are cut to this many bytes (at a character boundary)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info["dtype"]
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(info["shape"]).copy())
    return out


class Llama:
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.H = cfg["num_attention_heads"]
        self.KV = cfg["num_key_value_heads"]
        self.D = cfg["hidden_size"] // self.H
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, self.D, 2, dtype=torch.float32) / self.D))

    def norm(self, x, name):
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.cfg["rms_norm_eps"]) * self.w[name]

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def logits(self, ids):  # ids [B, S] -> [B, S, V]
        w, B, S = self.w, ids.shape[0], ids.shape[1]
        x = w["model.embed_tokens.weight"][ids]
        freqs = torch.outer(torch.arange(S, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((S, S), float("-inf")).triu(1)
        for l in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = self.norm(x, p + "input_layernorm.weight")
            q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, S, self.H, self.D).transpose(1, 2)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, S, self.KV, self.D).transpose(1, 2)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, S, self.KV, self.D).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            rep = self.H // self.KV
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.D) + mask, dim=-1)
            o = (att @ v).transpose(1, 2).reshape(B, S, self.H * self.D)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = self.norm(x, p + "post_attention_layernorm.weight")
            gate = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
            x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        x = self.norm(x, "model.norm.weight")
        return x @ w["lm_head.weight"].T


def ppl(model, sp, text, seq_len, batch_size=4):
    ids = torch.tensor([sp.bos_id()] + sp.encode(text))
    n = ids.numel() // seq_len
    windows = torch.stack([ids[i * seq_len:(i + 1) * seq_len] for i in range(n)])
    nlls = []
    with torch.no_grad():
        for b in range(0, n, batch_size):
            batch = windows[b:b + batch_size]
            logits = model.logits(batch)
            shift_logits, shift_labels = logits[:, :-1, :], batch[:, 1:]
            loss = torch.nn.CrossEntropyLoss(reduction="none")(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1))
            nlls.append(loss)
    nll = torch.cat(nlls).double().mean().item()
    return {"tokens_in_stream": ids.numel(), "windows": n, "predicted": n * (seq_len - 1), "nll": nll, "ppl": math.exp(nll)}


def prefix(text, n):
    return text.encode("utf-8")[:n].decode("utf-8", errors="ignore")


def main():
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    model = Llama(cfg, read_safetensors(os.path.join(MODEL, "model.safetensors")))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(MODEL, "tokenizer.model"))
    wiki = open(os.path.join(DATA, "text/wikitext2/wikitext2_test_joined_crlf.txt"), "rb").read().decode().replace("\r\n", "\n")
    with open(os.path.join(DATA, "text/ptb/ptb.valid.txt"), encoding="utf-8") as f:
        ptb = "\n\n".join(line.strip() for line in f)
    cases = []
    for name, text in [("wikitext2", wiki), ("ptb", ptb)]:
        for seq_len in (128, 64):
            r = ppl(model, sp, prefix(text, PREFIX_BYTES), seq_len)
            r.update({"set": name, "prefix_bytes": PREFIX_BYTES, "seq_len": seq_len})
            cases.append(r)
            print(r)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ppl_golden.json")
    with open(path, "w") as f:
        json.dump({"model": "tiny-llama-mha", "torch": torch.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


main()
