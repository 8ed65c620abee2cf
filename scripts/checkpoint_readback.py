#!/usr/bin/env python3
"""Reads a safetensors file (or an HF directory's model.safetensors + index) in Python and prints
{name: {"dtype", "shape", "values"}} as JSON, for lib/checkpoint's test of files our Go writer
produced. Uses the safetensors library when installed; otherwise parses the format with json +
torch.frombuffer (the format is an 8-byte little-endian header length, a JSON header, then data).

Usage: python3 scripts/checkpoint_readback.py FILE_OR_DIR...   (prints {path: result} for several)
"""
import json
import math
import os
import struct
import sys

import torch

DT = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
      "BOOL": torch.bool}


def load_file(path):
    try:
        from safetensors.torch import load_file as st_load
        return st_load(path), "safetensors"
    except ImportError:
        pass
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = bytearray(data[base + b:base + end])
        t = torch.frombuffer(buf, dtype=DT[e["dtype"]]) if buf else torch.empty(0, dtype=DT[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out, "json+torch"


def read(p):
    files = [p]
    if os.path.isdir(p):
        idx = os.path.join(p, "model.safetensors.index.json")
        if os.path.exists(idx):
            with open(idx) as f:
                files = sorted({os.path.join(p, v) for v in json.load(f)["weight_map"].values()})
        else:
            files = [os.path.join(p, "model.safetensors")]
    result, how = {}, ""
    for fp in files:
        tensors, how = load_file(fp)
        for k, t in tensors.items():
            result[k] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                         "values": [v if math.isfinite(v) else str(v) for v in t.to(torch.float64).reshape(-1).tolist()]}
    return {"reader": how, "tensors": result}


if __name__ == "__main__":
    json.dump({p: read(p) for p in sys.argv[1:]}, sys.stdout)
