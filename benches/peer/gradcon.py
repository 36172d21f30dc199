#!/usr/bin/env python3
"""PyTorch peer of gradcon-rs: GradCon (Kwon et al., ECCV 2020) as the project's PAPER.md states it.

Written for side-by-side runs with the Rust engine: the same model, loss, reference-gradient
update, Adam, validation selection, scoring and one-class protocol. It never runs in CI.

Subcommands:
  bench     training-step time and scoring throughput (batch-of-one loop and torch.func.vmap)
  protocol  the one-class protocol on MNIST / Fashion-MNIST (IDX files), AUROC per class
  parity    N training steps on one batch from a .safetensors initialisation; writes the result
  score     per-image scores of a .safetensors model on IDX images (for parity of scores)
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALPHA, BETA, EPS = 0.03, 0.12, 1e-8


class GradConAE(nn.Module):
    """Encoder `down` and decoder `up` with the authors' module names (PAPER.md, Model)."""

    def __init__(self, c):
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 2), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 2), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 2), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 2), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 2), nn.ReLU(), nn.ConvTranspose2d(32, c, 4, 2, 1), nn.Sigmoid())

    def forward(self, x):
        return self.up(self.down(x))

    def grad_layers(self):
        return [self.up[i].weight for i in (0, 2, 4, 6)]


def cos(a, b):
    """PyTorch 2.x cosine_similarity of two flattened tensors."""
    return F.cosine_similarity(a.reshape(-1), b.reshape(-1), dim=0, eps=EPS)


def gradcon_loss(model, x, ref, alpha, create_graph=True):
    """(J, mse, L_grad): J = mse + alpha * L_grad, L_grad = -(1/4) sum_l cos(dmse/dW_l, r_l)."""
    mse = F.mse_loss(model(x), x)
    if ref is None or alpha == 0:
        return mse, mse, torch.zeros(())
    g = torch.autograd.grad(mse, model.grad_layers(), create_graph=create_graph)
    lgrad = -sum(cos(gl, rl) for gl, rl in zip(g, ref)) / 4
    return mse + alpha * lgrad, mse, lgrad


class Trainer:
    """Model, Adam and the running mean of the decoder-weight gradients of J."""

    def __init__(self, model, lr=1e-3, alpha=ALPHA, ref=None, ref_count=0):
        self.model, self.alpha = model, alpha
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
        self.ref, self.k = ref, ref_count

    def step(self, x):
        self.opt.zero_grad(set_to_none=True)
        J, mse, lgrad = gradcon_loss(self.model, x, self.ref if self.k > 0 else None, self.alpha)
        J.backward()
        g = [w.grad.detach().clone() for w in self.model.grad_layers()]
        self.ref = g if self.k == 0 else [(r * self.k + gl) / (self.k + 1) for r, gl in zip(self.ref, g)]
        self.k += 1
        self.opt.step()
        return float(J.detach()), float(mse.detach())

    def validate(self, images, batch=64):
        """J, mse and reconstruction statistics over consecutive batches, weighted by batch size."""
        tot_j = tot_mse = 0.0
        recons = []
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            J, mse, _ = gradcon_loss(self.model, x, self.ref if self.k > 0 else None, self.alpha, create_graph=False)
            tot_j += float(J) * len(x)
            tot_mse += float(mse) * len(x)
            with torch.no_grad():
                recons.append(self.model(x))
        r = torch.cat(recons)
        spread = float(r.std(0).mean() / images.std(0).mean().clamp_min(1e-12))
        dsig = float((r * (1 - r)).mean())
        return tot_j / len(images), tot_mse / len(images), spread, dsig


def score_batch_of_one(model, ref, images, beta=BETA):
    """Scores image by image, as the authors' code does: (gradcon, recon, grad) per image."""
    out = []
    for x in images:
        x = x.unsqueeze(0)
        mse = F.mse_loss(model(x), x)
        g = torch.autograd.grad(mse, model.grad_layers())
        c = float(sum(cos(gl, rl) for gl, rl in zip(g, ref)) / 4)
        l = float(mse.detach())
        out.append((-l + beta * c, -l, c))
    return out


def score_vmap(model, ref, images, beta=BETA, chunk=64):
    """Per-example gradients with torch.func.vmap(grad(...)) over chunks of images."""
    from torch.func import functional_call, grad, vmap
    names = [f"up.{i}.weight" for i in (0, 2, 4, 6)]
    params = {k: v.detach() for k, v in model.named_parameters()}
    dec = {k: params[k] for k in names}
    rest = {k: v for k, v in params.items() if k not in names}

    def loss(d, x):
        x = x.unsqueeze(0)
        return F.mse_loss(functional_call(model, {**rest, **d}, (x,)), x)

    def per_example(d, x):
        g, l = grad(loss, has_aux=False)(d, x), loss(d, x)
        c = sum(cos(g[k], r) for k, r in zip(names, ref)) / 4
        return l, c

    out = []
    for i in range(0, len(images), chunk):
        l, c = vmap(per_example, in_dims=(None, 0))(dec, images[i:i + chunk])
        out.extend(zip((-l + beta * c).tolist(), (-l).tolist(), c.tolist()))
    return out


