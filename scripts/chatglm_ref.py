#!/usr/bin/env python3
"""Independent PyTorch reference of ChatGLM-6B (v1) for llmpruner's tests.

Written from the published architecture (GLM paper; THUDM's modeling_chatglm.py read as a
description, not copied): word embeddings; per layer LayerNorm(+bias) → fused query_key_value
with bias, laid out per head as [q | k | v] (3·head_dim rows per head) → 2D rotary encoding
(rotate_half on each half of the head: first half at position ids, second half at block
position ids; inverse frequencies rounded to float16 as the original's RotaryEmbedding does) →
attention with query_key_layer_scaling (query / (sqrt(hd)·(layer+1)), masked to -10000, scores
× (layer+1), softmax in float32) → dense(+bias) → residual on the *normalized* input:
ln_out·sqrt(2·28) + attn (the original builds every GLMBlock with its default num_layers=28, whatever
the config says); the same for the tanh-GELU MLP; final LayerNorm; lm_head tied
to the word embeddings (HF default, ChatGLM-6B's config has no tie_word_embeddings).

Prefix-LM inputs: context length = index of <sop> (bos_token_id); every query sees the context
bidirectionally and the rest causally; position ids are 0..n-1 up to the context and then the
position of [gMASK] (or [MASK] when there is no [gMASK]); block position ids are 0 in the context
and 1, 2, ... from <sop> on.

Run with Debian's python3-torch:  /usr/bin/python3 scripts/chatglm_ref.py lib/models/testdata
It writes chatglm_tiny/ (config.json, model.safetensors in float16, expected.json) and
chatglm_tiny_bin/ (the same weights as two torch .bin shards with an index, lm_head.weight
included as HF's tied checkpoints store it, and the rotary inv_freq buffers the original saves).
"""
import json
import math
import os
import struct
import sys

import torch

torch.manual_seed(1234)

CFG = {
    "architectures": ["ChatGLMModel"],
    "model_type": "chatglm",
    "hidden_size": 64,
    "inner_hidden_size": 128,
    "num_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 160,
    "layernorm_epsilon": 1e-5,
    "position_encoding_2d": True,
    "max_sequence_length": 64,
    "mask_token_id": 150,
    "gmask_token_id": 151,
    "bos_token_id": 152,
    "eos_token_id": 153,
    "pad_token_id": 3,
    "torch_dtype": "float16",
}
D, I, L, H, V = CFG["hidden_size"], CFG["inner_hidden_size"], CFG["num_layers"], CFG["num_attention_heads"], CFG["vocab_size"]
HD = D // H


def make_weights():
    w = {}

    def rnd(*shape, std=0.4):
        return torch.randn(*shape) * std

    w["transformer.word_embeddings.weight"] = rnd(V, D, std=1.0)
    for l in range(L):
        p = f"transformer.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + rnd(D, std=0.1)
        w[p + "input_layernorm.bias"] = rnd(D, std=0.1)
        w[p + "attention.query_key_value.weight"] = rnd(3 * D, D)
        w[p + "attention.query_key_value.bias"] = rnd(3 * D, std=0.1)
        w[p + "attention.dense.weight"] = rnd(D, D)
        w[p + "attention.dense.bias"] = rnd(D, std=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + rnd(D, std=0.1)
        w[p + "post_attention_layernorm.bias"] = rnd(D, std=0.1)
        w[p + "mlp.dense_h_to_4h.weight"] = rnd(I, D)
        w[p + "mlp.dense_h_to_4h.bias"] = rnd(I, std=0.1)
        w[p + "mlp.dense_4h_to_h.weight"] = rnd(D, I)
        w[p + "mlp.dense_4h_to_h.bias"] = rnd(D, std=0.1)
    w["transformer.final_layernorm.weight"] = 1 + rnd(D, std=0.1)
    w["transformer.final_layernorm.bias"] = rnd(D, std=0.1)
    # Stored in float16; the reference computes in float32 from the rounded values.
    return {k: v.half() for k, v in w.items()}


def layer_norm(x, w, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, CFG["layernorm_epsilon"])


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x)))


def positions(ids):
    """Position ids, block position ids and the allowed-attention matrix of one sequence."""
    n = len(ids)
    ctx = ids.index(CFG["bos_token_id"])
    mask_tok = CFG["gmask_token_id"] if CFG["gmask_token_id"] in ids else CFG["mask_token_id"]
    mpos = ids.index(mask_tok)
    pos = [i if i < ctx else mpos for i in range(n)]
    block = [0 if i < ctx else i - ctx + 1 for i in range(n)]
    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
    allowed[:, :ctx] = True
    return torch.tensor(pos), torch.tensor(block), allowed


