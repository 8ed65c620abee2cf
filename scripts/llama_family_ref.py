#!/usr/bin/env python3
"""Independent PyTorch reference of the LLaMA-layout families llmpruner adds (Qwen2, Mistral,
Llama-3.2) for its tests, on tiny random checkpoints this script writes.

Written in plain torch from the published architectures (Hugging Face's modeling_qwen2.py,
modeling_mistral.py and modeling_llama.py read as descriptions, not imported or copied), computed in
float64: token embeddings; per layer RMSNorm → q/k/v projections (Qwen2: with biases, o without)
→ RoPE (rotate_half; inverse frequencies theta^(-2i/hd), Llama-3's "llama3" rope_scaling applied to
them) → grouped-query attention (each key/value head read by n_rep consecutive query heads), causal,
and for Mistral only keys j with i − j < sliding_window → o_proj → residual; RMSNorm → SiLU(gate)·up
→ down → residual; final RMSNorm; lm_head or, when tied, the embedding matrix.

Run with Debian's python3-torch:  /usr/bin/python3 scripts/llama_family_ref.py lib/models/testdata
It writes qwen2_tiny/, mistral_tiny/ and llama32_tiny/ (config.json, model.safetensors in float32,
expected.json: logits of a few prompts, greedy continuations, and first-order Taylor scores of every
head group and MLP channel from autograd).
"""
import json
import math
import os
import struct
import sys

import torch

BASE = {"hidden_act": "silu", "rms_norm_eps": 1e-6, "torch_dtype": "float32", "initializer_range": 0.02}

FAMILIES = {
    # Qwen2: GQA 8/2, q/k/v biases, tied embeddings, rope_theta 1e6; its sliding-window fields are
    # inactive (use_sliding_window false), as in the released configs.
    "qwen2_tiny": dict(BASE, architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=64,
                       intermediate_size=96, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                       vocab_size=200, max_position_embeddings=64, rope_theta=1000000.0, tie_word_embeddings=True,
                       use_sliding_window=False, sliding_window=64, max_window_layers=2, bos_token_id=198,
                       eos_token_id=199),
    # Mistral: GQA 4/2, a sliding window of 6 positions so that the test prompts reach past it.
    "mistral_tiny": dict(BASE, architectures=["MistralForCausalLM"], model_type="mistral", hidden_size=48,
                         intermediate_size=80, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         vocab_size=150, max_position_embeddings=64, rope_theta=10000.0, sliding_window=6,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-5),
    # Llama-3.2: GQA 4/1, explicit head_dim, tied embeddings, llama3 rope scaling.
    "llama32_tiny": dict(BASE, architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=64,
                         intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                         head_dim=16, vocab_size=180, max_position_embeddings=64, rope_theta=500000.0,
                         rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                       "original_max_position_embeddings": 16, "rope_type": "llama3"},
                         tie_word_embeddings=True, attention_bias=False, mlp_bias=False, bos_token_id=178,
                         eos_token_id=179, rms_norm_eps=1e-5),
}


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def make_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    D, F, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    qkv_bias = c["model_type"] == "qwen2"

    def rnd(*shape, std=0.08):
        return torch.randn(*shape, generator=g) * std

    w = {"model.embed_tokens.weight": rnd(V, D, std=0.15), "model.norm.weight": 1 + rnd(D, std=0.1)}
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = rnd(V, D, std=0.2)
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + rnd(D, std=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + rnd(D, std=0.1)
        w[p + "self_attn.q_proj.weight"] = rnd(H * hd, D, std=0.15)
        w[p + "self_attn.k_proj.weight"] = rnd(KV * hd, D, std=0.15)
        w[p + "self_attn.v_proj.weight"] = rnd(KV * hd, D)
        w[p + "self_attn.o_proj.weight"] = rnd(D, H * hd)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = rnd(H * hd, std=0.3)
            w[p + "self_attn.k_proj.bias"] = rnd(KV * hd, std=0.3)
            w[p + "self_attn.v_proj.bias"] = rnd(KV * hd, std=0.1)
        w[p + "mlp.gate_proj.weight"] = rnd(F, D, std=0.12)
        w[p + "mlp.up_proj.weight"] = rnd(F, D, std=0.12)
        w[p + "mlp.down_proj.weight"] = rnd(D, F)
    return w


def inv_freq(c):
    hd = head_dim(c)
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = c.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        old, low, high, factor = rs["original_max_position_embeddings"], rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
        out = []
        for f in inv.tolist():
            wavelen = 2 * math.pi / f
            if wavelen < old / high:
                out.append(f)
            elif wavelen > old / low:
                out.append(f / factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                out.append((1 - smooth) * f / factor + smooth * f)
        inv = torch.tensor(out, dtype=torch.float64)
    return inv


def rope(x, pos, inv):
    """rotate_half RoPE of x [S, H, hd] at positions pos [S]."""
    ang = pos.double()[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)[:, None, :]
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * emb.cos() + rot * emb.sin()


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(c, w, ids):
    """Logits [S, V] of one sequence, float64."""
    f = {k: v.double() if not v.requires_grad else v for k, v in w.items()}
    D, L, H, KV, hd = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    eps, S = c["rms_norm_eps"], len(ids)
    pos = torch.arange(S)
    inv = inv_freq(c)
    allowed = pos[None, :] <= pos[:, None]
    if c["model_type"] == "mistral":
        allowed &= (pos[:, None] - pos[None, :]) < c["sliding_window"]
    x = f["model.embed_tokens.weight"][torch.tensor(ids)]
    for l in range(L):
        p = f"model.layers.{l}."

        def lin(h, name):
            y = h @ f[p + name + ".weight"].T
            return y + f[p + name + ".bias"] if p + name + ".bias" in f else y

        h = rms_norm(x, f[p + "input_layernorm.weight"], eps)
        q = rope(lin(h, "self_attn.q_proj").view(S, H, hd), pos, inv)
        k = rope(lin(h, "self_attn.k_proj").view(S, KV, hd), pos, inv)
        v = lin(h, "self_attn.v_proj").view(S, KV, hd)
        rep = H // KV
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        scores = scores.masked_fill(~allowed[None], float("-inf"))
        ctx = torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v).reshape(S, H * hd)
        x = x + lin(ctx, "self_attn.o_proj")
        h = rms_norm(x, f[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(torch.nn.functional.silu(lin(h, "mlp.gate_proj")) * lin(h, "mlp.up_proj"), "mlp.down_proj")
    x = rms_norm(x, f["model.norm.weight"], eps)
    head = f["model.embed_tokens.weight"] if c["tie_word_embeddings"] else f["lm_head.weight"]
    return x @ head.T


def taylor_scores(c, w, rows):
    """First-order Taylor importance (LLM-Pruner's param_first, sum reduction): Σ|W⊙∂loss/∂W| over
    each group's weights — a key/value head group is its n_rep query heads' q_proj rows and o_proj
    columns and its k_proj and v_proj rows; an MLP channel its gate/up rows and down column. Biases
    are not scored. loss = mean next-token cross-entropy over every row and position."""
    f = {k: v.double().requires_grad_(True) for k, v in w.items()}
    nll = []
    for ids in rows:
        logp = torch.log_softmax(forward(c, f, ids), dim=-1)
        nll.append(-logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])])
    loss = torch.cat(nll).mean()
    loss.backward()
    H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    rep = H // KV
    heads, mlp = [], []

    def s(name, axis):
        t = f[name]
        return (t * t.grad).abs().sum(axis)

    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}.self_attn."
        sq, sk, sv, so = s(p + "q_proj.weight", 1), s(p + "k_proj.weight", 1), s(p + "v_proj.weight", 1), s(p + "o_proj.weight", 0)
        qw = rep * hd
        heads.append([float(sq[g * qw:(g + 1) * qw].sum() + sk[g * hd:(g + 1) * hd].sum() + sv[g * hd:(g + 1) * hd].sum()
                            + so[g * qw:(g + 1) * qw].sum()) for g in range(KV)])
        p = f"model.layers.{l}.mlp."
        mlp.append((s(p + "gate_proj.weight", 1) + s(p + "up_proj.weight", 1) + s(p + "down_proj.weight", 0)).tolist())
    return float(loss), heads, mlp


