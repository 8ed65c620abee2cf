#!/usr/bin/env python3
"""Re-saves a safetensors checkpoint as PyTorch state dicts with torch.save, for tests of
lib/checkpoint's .bin reader on real model files (and for the models package's acceptance check
"from a pytorch_model.bin you save with PyTorch").

Usage: python3 scripts/checkpoint_st_to_bin.py SRC.safetensors DST[:OPTION...]...
  each DST is written once; options after colons:
    legacy                       the pre-1.6 (non-zip) serialization
    float32|bfloat16|float16     convert floating-point tensors first (torch's rounding)
  e.g. checkpoint_st_to_bin.py model.safetensors pytorch_model.bin old.bin:legacy half.bin:bfloat16
"""
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_readback import load_file  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    tensors, _ = load_file(sys.argv[1])
    for spec in sys.argv[2:]:
        path, *opts = spec.split(":")
        unknown = [o for o in opts if o != "legacy" and o not in DTYPES]
        if unknown:
            sys.exit(f"unknown option(s) {unknown} in {spec!r}")
        dtype = next((DTYPES[o] for o in opts if o in DTYPES), None)
        sd = OrderedDict()
        for k in sorted(tensors):
            t = tensors[k].clone()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            sd[k] = t
        torch.save(sd, path, _use_new_zipfile_serialization="legacy" not in opts)


main()