def rotary(x, pos, hd_half):
    """rotate_half rotary encoding of x [S, H, hd_half] at positions pos [S]."""
    inv = 1.0 / (10000 ** (torch.arange(0, hd_half, 2).float() / hd_half))
    inv = inv.half().float()  # the original keeps inv_freq in float16
    ang = pos.float()[:, None] * inv[None, :]  # [S, hd_half/2]
    emb = torch.cat([ang, ang], dim=-1)[:, None, :]  # [S, 1, hd_half]
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : hd_half // 2], x[..., hd_half // 2:]
    rot = torch.cat([-x2, x1], dim=-1)
    return x * cos + rot * sin


def forward(w, ids, layers=None):
    """Logits [S, V] of one sequence (float32), through the given layers (default all)."""
    layers = list(range(L)) if layers is None else layers
    f = {k: v if v.dtype == torch.float32 else v.float() for k, v in w.items()}
    pos, block, allowed = positions(ids)
    x = f["transformer.word_embeddings.weight"][torch.tensor(ids)]  # [S, D]
    S = len(ids)
    alpha = math.sqrt(2 * 28)  # GLMBlock's default num_layers=28, which ChatGLMModel never overrides
    for l in layers:
        p = f"transformer.layers.{l}."
        nh = f[p + "attention.dense.weight"].shape[1] // HD
        h = layer_norm(x, f[p + "input_layernorm.weight"], f[p + "input_layernorm.bias"])
        qkv = h @ f[p + "attention.query_key_value.weight"].T + f[p + "attention.query_key_value.bias"]
        qkv = qkv.view(S, nh, 3 * HD)
        q, k, v = qkv[..., :HD], qkv[..., HD:2 * HD], qkv[..., 2 * HD:]
        half = HD // 2
        q = torch.cat([rotary(q[..., :half], pos, half), rotary(q[..., half:], block, half)], dim=-1)
        k = torch.cat([rotary(k[..., :half], pos, half), rotary(k[..., half:], block, half)], dim=-1)
        coeff = float(l + 1)
        q = q / (math.sqrt(HD) * coeff)
        scores = torch.einsum("qhd,khd->hqk", q, k)
        scores = scores.masked_fill(~allowed[None], -10000.0)
        probs = torch.softmax(scores.float() * coeff, dim=-1)
        ctx = torch.einsum("hqk,khd->qhd", probs, v).reshape(S, nh * HD)
        attn = ctx @ f[p + "attention.dense.weight"].T + f[p + "attention.dense.bias"]
        x = h * alpha + attn
        h = layer_norm(x, f[p + "post_attention_layernorm.weight"], f[p + "post_attention_layernorm.bias"])
        m = gelu_tanh(h @ f[p + "mlp.dense_h_to_4h.weight"].T + f[p + "mlp.dense_h_to_4h.bias"])
        x = h * alpha + (m @ f[p + "mlp.dense_4h_to_h.weight"].T + f[p + "mlp.dense_4h_to_h.bias"])
    x = layer_norm(x, f["transformer.final_layernorm.weight"], f["transformer.final_layernorm.bias"])
    return x @ f["transformer.word_embeddings.weight"].T


def taylor_scores(w, rows):
    """First-order Taylor importance (LLM-Pruner's param_first, sum reduction) of every head and MLP
    channel: Σ|W⊙∂loss/∂W| over the group's weight entries (query/key/value rows of the head in
    query_key_value and its dense columns; the dense_h_to_4h row and dense_4h_to_h column of a
    channel). loss = mean next-token cross-entropy over all rows and positions. Biases not scored."""
    f = {k: v.float().requires_grad_(True) for k, v in w.items()}
    nll = []
    for ids in rows:
        logp = torch.log_softmax(forward(f, ids), dim=-1)
        nll.append(-logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])])
    loss = torch.cat(nll).mean()
    loss.backward()
    heads, mlp = [], []
    for l in range(L):
        p = f"transformer.layers.{l}."
        s_qkv = (f[p + "attention.query_key_value.weight"] * f[p + "attention.query_key_value.weight"].grad).abs().sum(1)
        s_dense = (f[p + "attention.dense.weight"] * f[p + "attention.dense.weight"].grad).abs().sum(0)
        heads.append([float(s_qkv[3 * HD * h: 3 * HD * (h + 1)].sum() + s_dense[HD * h: HD * (h + 1)].sum()) for h in range(H)])
        s_up = (f[p + "mlp.dense_h_to_4h.weight"] * f[p + "mlp.dense_h_to_4h.weight"].grad).abs().sum(1)
        s_down = (f[p + "mlp.dense_4h_to_h.weight"] * f[p + "mlp.dense_4h_to_h.weight"].grad).abs().sum(0)
        mlp.append((s_up + s_down).tolist())
    return float(loss), heads, mlp


