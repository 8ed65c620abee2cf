#!/usr/bin/env python3
"""Writes the PyTorch/safetensors fixtures that lib/checkpoint's tests read, and the values they
must decode to (testdata/expected.json). torch (Debian: apt-get install -y python3-torch
python3-numpy) writes the .bin files, so they are independent references for our reader.

Run from the repository root:  /usr/bin/python3 scripts/checkpoint_fixtures.py
"""
import json
import math
import os
import struct
import sys
from collections import OrderedDict

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "checkpoint", "testdata")
torch.manual_seed(20261126)
expected = {}


def describe(t):
    t = t.detach()
    vals = t.to(torch.float64).reshape(-1).tolist() if t.dtype != torch.bool else [float(v) for v in t.reshape(-1).tolist()]
    vals = [v if math.isfinite(v) else str(v) for v in vals]  # JSON has no inf/nan: "inf", "-inf", "nan"
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": vals}


def record(fname, sd):
    expected[fname] = {k: describe(v) for k, v in sd.items()}


def save(fname, sd, **kw):
    torch.save(sd, os.path.join(OUT, fname), **kw)
    record(fname, sd)


def small(*shape, dtype=torch.float32):
    return (torch.randn(*shape) * 3).to(dtype)


# Zip-format state dicts (torch >= 1.6), one per storage dtype.
for name, dt in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
    save(f"pt_{name}.bin", OrderedDict([
        ("model.embed_tokens.weight", small(5, 4, dtype=dt)),
        ("model.norm.weight", small(4, dtype=dt)),
        ("scalar", torch.tensor(1.5, dtype=dt)),
    ]))

# Non-contiguous views and offsets into a larger storage.
base = small(6, 5)
save("pt_views.bin", OrderedDict([
    ("transposed", base.t()),                 # strides (1, 5)
    ("row_slice", base[2:4]),                 # storage offset 10
    ("col_stride", base[:, 1::2]),            # offset 1, strides (5, 2)
    ("int64", torch.arange(7, dtype=torch.int64) - 3),
    ("int32", torch.arange(4, dtype=torch.int32) * 7),
    ("int8", torch.tensor([-128, -1, 0, 127], dtype=torch.int8)),
    ("uint8", torch.tensor([0, 1, 255], dtype=torch.uint8)),
    ("bool", torch.tensor([True, False, True])),
    ("f64", torch.tensor([1.0 / 3, -2.5], dtype=torch.float64)),
]))

# Shared storage: tied weights (same tensor twice) and two views of one storage.
emb = small(4, 3)
both = small(8)
save("pt_shared.bin", OrderedDict([
    ("model.embed_tokens.weight", emb),
    ("lm_head.weight", emb),
    ("first_half", both[:4]),
    ("second_half", both[4:]),
]))

# Parameters (torch._utils._rebuild_parameter), as in a saved module's state_dict()... saved as
# nn.Parameter objects directly, which some training scripts do.
save("pt_params.bin", OrderedDict([("w", torch.nn.Parameter(small(2, 3)))]))

# Legacy (non-zip) serialization.
save("pt_legacy.bin", OrderedDict([("a", small(3, 2)), ("b", small(3, 2).t()), ("c", small(2, dtype=torch.float16))]),
     _use_new_zipfile_serialization=False)

