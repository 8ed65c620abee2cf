#!/usr/bin/env python3
"""Write a Hugging Face model directory as PyTorch saves it: pytorch_model.bin (torch.save of the
state dict, zip format) plus config.json, from a directory holding config.json and
model.safetensors.

Used by lib/models tests (TestGoldenTinyLlamaPyTorchBin) to check loading of a real
PyTorch-written checkpoint. Needs only torch (Debian: python3-torch); safetensors is parsed here.

usage: models_torch_bin.py SRC_DIR DST_DIR [--dtype float32|bfloat16|float16]
"""
import argparse
import json
import os
import shutil
import struct

import torch

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        buf = bytearray(data[base + a : base + b])
        t = torch.frombuffer(buf, dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = t.clone()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = p.parse_args()
    state = read_safetensors(os.path.join(args.src, "model.safetensors"))
    dtype = getattr(torch, args.dtype)
    state = {k: v.to(dtype) for k, v in sorted(state.items())}
    os.makedirs(args.dst, exist_ok=True)
    torch.save(state, os.path.join(args.dst, "pytorch_model.bin"))
    shutil.copy(os.path.join(args.src, "config.json"), os.path.join(args.dst, "config.json"))


if __name__ == "__main__":
    main()
