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

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print("wrote fixtures to", os.path.normpath(OUT), "torch", torch.__version__, file=sys.stderr)