# Sharded pair with index, as transformers writes it.
shard_dir = os.path.join(OUT, "pt_sharded")
os.makedirs(shard_dir, exist_ok=True)
s1 = OrderedDict([("model.layers.0.mlp.up_proj.weight", small(3, 2)), ("model.norm.weight", small(2))])
s2 = OrderedDict([("lm_head.weight", small(4, 2))])
torch.save(s1, os.path.join(shard_dir, "pytorch_model-00001-of-00002.bin"))
torch.save(s2, os.path.join(shard_dir, "pytorch_model-00002-of-00002.bin"))
wm = {k: "pytorch_model-00001-of-00002.bin" for k in s1}
wm.update({k: "pytorch_model-00002-of-00002.bin" for k in s2})
with open(os.path.join(shard_dir, "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f, indent=2)
expected["pt_sharded"] = {k: describe(v) for k, v in list(s1.items()) + list(s2.items())}


# A pickle that names a forbidden global (would run a shell command if unpickled by Python).
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


torch.save(OrderedDict([("w", small(2)), ("evil", Evil())]), os.path.join(OUT, "pt_forbidden.bin"))


# A safetensors file written with the format's own rules (JSON header + little-endian data),
# independent of our Go writer: every dtype the format has that we support.
def write_safetensors(path, tensors, metadata):
    st_names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                torch.uint8: "U8", torch.bool: "BOOL"}
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[k] = {"dtype": st_names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


st = OrderedDict([
    ("f64", torch.tensor([[1.0 / 3, -1e300]], dtype=torch.float64)),
    ("f32", small(3, 4)),
    ("f16", small(2, 3, dtype=torch.float16)),
    ("bf16", small(3, 2, dtype=torch.bfloat16)),
    ("i64", torch.tensor([-(2 ** 40), 5], dtype=torch.int64)),
    ("i32", torch.tensor([-7, 8, 9], dtype=torch.int32)),
    ("i16", torch.tensor([-300, 300], dtype=torch.int16)),
    ("i8", torch.tensor([-5, 6], dtype=torch.int8)),
    ("u8", torch.tensor([200, 1], dtype=torch.uint8)),
    ("bool", torch.tensor([False, True])),
    ("scalar", torch.tensor(2.25)),
    ("empty", torch.zeros(0, 3)),
])
write_safetensors(os.path.join(OUT, "st_python.safetensors"), st, {"format": "pt", "written_by": "checkpoint_fixtures.py"})
expected["st_python.safetensors"] = {k: describe(v) for k, v in st.items()}

# float32 -> bfloat16 / float16 as torch rounds them: ties, subnormals, overflow, signed zero.
src = torch.cat([
    torch.randn(64) * 10,
    torch.tensor([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -11, 1.0 + 3 * 2 ** -11, -0.0, 1e-8, 6e-5, 65504.0, 65520.0,
                  1e5, 3.4e38, -3.4e38, 1e-40, float("inf"), float("-inf")]),
]).to(torch.float32)
expected["conversions"] = {
    "float32": describe(src),
    "bfloat16": describe(src.to(torch.bfloat16)),
    "float16": describe(src.to(torch.float16)),
}


# llama2.c files (written here with struct, following llama2.c's export.py layouts) of one small
# GQA model, and the tensors they must give in Hugging Face layout: q/k rows permuted from
# interleaved RoPE pairs to rotate_half with w.view(h, d1 // h // 2, 2, d2).transpose(1, 2).
def llama2c_weights(dim=8, hidden=12, layers=2, heads=2, kv=1, vocab=10, seq=4, tied=True):
    hd = dim // heads
    L = range(layers)
    w = {
        "emb": small(vocab, dim), "attn_norm": [small(dim) for _ in L], "ffn_norm": [small(dim) for _ in L],
        "wq": [small(dim, dim) for _ in L], "wk": [small(kv * hd, dim) for _ in L], "wv": [small(kv * hd, dim) for _ in L],
        "wo": [small(dim, dim) for _ in L], "w1": [small(hidden, dim) for _ in L], "w2": [small(dim, hidden) for _ in L],
        "w3": [small(hidden, dim) for _ in L], "norm": small(dim), "cos": small(seq, hd // 2), "sin": small(seq, hd // 2),
    }
    w["cls"] = w["emb"] if tied else small(vocab, dim)
    return dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv=kv, vocab=vocab, seq=seq, tied=tied), w


def f32(t):
    return t.detach().to(torch.float32).contiguous().numpy().tobytes()


def quantize_q80(t, gs):
    g = t.reshape(-1, gs).to(torch.float32)
    scale = g.abs().max(dim=1).values / 127.0
    q = torch.round(g / scale[:, None]).to(torch.int8)
    return q.reshape(-1), scale, (q.to(torch.float32) * scale[:, None]).reshape(t.shape)


def write_llama2c(fname, version, p, w):
    matrices = [w["emb"], *w["wq"], *w["wk"], *w["wv"], *w["wo"], *w["w1"], *w["w2"], *w["w3"]]
    if not p["tied"]:
        matrices.append(w["cls"])
    ints = [p["dim"], p["hidden"], p["layers"], p["heads"], p["kv"], p["vocab"], p["seq"]]
    dequant = {}
    with open(os.path.join(OUT, fname), "wb") as f:
        if version == 0:
            ints[5] = p["vocab"] if p["tied"] else -p["vocab"]
            f.write(struct.pack("<7i", *ints))
            for t in [w["emb"], *w["attn_norm"], *w["wq"], *w["wk"], *w["wv"], *w["wo"], *w["ffn_norm"],
                      *w["w1"], *w["w2"], *w["w3"], w["norm"], w["cos"], w["sin"]] + ([] if p["tied"] else [w["cls"]]):
                f.write(f32(t))
        else:
            f.write(struct.pack("<Ii7iB", 0x616B3432, version, *ints, int(p["tied"])))
            gs = 8
            if version == 2:
                f.write(struct.pack("<i", gs))
            f.write(b"\0" * (256 - f.tell()))
            for t in [*w["attn_norm"], *w["ffn_norm"], w["norm"]]:
                f.write(f32(t))
            if version == 1:
                for t in matrices:
                    f.write(f32(t))
            else:
                scales = []
                for t in matrices:
                    q, s, dq = quantize_q80(t, gs)
                    f.write(q.numpy().tobytes())
                    scales.append(s)
                    dequant[id(t)] = dq
                for s in scales:
                    f.write(f32(s))
    get = lambda t: dequant.get(id(t), t)

    def perm(t, n):
        d1, d2 = t.shape
        return t.view(n, d1 // n // 2, 2, d2).transpose(1, 2).reshape(d1, d2)

    hf = {"model.embed_tokens.weight": get(w["emb"]), "model.norm.weight": w["norm"]}
    for i in range(p["layers"]):
        pre = f"model.layers.{i}."
        hf[pre + "input_layernorm.weight"] = w["attn_norm"][i]
        hf[pre + "post_attention_layernorm.weight"] = w["ffn_norm"][i]
        hf[pre + "self_attn.q_proj.weight"] = perm(get(w["wq"][i]), p["heads"])
        hf[pre + "self_attn.k_proj.weight"] = perm(get(w["wk"][i]), p["kv"])
        hf[pre + "self_attn.v_proj.weight"] = get(w["wv"][i])
        hf[pre + "self_attn.o_proj.weight"] = get(w["wo"][i])
        hf[pre + "mlp.gate_proj.weight"] = get(w["w1"][i])
        hf[pre + "mlp.down_proj.weight"] = get(w["w2"][i])
        hf[pre + "mlp.up_proj.weight"] = get(w["w3"][i])
    if not p["tied"]:
        hf["lm_head.weight"] = get(w["cls"])
    record(fname, hf)


p_tied, w_tied = llama2c_weights(tied=True)
p_untied, w_untied = llama2c_weights(tied=False)
for version in (0, 1, 2):
    write_llama2c(f"l2c_v{version}_tied.bin", version, p_tied, w_tied)
    write_llama2c(f"l2c_v{version}_untied.bin", version, p_untied, w_untied)

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, separators=(",", ":"), sort_keys=True)
    f.write("\n")
print("wrote fixtures to", os.path.normpath(OUT), "torch", torch.__version__, file=sys.stderr)
