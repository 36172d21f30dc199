#!/usr/bin/env python3
"""Parity of gradcon-rs with PyTorch on identical weights (run on request, never in CI).

For C in {1, 3}: writes a random initialisation with reference gradients (count > 0) and one
batch of 64 images; trains 3 steps on that batch with both engines (`gradcon train --images ...
--init ... --no-shuffle --val-fraction 0 --epochs 3` and `gradcon.py parity`); compares, per
tensor, the relative error of the weight update and of the reference gradients; then scores
the batch with both and compares the per-image scores.

Usage: python parity.py [--gradcon PATH_TO_BINARY] [--workdir DIR]
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradcon as peer  # noqa: E402


def write_images(path, images_u8):
    """1 channel: an IDX file; 3 channels: a CIFAR-10 batch of 32x32 images (resized by both)."""
    if images_u8.shape[1] == 1:
        peer.write_idx(path, images_u8[:, 0])
    else:
        with open(path, "wb") as f:
            for img in images_u8:
                f.write(bytes([0]) + img.tobytes())


def model_input(images_u8):
    """What both engines train on: 28x28, CIFAR-size images resized with PIL's Lanczos."""
    if images_u8.shape[1] == 1:
        return peer.to_tensor(images_u8[:, 0])
    out = np.stack([
        np.stack([np.asarray(Image.fromarray(ch).resize((28, 28), Image.LANCZOS)) for ch in img])
        for img in images_u8
    ])
    return torch.from_numpy(out.astype(np.float32) / 255.0)


def rel(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gradcon", default="target/release/gradcon")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="gradcon-parity-")
    os.makedirs(work, exist_ok=True)
    worst = {}
    for c in (1, 3):
        torch.manual_seed(100 + c)
        rng = np.random.default_rng(c)
        side = 28 if c == 1 else 32
        # Smooth random images (blurred noise), so that the reconstruction is not trivial.
        raw = rng.random((64, c, side, side)) ** 3
        images = (raw * 255).round().astype(np.uint8)
        img_path = os.path.join(work, f"images_c{c}" + (".idx" if c == 1 else ".bin"))
        write_images(img_path, images)
        model = peer.GradConAE(c)
        x = model_input(images).reshape(64, c, 28, 28)
        # Reference gradients with history: the gradient of a few steps' worth of batches.
        ref = [torch.randn_like(w) * 1e-3 for w in model.grad_layers()]
        init = os.path.join(work, f"init_c{c}.safetensors")
        peer.save_safetensors(init, model, ref, 5)
        w0 = {k: v.clone() for k, v in load_file(init).items()}

        ours = os.path.join(work, f"rust_c{c}.safetensors")
        subprocess.run([a.gradcon, "--quiet", "train", "--images", img_path, "--channels", str(c),
                        "--init", init, "--no-shuffle", "--val-fraction", "0", "--epochs", str(a.steps),
                        "--out", ours], check=True)
        for f in (ours.replace(".safetensors", ".ckpt"),):
            if os.path.exists(f):
                os.remove(f)

        m, r, k = peer.load_safetensors(init, c)
        tr = peer.Trainer(m, ref=r, ref_count=k)
        for _ in range(a.steps):
            tr.step(x)
        theirs = os.path.join(work, f"torch_c{c}.safetensors")
        peer.save_safetensors(theirs, m, tr.ref, tr.k)

        A, B = load_file(ours), load_file(theirs)
        print(f"C={c}: ref_grad_count rust {int(A['ref_grad_count'])} torch {int(B['ref_grad_count'])}")
        for name in sorted(B):
            if name == "ref_grad_count":
                continue
            if name.startswith("ref_grad"):
                e = rel(A[name], B[name])
                kind = "ref"
            else:
                e = rel(A[name] - w0[name], B[name] - w0[name])
                kind = "update"
            worst[(c, kind)] = max(worst.get((c, kind), 0.0), e)
            print(f"  {name:16s} relative error of the {kind}: {e:.2e}")

        out = subprocess.run([a.gradcon, "score", "--model", theirs, img_path], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()
        cols = [out[0].split(",").index(k) for k in ("gradcon", "recon", "grad")]
        rust_scores = np.array([[float(line.split(",")[i]) for i in cols] for line in out[1:]])
        mt, rt, _ = peer.load_safetensors(theirs, c)
        torch_scores = np.array(peer.score_batch_of_one(mt, rt, x))
        scale = np.abs(torch_scores[:, 0]).max()
        diff = np.abs(rust_scores - torch_scores).max() / scale
        worst[(c, "score")] = diff
        print(f"  scores: max |rust - torch| / max |score| = {diff:.2e}")
    print("worst:", {f"C={c} {k}": f"{v:.2e}" for (c, k), v in worst.items()})
    ok = all(v < {"update": 1e-2, "ref": 1e-3, "score": 1e-4}[k] for (_, k), v in worst.items())
    print("PARITY", "OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