def greedy(c, w, prompt, n):
    ids, out = list(prompt), []
    for _ in range(n):
        nxt = int(forward(c, w, ids)[-1].argmax())
        out.append(nxt)
        ids.append(nxt)
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)))
        fh.write(h)
        for b in blobs:
            fh.write(b)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "lib/models/testdata"
    for seed, (name, c) in enumerate(sorted(FAMILIES.items())):
        w = make_weights(c, 100 + seed)
        w = {k: v.float() for k, v in w.items()}  # what the checkpoint holds
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as fh:
            json.dump(c, fh, indent=2)
        write_safetensors(os.path.join(d, "model.safetensors"), w)
        V = c["vocab_size"]
        g = torch.Generator().manual_seed(7 + seed)
        prompts = [torch.randint(3, V - 3, (n,), generator=g).tolist() for n in (5, 9, 16)]
        calib = [torch.randint(3, V - 3, (12,), generator=g).tolist() for _ in range(3)]
        loss, heads, mlp = taylor_scores(c, w, calib)
        expected = {
            "prompts": prompts,
            "logits": [forward(c, w, p).tolist() for p in prompts],
            "greedy_prompt": prompts[0],
            "greedy": greedy(c, w, prompts[0], 10),
            "taylor": {"calibration": calib, "loss": loss, "head_scores": heads, "mlp_scores": mlp},
            "reference": "scripts/llama_family_ref.py, torch " + torch.__version__ + ", float64",
        }
        with open(os.path.join(d, "expected.json"), "w") as fh:
            json.dump(expected, fh)
        print(name, "loss", loss)


if __name__ == "__main__":
    main()
