#!/usr/bin/env python3
"""PyTorch CPU reference for lib/models Benchmark7BLayer: one LLaMA-7B-shaped decoder layer
(d 4096, 32 heads x 128, ffn 11008, RMSNorm, rotate-half RoPE, causal attention, SwiGLU) on
1 x 128 tokens in float32, forward and forward+backward (gradients of every weight, loss = sum of
the output, as the Go benchmark's). FLOPs = 2 * MACs of the matmuls with attention over the full
S x S scores; backward = 2 x forward: the same accounting as bench_test.go, so the GFLOP/s compare.

    python3 scripts/bench_torch_layer.py [--threads N] [--repeats 5]

Debian's python3-torch uses the system BLAS: install libopenblas0-pthread, else it falls back to
the reference libblas3 and runs some 30x slower (measured: 3.4 vs 118 GFLOP/s forward).
"""
import argparse
import time

import torch

D, H, HD, F, S = 4096, 32, 128, 11008, 128


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def layer(x, p, cos, sin, mask):
    h = rms(x, p["ln1"])
    q = (h @ p["q"].T).view(1, S, H, HD).transpose(1, 2)
    k = (h @ p["k"].T).view(1, S, H, HD).transpose(1, 2)
    v = (h @ p["v"].T).view(1, S, H, HD).transpose(1, 2)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    att = (q @ k.transpose(-1, -2)) / HD ** 0.5 + mask
    o = (att.softmax(-1) @ v).transpose(1, 2).reshape(1, S, D)
    x = x + o @ p["o"].T
    h = rms(x, p["ln2"])
    return x + (torch.nn.functional.silu(h @ p["gate"].T) * (h @ p["up"].T)) @ p["down"].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(7)
    shapes = {"q": (D, D), "k": (D, D), "v": (D, D), "o": (D, D), "gate": (F, D), "up": (F, D), "down": (D, F)}
    p = {n: (0.02 * torch.randn(*s, generator=g)).requires_grad_() for n, s in shapes.items()}
    p["ln1"] = torch.ones(D, requires_grad=True)
    p["ln2"] = torch.ones(D, requires_grad=True)
    x = torch.randn(1, S, D, generator=g)
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
    ang = torch.arange(S).float()[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    mask = torch.full((S, S), float("-inf")).triu(1)
    macs = S * (4 * D * D + 3 * D * F) + 2 * S * S * D
    fwd = 2 * macs

    def timed(fn):
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(a.repeats):
            fn()
        return (time.perf_counter() - t0) / a.repeats

    with torch.no_grad():
        tf = timed(lambda: layer(x, p, cos, sin, mask))

    def fwd_bwd():
        for t in p.values():
            t.grad = None
        layer(x, p, cos, sin, mask).sum().backward()

    tb = timed(fwd_bwd)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"forward          {tf * 1e3:8.1f} ms  {fwd / tf / 1e9:7.1f} GFLOP/s  {S / tf:8.1f} tokens/s")
    print(f"forward+backward {tb * 1e3:8.1f} ms  {3 * fwd / tb / 1e9:7.1f} GFLOP/s  {S / tb:8.1f} tokens/s")


if __name__ == "__main__":
    main()
