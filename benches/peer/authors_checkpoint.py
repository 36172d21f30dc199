#!/usr/bin/env python3
"""Converts between this project's safetensors files and the authors' checkpoint layout.

The authors' training script saves `torch.save({"state_dict": ..., "ref_grad": [m0, m1, m2, m3]})`
where `state_dict` is the (often `nn.DataParallel`, so `module.`-prefixed) model's and each `m_l`
is a running-average object with `avg`, `sum`, `count` and `val`: `avg` is the reference gradient
of decoder layer l and `count` the number of updates it averages.

  to-authors   --model M.safetensors [--refs M.ref_grad.safetensors] --out ckpt.pth [--data-parallel]
  from-authors --checkpoint ckpt.pth --out M.safetensors
  check-strict --weights W.safetensors   load W into the authors' module with strict=True
  selftest     [--gradcon target/release/gradcon]   build an authors' checkpoint, convert both
               ways, score it with gradcon and with PyTorch, load an `export --torch` strictly

`to-authors` sets `sum = avg * count` and `val = avg` (the last update is not kept by this
project). Needs torch and safetensors (see README.md beside this file).
"""
import argparse
import io
import os
import pickle
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradcon as peer  # noqa: E402


class AverageMeter:
    """The authors' running average: `update(val, n)` adds `n` copies of `val`."""

    def __init__(self):
        self.val, self.avg, self.sum, self.count = 0, 0, 0, 0

    def update(self, val, n=1):
        self.val = val
        self.sum = self.sum + val * n
        self.count += n
        self.avg = self.sum / self.count


class _AnyMeter:
    """Stands in for whatever class the authors' pickle names for its meters."""

    def __setstate__(self, state):
        self.__dict__.update(state)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith(("torch", "collections", "numpy", "builtins", "_codecs")):
            return super().find_class(module, name)
        return _AnyMeter


class _PickleModule:
    Unpickler = _Unpickler
    load = pickle.load


def load_authors(path):
    ck = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule)
    sd = {k.removeprefix("module."): v for k, v in ck["state_dict"].items()}
    meters = ck["ref_grad"]
    ref = [torch.as_tensor(m.avg).float().contiguous() for m in meters]
    counts = {int(m.count) for m in meters}
    if len(meters) != 4 or len(counts) != 1:
        raise SystemExit(f"{path}: expected 4 meters with one count, found {len(meters)}, {counts}")
    return sd, ref, counts.pop()


def to_authors(model_path, refs_path, out, data_parallel):
    sd = load_file(model_path)
    if refs_path:
        sd.update(load_file(refs_path))
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    count = int(sd.pop("ref_grad_count").item()) if "ref_grad_count" in sd else 0
    meters = []
    for l in range(4):
        m = AverageMeter()
        r = sd.pop(f"ref_grad.{l}")
        m.avg, m.sum, m.count, m.val = r, r * count, count, r
        meters.append(m)
    prefix = "module." if data_parallel else ""
    torch.save({"state_dict": {prefix + k: v for k, v in sd.items()}, "ref_grad": meters}, out)


def from_authors(path, out):
    sd, ref, count = load_authors(path)
    for l, r in enumerate(ref):
        sd[f"ref_grad.{l}"] = r
    sd["ref_grad_count"] = torch.tensor(count, dtype=torch.int64)
    save_file({k: v.contiguous() for k, v in sd.items()}, out)


def check_strict(path):
    sd = load_file(path)
    c = sd["module.down.0.weight" if "module.down.0.weight" in sd else "down.0.weight"].shape[1]
    model = peer.GradConAE(c)
    if any(k.startswith("module.") for k in sd):
        model = torch.nn.DataParallel(model)
    model.load_state_dict(sd, strict=True)  # raises on a missing or unexpected key
    print(f"{path}: loaded strictly into {type(model).__name__} ({len(sd)} tensors)")


def selftest(gradcon):
    work = tempfile.mkdtemp(prefix="gradcon-authors-")
    torch.manual_seed(0)
    model = torch.nn.DataParallel(peer.GradConAE(1))
    meters = []
    for w in model.module.grad_layers():
        m = AverageMeter()
        for _ in range(3):
            m.update(torch.randn_like(w) * 1e-3)
        meters.append(m)
    authors = os.path.join(work, "authors.pth")
    torch.save({"state_dict": model.state_dict(), "ref_grad": meters, "epoch": 7}, authors)
    ours = os.path.join(work, "ours.safetensors")
    from_authors(authors, ours)
    back = os.path.join(work, "back.pth")
    to_authors(ours, None, back, data_parallel=True)
    a, b = load_authors(authors), load_authors(back)
    assert a[2] == b[2] == 3, (a[2], b[2])
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0]), "state dicts differ"
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1])), "reference gradients differ"
    # Scores: gradcon on the converted file against PyTorch on the authors' checkpoint.
    imgs = (torch.rand(8, 28, 28) * 255).to(torch.uint8).numpy()
    idx = os.path.join(work, "x.idx")
    peer.write_idx(idx, imgs)
    out = subprocess.run([gradcon, "score", "--model", ours, idx], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()
    col = out[0].split(",").index("gradcon")
    rust = [float(line.split(",")[col]) for line in out[1:]]
    sd, ref, _ = load_authors(authors)
    m = peer.GradConAE(1)
    m.load_state_dict(sd)
    torch_scores = [s[0] for s in peer.score_batch_of_one(m, ref, peer.to_tensor(imgs))]
    worst = max(abs(x - y) for x, y in zip(rust, torch_scores)) / max(abs(y) for y in torch_scores)
    print(f"scores of the converted checkpoint: max relative difference {worst:.2e}")
    assert worst < 1e-5, worst
    # `gradcon export --torch` (plain and --data-parallel) loads strictly.
    for extra in ([], ["--data-parallel"]):
        w = os.path.join(work, f"torch{len(extra)}.safetensors")
        subprocess.run([gradcon, "export", "--model", ours, "--out", w, "--torch", *extra], check=True)
        check_strict(w)
        assert os.path.exists(w.replace(".safetensors", ".ref_grad.safetensors"))
    print("SELFTEST OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("to-authors")
    p.add_argument("--model", required=True)
    p.add_argument("--refs")
    p.add_argument("--out", required=True)
    p.add_argument("--data-parallel", action="store_true")
    p = sub.add_parser("from-authors")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("check-strict")
    p.add_argument("--weights", required=True)
    p = sub.add_parser("selftest")
    p.add_argument("--gradcon", default="target/release/gradcon")
    a = ap.parse_args()
    if a.cmd == "to-authors":
        to_authors(a.model, a.refs, a.out, a.data_parallel)
    elif a.cmd == "from-authors":
        from_authors(a.checkpoint, a.out)
    elif a.cmd == "check-strict":
        check_strict(a.weights)
    else:
        selftest(a.gradcon)


if __name__ == "__main__":
    main()
