#!/usr/bin/python3
"""Times one training step of a smollm2-135m-shaped Llama in PyTorch.

The reference for `gantry bench train`: the same architecture (hidden 576,
30 layers, 9 heads, 3 kv heads of 64, intermediate 1536, vocab 49152, tied
embeddings, rope theta 100000, RMSNorm eps 1e-5) with random weights, and
the same fine-tuning methods:

  lora     rank-8 adapters (alpha 16) on q, k, v, o, gate, up, down; fp32
  tfew     (IA)^3: learned scales on k, v and the MLP intermediate
  vanilla  the last 2 layers and the final norm trainable

A step is forward, cross-entropy over next tokens, backward and an AdamW
update of the trainable parameters. Prints one JSON object with
tokens_per_sec (from the best step; the median is also given) and
peak_rss_bytes. Run with Debian's torch (/usr/bin/python3) and
OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>;
bench/compare.sh does. Debian's OpenBLAS does not recognise every recent
CPU and then falls back to its slow generic (Prescott) kernels: the JSON
reports the core OpenBLAS chose, and OPENBLAS_CORETYPE (e.g. SkylakeX)
overrides it.
"""
import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Cfg:
    vocab = 49152
    hidden = 576
    layers = 30
    heads = 9
    kv_heads = 3
    head_dim = 64
    inter = 1536
    rope_theta = 100000.0
    eps = 1e-5


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoRALinear(nn.Module):
    """y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ with W frozen; B starts at zero."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.a = nn.Parameter(torch.empty(r, base.in_features))
        self.b = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale


def rope(x, cos, sin):
    # x: (B, H, T, D); rotate-half form as in Hugging Face Llama.
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        h, kvd = c.hidden, c.kv_heads * c.head_dim
        self.attn_norm = RMSNorm(h, c.eps)
        self.q = nn.Linear(h, c.heads * c.head_dim, bias=False)
        self.k = nn.Linear(h, kvd, bias=False)
        self.v = nn.Linear(h, kvd, bias=False)
        self.o = nn.Linear(c.heads * c.head_dim, h, bias=False)
        self.mlp_norm = RMSNorm(h, c.eps)
        self.gate = nn.Linear(h, c.inter, bias=False)
        self.up = nn.Linear(h, c.inter, bias=False)
        self.down = nn.Linear(c.inter, h, bias=False)
        self.ia3_k = self.ia3_v = self.ia3_ff = None

    def forward(self, x, cos, sin, mask):
        c = self.c
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(B, T, c.heads, c.head_dim).transpose(1, 2)
        k = self.k(h)
        v = self.v(h)
        if self.ia3_k is not None:
            k = k * self.ia3_k
            v = v * self.ia3_v
        k = k.view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        v = v.view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = c.heads // c.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c.head_dim) + mask
        y = F.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, c.heads * c.head_dim)
        x = x + self.o(y)
        h = self.mlp_norm(x)
        f = F.silu(self.gate(h)) * self.up(h)
        if self.ia3_ff is not None:
            f = f * self.ia3_ff
        return x + self.down(f)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab, c.hidden)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.hidden, c.eps)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        c = self.c
        B, T = ids.shape
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2).float() / c.head_dim))
        ang = torch.outer(torch.arange(T).float(), inv)
        ang = torch.cat((ang, ang), dim=-1)
        cos, sin = ang.cos(), ang.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        return self.norm(x) @ self.embed.weight.t()  # tied embeddings


def setup_method(model, method, rank):
    for p in model.parameters():
        p.requires_grad_(False)
    if method == "lora":
        for blk in model.blocks:
            for name in ("q", "k", "v", "o", "gate", "up", "down"):
                setattr(blk, name, LoRALinear(getattr(blk, name), rank, 2 * rank))
    elif method == "tfew":
        c = model.c
        for blk in model.blocks:
            blk.ia3_k = nn.Parameter(torch.ones(c.kv_heads * c.head_dim))
            blk.ia3_v = nn.Parameter(torch.ones(c.kv_heads * c.head_dim))
            blk.ia3_ff = nn.Parameter(torch.ones(c.inter))
    elif method == "vanilla":
        for blk in model.blocks[-2:]:
            for p in blk.parameters():
                p.requires_grad_(True)
        for p in model.norm.parameters():
            p.requires_grad_(True)
    else:
        raise SystemExit(f"unknown --method {method!r}: want lora, tfew or vanilla")
    return [p for p in model.parameters() if p.requires_grad]


def blas_info():
    """Which BLAS torch loaded, with OpenBLAS's chosen core and threads."""
    info = {"blas_library": None, "openblas_core": None, "openblas_threads": None}
    try:
        with open("/proc/self/maps") as f:
            libs = {l.split()[-1] for l in f if "blas" in l}
        info["blas_library"] = sorted(libs)
    except OSError:
        pass
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        info["openblas_core"] = lib.openblas_get_corename().decode()
        info["openblas_threads"] = lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        pass
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="lora")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=Cfg.layers, help="fewer layers for a quick check")
    ap.add_argument("--rank", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c = Cfg()
    c.layers = args.layers
    model = Llama(c)
    params = setup_method(model, args.method, args.rank)
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(c.vocab, (args.batch, args.seq + 1))
    x, y = ids[:, :-1], ids[:, 1:]
    times, losses = [], []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, c.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if step > 0:
            times.append(dt)
    tokens = args.batch * args.seq
    out = {
        "method": args.method, "seq": args.seq, "batch": args.batch, "layers": c.layers,
        "threads": torch.get_num_threads(), "steps": args.steps,
        "tokens_per_sec": tokens / min(times),
        "median_tokens_per_sec": tokens / statistics.median(times),
        "step_seconds": min(times),
        "trainable_params": sum(p.numel() for p in params),
        "loss_first": losses[0], "loss_last": losses[-1],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "OPENBLAS_CORETYPE")},
    }
    out.update(blas_info())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