def greedy(w, prompt, n):
    ids = list(prompt)
    out = []
    for _ in range(n):
        nxt = int(forward(w, ids)[-1].argmax())
        out.append(nxt)
        ids.append(nxt)
        if nxt == CFG["eos_token_id"]:
            break
    return out


def remove_hidden(w, drop):
    """Independently slices hidden channels drop out of every tensor that touches the residual stream."""
    keep = torch.tensor([d for d in range(D) if d not in drop])
    out = {}
    for k, v in w.items():
        if k == "transformer.word_embeddings.weight" or k.endswith(("query_key_value.weight", "dense_h_to_4h.weight")):
            out[k] = v[:, keep]
        elif k.endswith(("attention.dense.weight", "dense_4h_to_h.weight")):
            out[k] = v[keep, :]
        elif k.endswith(("layernorm.weight", "layernorm.bias", "attention.dense.bias", "dense_4h_to_h.bias")):
            out[k] = v[keep]
        else:
            out[k] = v
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
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
    w = make_weights()
    st_dir, bin_dir = os.path.join(root, "chatglm_tiny"), os.path.join(root, "chatglm_tiny_bin")
    os.makedirs(st_dir, exist_ok=True)
    os.makedirs(bin_dir, exist_ok=True)
    for d in (st_dir, bin_dir):
        with open(os.path.join(d, "config.json"), "w") as fh:
            json.dump(CFG, fh, indent=2)
    write_safetensors(os.path.join(st_dir, "model.safetensors"), w)

    # Two torch shards with an index; lm_head.weight (tied copy) in the second, as HF stores it.
    names = sorted(w)
    shards = [names[: len(names) // 2], names[len(names) // 2:] + ["lm_head.weight"]]
    full = dict(w)
    full["lm_head.weight"] = w["transformer.word_embeddings.weight"].clone()
    # The original also saves each layer's rotary inv_freq buffer (ignored when loading).
    for l in range(L):
        name = f"transformer.layers.{l}.attention.rotary_emb.inv_freq"
        full[name] = (1.0 / (10000 ** (torch.arange(0, HD // 2, 2).float() / (HD // 2)))).half()
        shards[l % 2].append(name)
    weight_map = {}
    for i, part in enumerate(shards):
        fname = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({k: full[k] for k in part}, os.path.join(bin_dir, fname))
        for k in part:
            weight_map[k] = fname
    with open(os.path.join(bin_dir, "pytorch_model.bin.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": sum(v.numel() * 2 for v in full.values())}, "weight_map": weight_map}, fh, indent=2)

    g, m, b = CFG["gmask_token_id"], CFG["mask_token_id"], CFG["bos_token_id"]
    prompts = [
        [5, 17, 42, 99, 7, g, b],
        [12, 3, 88, g, b, 40, 41, 42],
        [9, m, 20, 21, b, 60],
        [30, 31, g, 32, m, b, 1, 2, 3, 4],
    ]
    drop = [3, 10, 17, 40, 63]
    expected = {
        "prompts": prompts,
        "logits": [forward(w, p).tolist() for p in prompts],
        "greedy_prompts": [prompts[0], prompts[2]],
        "greedy": [greedy(w, prompts[0], 12), greedy(w, prompts[2], 12)],
        "hidden_removed": drop,
        "hidden_removed_logits": forward(remove_hidden(w, set(drop)), prompts[1]).tolist(),
        "layer0_removed_logits": forward(w, prompts[1], layers=[1]).tolist(),
    }
    calib = [[4, 8, 15, 16, g, b, 23, 42, 7, 9], [100, 3, 27, m, b, 66, 1, 2, 140, 5], [11, g, b, 12, 13, 14, 15, 16, 17, 18]]
    loss, heads, mlp = taylor_scores(w, calib)
    expected["taylor"] = {"calibration": calib, "loss": loss, "head_scores": heads, "mlp_scores": mlp}
    pos, block, _ = positions(prompts[3])
    expected["positions_example"] = {"ids": prompts[3], "position_ids": pos.tolist(), "block_position_ids": block.tolist()}
    with open(os.path.join(st_dir, "expected.json"), "w") as fh:
        json.dump(expected, fh)


if __name__ == "__main__":
    main()
