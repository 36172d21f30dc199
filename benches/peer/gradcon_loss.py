"""PyTorch peer of `benches/benches/autograd.rs`: the GradCon step's double backward and the
per-example gradient statistics, same shapes (batch 64, 1x28x28, f32, alpha 0.03).

Run with the interpreter from $PYTHON (a Python with PyTorch 2.x):
    "$PYTHON" benches/peer/gradcon_loss.py [--threads 2] [--repeats 15]
Prints median milliseconds per measurement, after warm-up.
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

BATCH = 64
ALPHA = 0.03


class AutoEncoder(nn.Module):
    def __init__(self, c=1):
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(32, 32, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(64, 64, 4, 2, 2), nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 2), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.up(self.down(x))


def median_ms(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = AutoEncoder()
    x = torch.rand(BATCH, 1, 28, 28)
    dec = [model.up[i].weight for i in (0, 2, 4, 6)]
    refs = [torch.randn_like(w) * 0.01 for w in dec]

    def double_backward():
        model.zero_grad(set_to_none=True)
        mse = F.mse_loss(model(x), x)
        g = torch.autograd.grad(mse, dec, create_graph=True)
        cos = sum(F.cosine_similarity(gl.flatten(), rl.flatten(), dim=0) for gl, rl in zip(g, refs))
        j = mse - ALPHA / 4 * cos
        j.backward()

    def batched_backward():
        model.zero_grad(set_to_none=True)
        F.mse_loss(model(x), x).backward()

    params = {k: v.detach() for k, v in model.named_parameters()}
    names = [f"up.{i}.weight" for i in (0, 2, 4, 6)]

    def loss_one(p, xi):
        xi = xi.unsqueeze(0)
        return F.mse_loss(functional_call(model, p, (xi,)), xi)

    per_grad = vmap(grad(loss_one), in_dims=(None, 0))

    def per_example_dot_norm():
        g = per_grad(params, x)
        out = []
        for n, r in zip(names, refs):
            gn = g[n].flatten(1)
            out.append(((gn @ r.flatten()), (gn * gn).sum(1)))
        return out

    def per_example_loop():
        for i in range(BATCH):
            model.zero_grad(set_to_none=True)
            xi = x[i:i + 1]
            gs = torch.autograd.grad(F.mse_loss(model(xi), xi), dec)
            for gl, r in zip(gs, refs):
                (gl * r).sum().item()
                (gl * gl).sum().item()

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}")
    for name, fn in [
        ("forward_double_backward", double_backward),
        ("batched_backward_mse", batched_backward),
        ("per_example_dot_and_norm_decoder (vmap)", per_example_dot_norm),
        ("per_example_dot_and_norm_decoder (batch-of-one loop)", per_example_loop),
    ]:
        print(f"{name}: median {median_ms(fn, args.repeats):.2f} ms")


if __name__ == "__main__":
    main()
