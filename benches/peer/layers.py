#!/usr/bin/env python3
"""Times the 24 convolution kernels of the GradCon autoencoder (batch 64) in PyTorch.

For each of the 8 layers: the forward pass, the input gradient and the weight gradient, each as
one call (`torch.nn.functional.conv2d` / `conv_transpose2d`, `torch.nn.grad.conv2d_input` /
`conv2d_weight`, and their transposed-convolution counterparts through the adjoint identities),
so the work matches the Rust kernels one for one. Prints the median time per kernel in
milliseconds and GFLOP/s (2 multiply-adds per MAC), or JSON lines with `--json`.

Usage: python layers.py [--threads 2] [--batch 64] [--reps 50] [--only enc2] [--clock cpu] [--json]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

# (name, kind, in_channels, out_channels, input size, padding, output padding); all k4 s2.
LAYERS = [
    ("enc1", "conv", 1, 32, 28, 2, 0),
    ("enc2", "conv", 32, 32, 15, 2, 0),
    ("enc3", "conv", 32, 64, 8, 2, 0),
    ("enc4", "conv", 64, 64, 5, 2, 0),
    ("dec1", "convT", 64, 64, 3, 2, 0),
    ("dec2", "convT", 64, 32, 4, 1, 0),
    ("dec3", "convT", 32, 32, 8, 2, 0),
    ("dec4", "convT", 32, 1, 14, 1, 0),
]
K, S = 4, 2


def kernels(kind, cin, cout, size, pad, opad, batch):
    """The three calls of one layer as closures, and the multiply-adds each costs."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cin, size, size, generator=g)
    if kind == "conv":
        w = torch.randn(cout, cin, K, K, generator=g)
        b = torch.randn(cout, generator=g)
        y = F.conv2d(x, w, b, stride=S, padding=pad)
        gy = torch.randn(y.shape, generator=g)
        macs = batch * cout * y.shape[2] * y.shape[3] * cin * K * K
        return macs, {
            "forward": lambda: F.conv2d(x, w, b, stride=S, padding=pad),
            "input_grad": lambda: torch.nn.grad.conv2d_input(x.shape, w, gy, stride=S, padding=pad),
            "weight_grad": lambda: torch.nn.grad.conv2d_weight(x, w.shape, gy, stride=S, padding=pad),
        }
    # Transposed convolution with weight [in, out, k, k]: its input gradient is conv2d of the
    # output gradient with the same weight, its weight gradient is conv2d_weight with the roles
    # of input and output gradient swapped.
    w = torch.randn(cin, cout, K, K, generator=g)
    b = torch.randn(cout, generator=g)
    y = F.conv_transpose2d(x, w, b, stride=S, padding=pad, output_padding=opad)
    gy = torch.randn(y.shape, generator=g)
    macs = batch * cin * size * size * cout * K * K
    return macs, {
        "forward": lambda: F.conv_transpose2d(x, w, b, stride=S, padding=pad, output_padding=opad),
        "input_grad": lambda: F.conv2d(gy, w, None, stride=S, padding=pad),
        "weight_grad": lambda: torch.nn.grad.conv2d_weight(gy, w.shape, x, stride=S, padding=pad),
    }


def median_ms(fn, reps, warmup, clock):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="one JSON object per kernel")
    ap.add_argument("--only", default="", help="run only kernels whose name contains this")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or CPU time of the whole process (all threads), which a "
                         "loaded machine disturbs less")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    total = 0.0
    with torch.no_grad():
        for name, kind, cin, cout, size, pad, opad in LAYERS:
            macs, fns = kernels(kind, cin, cout, size, pad, opad, args.batch)
            for op, fn in fns.items():
                key = f"{name}.{op}"
                if args.only not in key:
                    continue
                clock = time.perf_counter if args.clock == "wall" else time.process_time
                ms = median_ms(fn, args.reps, args.warmup, clock)
                total += ms
                gflops = 2 * macs / (ms * 1e6)
                if args.json:
                    print(json.dumps({"kernel": key, "ms": ms, "gflops": gflops, "macs": macs}))
                else:
                    print(f"{key:<18} {ms:9.3f} ms {gflops:8.1f} GFLOP/s")
    if not args.json:
        print(f"{'total':<18} {total:9.3f} ms  (torch {torch.__version__}, {args.threads} threads)")


if __name__ == "__main__":
    main()
