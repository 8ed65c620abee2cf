#!/usr/bin/env python3
"""Independent plain-PyTorch reference of FLAP's pruning computation, for llmpruner's parity test
(lib/prune TestFLAPMatchesReference, TestFLAPFamiliesMatchReference). Written from the FLAP paper (An et al., AAAI 2024) and the
description of its public code in /work/shared/notes/flap-reference.md; it shares no code with
llmpruner.

For a LLaMA-layout model (config.json + model.safetensors: LLaMA, Qwen2 with its q/k/v biases, or
LLaMA with attention_bias / mlp_bias; plain RoPE, no rope_scaling, no active sliding window) or a
ChatGLM-6B (v1) model on plain-text calibration ids (see chatglm_layout) it:
  1. runs the decoder layers one at a time in FLAP's order: each layer sees the dense outputs of the
     previous layer, one calibration sample (batch of 1) at a time, and hooks the inputs of the output
     projections (o_proj and down_proj; ChatGLM: attention.dense and mlp.dense_4h_to_h) into FLAP's
     running statistics (baseline = mean, fluc = FLAP's fluctuation estimator, reproduced literally,
     including its aliased "old" mean);
  2. scores with WIFV: fluc_j * sum_i W[i, j]^2 (o_proj scores squared again);
  3. runs the AL-AM structure search: per-layer standardization (unbiased std), head (GQA: kv-head
     group) score = mean of its channels' standardized scores, heads weighted by their parameter count
     (q/k/v/o weights and the q/k/v bias elements) over one MLP channel's (LLaMA: gate/up rows, down
     column, gate/up bias elements; ChatGLM: two matrices and one bias element), threshold where the running weight is closest to total*(1-ratio), keep
     when strictly greater;
  4. computes the bias compensation (baseline * removed) @ W^T for the two output projections
     (reported as o_proj_bias / down_proj_bias for every family).
It also reports Wanda-sp's channel scores (mean_i |W[i, j]| * sqrt(mean over samples of sum_t x_j^2))
and ShortGPT's Block Influence of every layer (1 - mean over tokens of cos(layer input, layer output)).
The forward pass is float32 like llmpruner's; the statistics are accumulated in float64.

usage: flap_ref.py MODEL_DIR CALIB_IDS.json RATIO OUT.json
"""
import json
import math
import os
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        buf = bytearray(data[8 + n + a : 8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=DTYPES[e["dtype"]]).reshape(e["shape"]).clone().float()
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Stats:
    """FLAP's per-channel running statistics of one projection input, updated per sample."""

    def __init__(self, c):
        self.n = 0
        self.baseline = torch.zeros(c, dtype=torch.float64)
        self.fluc = torch.zeros(c, dtype=torch.float64)
        self.sumsq = torch.zeros(c, dtype=torch.float64)

    def add(self, x):  # x: [T, C] float32 of one sample
        x = x.double().t()  # [C, T]
        old = self.baseline  # the same tensor: the in-place updates below change it too
        self.baseline *= self.n / (self.n + 1)
        self.baseline += x.mean(dim=1) / (self.n + 1)
        if self.n == 0:
            self.fluc = torch.zeros_like(self.fluc)
        else:
            self.fluc *= (self.n - 1) / self.n
            self.fluc += ((x - self.baseline[:, None]) * (x - old[:, None])).sum(dim=1) / (self.n + 1)
        self.sumsq += x.pow(2).sum(dim=1)
        self.n += 1


def llama_layout(cfg, W, T):
    """Dimensions and decoder layer of a LLaMA-layout model (LLaMA, Qwen2, Mistral)."""
    D, L, H = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    HD = cfg.get("head_dim", D // H)
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    rep = H // KV
    if cfg.get("rope_scaling") or (cfg.get("model_type") == "mistral" and (cfg.get("sliding_window") or T) < T):
        sys.exit("flap_ref.py: rope_scaling and an active sliding window are not implemented")
    qwen2 = cfg.get("model_type") == "qwen2"
    qkv_bias = qwen2 or cfg.get("attention_bias", False)  # Qwen2: q, k, v always; o never
    o_bias = cfg.get("attention_bias", False) and not qwen2
    mlp_bias = cfg.get("mlp_bias", False)

    inv = 1.0 / (theta ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    ang = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, HD]
    causal = torch.full((T, T), float("-inf")).triu(1)

    def p(l, name):
        return W[f"model.layers.{l}.{name}"]

    def linear(l, module, x, bias):  # x @ W^T (+ b)
        y = x @ p(l, module + ".weight").t()
        return y + p(l, module + ".bias") if bias else y

    def layer(l, x):  # -> attention output projection's input, MLP output projection's input, layer output
        h = rms_norm(x, p(l, "input_layernorm.weight"), eps)
        q = linear(l, "self_attn.q_proj", h, qkv_bias).view(T, H, HD).transpose(0, 1)
        k = linear(l, "self_attn.k_proj", h, qkv_bias).view(T, KV, HD).transpose(0, 1)
        v = linear(l, "self_attn.v_proj", h, qkv_bias).view(T, KV, HD).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(rep, dim=0), v.repeat_interleave(rep, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(HD) + causal, dim=-1) @ v  # [H, T, HD]
        a = a.transpose(0, 1).reshape(T, H * HD)
        x = x + linear(l, "self_attn.o_proj", a, o_bias)
        h = rms_norm(x, p(l, "post_attention_layernorm.weight"), eps)
        act = torch.nn.functional.silu(linear(l, "mlp.gate_proj", h, mlp_bias)) * linear(l, "mlp.up_proj", h, mlp_bias)
        return a, act, x + linear(l, "mlp.down_proj", act, mlp_bias)

    # A head group: q rows of its rep query heads, k and v rows, o columns, q/k/v bias elements; an
    # MLP channel: gate and up rows, down column, gate/up bias elements.
    head_params = (2 * rep + 2) * HD * D + ((rep + 2) * HD if qkv_bias else 0)
    mlp_params = 3 * D + (2 if mlp_bias else 0)
    return dict(L=L, H=H, KV=KV, HD=HD, I=cfg["intermediate_size"], embed="model.embed_tokens.weight", layer=layer,
                out=lambda l: (p(l, "self_attn.o_proj.weight"), p(l, "mlp.down_proj.weight")),
                head_weight=head_params / mlp_params)


def chatglm_layout(cfg, W, T):
    """Dimensions and decoder layer of ChatGLM-6B (v1) on plain text (no <sop>, no mask token):
    causal attention, position ids 0, block position ids 1…T (what the text gets after
    "[gMASK] <sop>"); LayerNorm, fused query_key_value laid out per head as [q | k | v], 2D rotary
    (first half of each head at the position id, second half at the block position id, inverse
    frequencies rounded to float16), dense, residual on the *normalized* input times
    alpha = sqrt(2·N) (N = residual_alpha_num_layers, else 28), tanh-GELU MLP."""
    D, L, H = cfg["hidden_size"], cfg["num_layers"], cfg["num_attention_heads"]
    HD = cfg.get("head_dim", D // H)
    eps = cfg["layernorm_epsilon"]
    alpha = math.sqrt(2 * cfg.get("residual_alpha_num_layers", 28))
    half = HD // 2
    inv = (1.0 / (10000 ** (torch.arange(0, half, 2).float() / half))).half().float()

    def rot(x, pos):  # x [T, H, half] at positions pos [T]
        ang = pos.float()[:, None] * inv[None, :]
        emb = torch.cat([ang, ang], dim=-1)[:, None, :]
        x1, x2 = x[..., : half // 2], x[..., half // 2:]
        return x * emb.cos() + torch.cat([-x2, x1], dim=-1) * emb.sin()

    pos, block = torch.zeros(T, dtype=torch.int64), torch.arange(1, T + 1)
    causal = torch.full((T, T), float("-inf")).triu(1)

    def p(l, name):
        return W[f"transformer.layers.{l}.{name}"]

    def ln(l, name, x):
        return torch.nn.functional.layer_norm(x, (D,), p(l, name + ".weight"), p(l, name + ".bias"), eps)

    def linear(l, module, x):
        return x @ p(l, module + ".weight").t() + p(l, module + ".bias")

    def layer(l, x):
        h = ln(l, "input_layernorm", x)
        qkv = linear(l, "attention.query_key_value", h).view(T, H, 3 * HD)
        q, k, v = qkv[..., :HD], qkv[..., HD:2 * HD], qkv[..., 2 * HD:]
        q = torch.cat([rot(q[..., :half], pos), rot(q[..., half:], block)], dim=-1).transpose(0, 1)
        k = torch.cat([rot(k[..., :half], pos), rot(k[..., half:], block)], dim=-1).transpose(0, 1)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(HD) + causal, dim=-1) @ v.transpose(0, 1)  # [H, T, HD]
        a = a.transpose(0, 1).reshape(T, H * HD)
        x = h * alpha + linear(l, "attention.dense", a)
        h = ln(l, "post_attention_layernorm", x)
        act = 0.5 * (m := linear(l, "mlp.dense_h_to_4h", h)) * (1.0 + torch.tanh(0.7978845608028654 * m * (1.0 + 0.044715 * m * m)))
        return a, act, h * alpha + linear(l, "mlp.dense_4h_to_h", act)

    # A head: its q, k, v rows and dense columns, its query_key_value bias elements; an MLP channel:
    # its dense_h_to_4h row and bias element, its dense_4h_to_h column.
    return dict(L=L, H=H, KV=H, HD=HD, I=cfg["inner_hidden_size"], embed="transformer.word_embeddings.weight", layer=layer,
                out=lambda l: (p(l, "attention.dense.weight"), p(l, "mlp.dense_4h_to_h.weight")),
                head_weight=(4 * HD * D + 3 * HD) / (2 * D + 1))


def main():
    model_dir, calib_path, ratio, out_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    calib = json.load(open(calib_path))
    T = len(calib[0])
    f = (chatglm_layout if cfg.get("model_type") == "chatglm" else llama_layout)(cfg, W, T)
    L, H, KV, HD, I = f["L"], f["H"], f["KV"], f["HD"], f["I"]
    rep = H // KV

    inps = [W[f["embed"]][torch.tensor(ids)] for ids in calib]  # each [T, D]
    attn_stats, mlp_stats, block_influence = [], [], []
    for l in range(L):
        sa, sm = Stats(H * HD), Stats(I)
        outs = []
        for x in inps:  # one sample at a time, in order
            a, act, out = f["layer"](l, x)
            sa.add(a)
            sm.add(act)
            outs.append(out)
        attn_stats.append(sa)
        mlp_stats.append(sm)
        cosim = torch.cat([torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1) for a, b in zip(inps, outs)])
        block_influence.append(1 - cosim.mean().item())
        inps = outs  # the dense outputs feed the next layer

    def std(x):
        return (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True)  # unbiased, as torch.std

    attn_metric, mlp_metric, wanda_attn, wanda_mlp = [], [], [], []
    N = len(calib)
    for l in range(L):
        wo, wd = (w.double() for w in f["out"](l))
        attn_metric.append((attn_stats[l].fluc * wo.pow(2).sum(dim=0)) ** 2)
        mlp_metric.append(mlp_stats[l].fluc * wd.pow(2).sum(dim=0))
        wanda_attn.append((wo.abs() * torch.sqrt(attn_stats[l].sumsq / N)[None, :]).mean(dim=0))
        wanda_mlp.append((wd.abs() * torch.sqrt(mlp_stats[l].sumsq / N)[None, :]).mean(dim=0))
    attn = std(torch.stack(attn_metric)).reshape(L, KV, rep * HD).mean(dim=2)  # [L, KV]
    mlp = std(torch.stack(mlp_metric))  # [L, I]

    head_weight = f["head_weight"]
    scores = torch.cat([attn.reshape(-1), mlp.reshape(-1)])
    weights = torch.cat([torch.full((attn.numel(),), head_weight, dtype=torch.float64), torch.ones(mlp.numel(), dtype=torch.float64)])
    order = torch.sort(scores, descending=True, stable=True).indices
    cum = torch.cumsum(weights[order], 0)
    thr = scores[order][torch.argmin(torch.abs(cum - weights.sum() * (1 - ratio)))]
    attn_keep, mlp_keep = attn > thr, mlp > thr

    layers = []
    for l in range(L):
        ch_keep = attn_keep[l].repeat_interleave(rep * HD)
        wo, wd = (w.double() for w in f["out"](l))
        layers.append({
            "layer": l,
            "kv_heads_kept": torch.nonzero(attn_keep[l]).flatten().tolist(),
            "mlp_channels_kept": torch.nonzero(mlp_keep[l]).flatten().tolist(),
            "o_proj_bias": ((attn_stats[l].baseline * ~ch_keep) @ wo.t()).tolist(),
            "down_proj_bias": ((mlp_stats[l].baseline * ~mlp_keep[l]) @ wd.t()).tolist(),
            "head_scores": attn[l].tolist(),
            "mlp_scores": mlp[l].tolist(),
            "wanda_head_scores": wanda_attn[l].reshape(KV, rep * HD).sum(dim=1).tolist(),
            "wanda_mlp_scores": wanda_mlp[l].tolist(),
        })
    json.dump({"threshold": thr.item(), "layers": layers, "block_influence": block_influence}, open(out_path, "w"))


if __name__ == "__main__":
    main()
