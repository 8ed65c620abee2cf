#!/usr/bin/env python3
"""PyTorch CPU reference job for lib/importance BenchmarkTaylor7BShaped: first-order Taylor
importance (param_first, sum reduction) of every attention head and MLP channel of a LLaMA
checkpoint in Hugging Face layout (config.json + model.safetensors or shards), in float32:

    load the weights -> forward over N x T random tokens -> next-token loss -> backward
    (gradients of the decoder-layer weights only, as the Go job) -> sum |W * G| per group

and prints the wall time of the whole job and the peak RSS:

    RESULT seconds=... peak=...

    python3 scripts/bench_torch_taylor.py --model DIR [--samples 2] [--seq 64] [--threads N]

Safetensors files are parsed here (8-byte header length, JSON header, raw little-endian data), so
only torch and numpy are needed. Debian's python3-torch needs libopenblas0-pthread to be fast (see
bench_torch_layer.py).
"""
import argparse
import json
import os
import resource
import struct
import time

import numpy as np
import torch

DTYPES = {"F32": (np.float32, None), "BF16": (np.int16, torch.bfloat16), "F16": (np.float16, None)}


def read_safetensors(path, want):
    """Returns {name: float32 tensor} for the names of want found in the file."""
    out = {}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        for name, h in header.items():
            if name == "__metadata__" or name not in want:
                continue
            b, e = h["data_offsets"]
            np_dt, torch_view = DTYPES[h["dtype"]]
            arr = np.empty(tuple(h["shape"]), dtype=np_dt)
            f.seek(base + b)
            f.readinto(memoryview(arr).cast("B"))
            t = torch.from_numpy(arr)
            if torch_view is not None:
                t = t.view(torch_view)
            out[name] = t.float() if t.dtype != torch.float32 else t
    return out


def load(model_dir, names):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(model_dir, f), names))
    return w


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    D, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    HD = cfg.get("head_dim", D // H)
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    proj = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    layer_names = [f"model.layers.{l}.{p}.weight" for l in range(L) for p in proj + ["input_layernorm", "post_attention_layernorm"]]
    names = set(layer_names) | {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    w = load(a.model, names)
    if "lm_head.weight" not in w:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    for n in layer_names:
        w[n].requires_grad_()

    g = torch.Generator().manual_seed(3)
    B, S = a.samples, a.seq
    tokens = torch.randint(0, V, (B, S), generator=g)
    inv = 1.0 / (theta ** (torch.arange(0, HD, 2).float() / HD))
    ang = torch.arange(S).float()[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    mask = torch.full((S, S), float("-inf")).triu(1)

    x = w["model.embed_tokens.weight"][tokens]
    for l in range(L):
        p = lambda n: w[f"model.layers.{l}.{n}.weight"]
        h = rms(x, p("input_layernorm"), eps)
        q = (h @ p("self_attn.q_proj").T).view(B, S, H, HD).transpose(1, 2)
        k = (h @ p("self_attn.k_proj").T).view(B, S, KV, HD).transpose(1, 2)
        v = (h @ p("self_attn.v_proj").T).view(B, S, KV, HD).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        att = (q @ k.transpose(-1, -2)) / HD ** 0.5 + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, S, H * HD)
        x = x + o @ p("self_attn.o_proj").T
        h = rms(x, p("post_attention_layernorm"), eps)
        x = x + (torch.nn.functional.silu(h @ p("mlp.gate_proj").T) * (h @ p("mlp.up_proj").T)) @ p("mlp.down_proj").T
    logits = rms(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
    loss.backward()

    with torch.no_grad():
        for l in range(L):
            s = lambda n: (w[f"model.layers.{l}.{n}.weight"] * w[f"model.layers.{l}.{n}.weight"].grad).abs()
            rows = sum(s(n).sum(1).view(-1, HD).sum(1) for n in ["self_attn.q_proj"])
            kv = sum(s(n).sum(1).view(-1, HD).sum(1) for n in ["self_attn.k_proj", "self_attn.v_proj"])
            heads = rows.view(KV, -1).sum(1) + kv + s("self_attn.o_proj").sum(0).view(KV, -1).sum(1)
            mlp = s("mlp.gate_proj").sum(1) + s("mlp.up_proj").sum(1) + s("mlp.down_proj").sum(0)
            del heads, mlp
            for n in proj:  # free the gradients as the layer is done
                w[f"model.layers.{l}.{n}.weight"].grad = None
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, loss {loss.item():.4f}")
    print(f"RESULT seconds={elapsed:.3f} peak={peak}")


if __name__ == "__main__":
    main()
