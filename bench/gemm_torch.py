#!/usr/bin/python3
"""Times PyTorch's float32 matrix products at the shapes of bench_test.go.

Run with Debian's torch (/usr/bin/python3). Prints one JSON object per
shape: m, n, k, transa, transb, threads, gflops (best of --iters) and
median_gflops. The transposes are views, as the trainer's backward pass
would pass them, so BLAS sees the transposed operand in place.
"""
import argparse
import ctypes
import json
import statistics
import time

import torch

SHAPES = [
    # name, transa, transb, m, n, k  (op(A) m×k, op(B) k×n)
    ("sq1024", False, False, 1024, 1024, 1024),
    ("q_fwd", False, True, 2048, 576, 576),
    ("kv_fwd", False, True, 2048, 192, 576),
    ("up_fwd", False, True, 2048, 1536, 576),
    ("down_fwd", False, True, 2048, 576, 1536),
    ("lm_fwd", False, True, 2048, 49152, 576),
    ("q_dx", False, False, 2048, 576, 576),
    ("down_dx", False, False, 2048, 1536, 576),
    ("up_dx", False, False, 2048, 576, 1536),
    ("lm_dx", False, False, 2048, 576, 49152),
    ("q_dw", True, False, 576, 576, 2048),
    ("kv_dw", True, False, 192, 576, 2048),
    ("up_dw", True, False, 1536, 576, 2048),
    ("down_dw", True, False, 576, 1536, 2048),
]


def openblas_threads():
    """Returns OpenBLAS's thread count, or None when it is not loaded."""
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name)
            return lib.openblas_get_num_threads()
        except (OSError, AttributeError):
            continue
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--only", default="", help="comma-separated shape names")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    only = set(filter(None, args.only.split(",")))
    for name, ta, tb, m, n, k in SHAPES:
        if only and name not in only:
            continue
        a = torch.randn(k, m).t() if ta else torch.randn(m, k)
        b = torch.randn(n, k).t() if tb else torch.randn(k, n)
        c = torch.empty(m, n)
        torch.mm(a, b, out=c)  # warm-up
        times = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            times.append(time.perf_counter() - t0)
        flop = 2.0 * m * n * k
        print(json.dumps({
            "name": name, "m": m, "n": n, "k": k, "transa": ta, "transb": tb,
            "threads": torch.get_num_threads(), "openblas_threads": openblas_threads(),
            "gflops": flop / min(times) / 1e9,
            "median_gflops": flop / statistics.median(times) / 1e9,
            "seconds": min(times),
        }), flush=True)


if __name__ == "__main__":
    main()