# ---------------------------------------------------------------- data

def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    array = np.ascontiguousarray(array, np.uint8)
    head = struct.pack(">I", 0x800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with open(path, "wb") as f:
        f.write(head + array.tobytes())


def load(dir_, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(dir_, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(dir_, f"{prefix}-labels-idx1-ubyte.gz"))
    return x, y


def to_tensor(u8):
    t = torch.from_numpy(np.asarray(u8, np.float32) / 255.0)
    return t.unsqueeze(1) if t.ndim == 3 else t


def splits(dataset, dir_, c, seed, val_fraction=0.1):
    """Train/val/test tensors and test labels (1 = normal) per PAPER.md's protocol."""
    rng = np.random.default_rng([seed, c])
    xtr, ytr = load(dir_, "train")
    xte, yte = load(dir_, "test")
    if dataset == "fashion-mnist":
        x, y = np.concatenate([xtr, xte]), np.concatenate([ytr, yte])
        folds = {}
        for k in range(10):
            idx = np.flatnonzero(y == k)
            idx = np.random.default_rng([seed, 1000 + k]).permutation(idx)
            n = len(idx) // 5
            folds[k] = [idx[f * n:(f + 1) * n] for f in range(5)]
        tr = np.concatenate(folds[c][:3])
        va = folds[c][3]
        normal = folds[c][4]
        others = np.concatenate([folds[k][4] for k in range(10) if k != c])
        xt_pool = x
    else:
        idx = rng.permutation(np.flatnonzero(ytr == c))
        nv = int(round(val_fraction * len(idx)))
        va, tr = idx[:nv], idx[nv:]
        x = xtr
        normal = np.flatnonzero(yte == c)
        others = np.flatnonzero(yte != c)
        xt_pool = xte
    anomalies = rng.permutation(others)[:len(normal)]
    test = np.concatenate([normal, anomalies])
    labels = np.concatenate([np.ones(len(normal)), np.zeros(len(anomalies))])
    return to_tensor(x[tr]), to_tensor(x[va]), to_tensor(xt_pool[test]), labels


def auroc(scores, labels):
    """Mann-Whitney AUROC with ties counting one half."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    if np.isnan(scores).any():
        raise ValueError("NaN score")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    p, n = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - p * (p + 1) / 2) / (p * n))


# ---------------------------------------------------------------- safetensors I/O

def load_safetensors(path, c):
    from safetensors.torch import load_file
    sd = {k.removeprefix("module."): v for k, v in load_file(path).items()}
    model = GradConAE(c)
    model.load_state_dict({k: v for k, v in sd.items() if k.startswith(("down.", "up."))})
    ref = [sd[f"ref_grad.{i}"].float() for i in range(4)] if "ref_grad.0" in sd else None
    count = int(sd["ref_grad_count"].item()) if "ref_grad_count" in sd else 0
    return model, ref, count


def save_safetensors(path, model, ref, count):
    from safetensors.torch import save_file
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if ref is not None:
        for i, r in enumerate(ref):
            sd[f"ref_grad.{i}"] = r.detach().contiguous()
    sd["ref_grad_count"] = torch.tensor([count], dtype=torch.int64)
    save_file(sd, path)


# ---------------------------------------------------------------- subcommands

def median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    res = {"engine": "pytorch", "torch": torch.__version__, "threads": a.threads, "channels": a.channels}
    model = GradConAE(a.channels)
    x = torch.rand(a.batch, a.channels, 28, 28)
    res["batch"] = a.batch
    tr = Trainer(model)
    tr.step(x)  # the first step has no history; the timed ones run the double backward
    res["train_step_ms"] = median_ms(lambda: tr.step(x), a.warmup, a.reps)
    imgs = torch.rand(a.score_images, a.channels, 28, 28)
    t = time.perf_counter()
    score_batch_of_one(model, tr.ref, imgs[:128])
    res["score_loop_imgs_per_s"] = 128 / (time.perf_counter() - t)
    score_vmap(model, tr.ref, imgs[:64])
    t = time.perf_counter()
    score_vmap(model, tr.ref, imgs)
    res["score_vmap_imgs_per_s"] = len(imgs) / (time.perf_counter() - t)
    # The work both engines are credited with: PyTorch's own FLOP count of one training step
    # and of scoring one image (forward, backward to the decoder weights).
    res["train_step_gflop"] = counted_gflop(lambda: tr.step(x))
    res["score_gflop_per_img"] = counted_gflop(lambda: score_batch_of_one(model, tr.ref, imgs[:1]))
    import resource
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def counted_gflop(fn):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def train_class(dataset, dir_, c, a, log=sys.stderr):
    """Trains one class with validation selection and the restart remedy; returns AUROCs."""
    xtr, xva, xte, labels = splits(dataset, dir_, c, a.seed)
    for attempt in range(a.restarts + 1):
        torch.manual_seed(a.seed * 1_000_003 + c * 101 + attempt)
        model = GradConAE(xtr.shape[1])
        tr = Trainer(model, lr=a.lr)
        best = (math.inf, None, None, None)
        saturated = False
        gen = torch.Generator().manual_seed(a.seed * 7919 + c * 13 + attempt)
        for epoch in range(1, a.epochs + 1):
            perm = torch.randperm(len(xtr), generator=gen)
            for i in range(0, len(xtr), 64):
                tr.step(xtr[perm[i:i + 64]])
            vj, vmse, spread, dsig = tr.validate(xva)
            print(f"class {c} attempt {attempt} epoch {epoch}: val J {vj:.5f} mse {vmse:.5f} "
                  f"spread {spread:.4f} dsigmoid {dsig:.2e}", file=log, flush=True)
            if vj < best[0]:
                best = (vj, {k: v.clone() for k, v in model.state_dict().items()}, [r.clone() for r in tr.ref], epoch)
            if epoch == a.check_epoch and spread < a.spread_threshold and attempt < a.restarts:
                saturated = True
                break
        if not saturated:
            break
    model.load_state_dict(best[1])
    scores = np.array(score_vmap(model, best[2], xte))
    return {"class": c, "restarts": attempt, "best_epoch": best[3],
            "auroc": auroc(scores[:, 0], labels), "auroc_recon": auroc(scores[:, 1], labels),
            "auroc_grad": auroc(scores[:, 2], labels)}


def cmd_protocol(a):
    torch.set_num_threads(a.threads)
    dir_ = os.path.join(a.data_dir or os.environ["GRADCON_DATA"], a.dataset)
    t0 = time.time()
    rows = []
    for c in a.classes:
        r = train_class(a.dataset, dir_, c, a)
        rows.append(r)
        print(json.dumps(r), flush=True)
    out = {"engine": "pytorch", "dataset": a.dataset, "epochs": a.epochs, "seed": a.seed,
           "classes": rows, "mean_auroc": float(np.mean([r["auroc"] for r in rows])),
           "wall_s": time.time() - t0}
    print(json.dumps(out))


def cmd_parity(a):
    torch.set_num_threads(a.threads)
    model, ref, count = load_safetensors(a.init, a.channels)
    x = to_tensor(read_idx(a.images))[:64]
    if x.ndim == 3:
        x = x.unsqueeze(1)
    tr = Trainer(model, lr=a.lr, ref=ref, ref_count=count)
    for _ in range(a.steps):
        tr.step(x)
    save_safetensors(a.out, model, tr.ref, tr.k)


def cmd_score(a):
    torch.set_num_threads(a.threads)
    model, ref, _ = load_safetensors(a.model, a.channels)
    x = to_tensor(read_idx(a.images))[:a.limit]
    if x.ndim == 3:
        x = x.unsqueeze(1)
    for g, r, c in score_batch_of_one(model, ref, x):
        print(f"{g!r},{r!r},{c!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--channels", type=int, default=1)
    b.add_argument("--warmup", type=int, default=5)
    b.add_argument("--reps", type=int, default=30)
    b.add_argument("--score-images", type=int, default=1024)
    b.add_argument("--batch", type=int, default=64)
    r = sub.add_parser("protocol")
    r.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    r.add_argument("--data-dir")
    r.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    r.add_argument("--epochs", type=int, default=20)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--restarts", type=int, default=5)
    r.add_argument("--check-epoch", type=int, default=2)
    r.add_argument("--spread-threshold", type=float, default=0.05)
    r.add_argument("--threads", type=int, default=2)
    q = sub.add_parser("parity")
    q.add_argument("--init", required=True)
    q.add_argument("--images", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--channels", type=int, default=1)
    q.add_argument("--steps", type=int, default=3)
    q.add_argument("--lr", type=float, default=1e-3)
    q.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("score")
    s.add_argument("--model", required=True)
    s.add_argument("--images", required=True)
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--limit", type=int, default=256)
    s.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    {"bench": cmd_bench, "protocol": cmd_protocol, "parity": cmd_parity, "score": cmd_score}[a.cmd](a)


if __name__ == "__main__":
    main()
