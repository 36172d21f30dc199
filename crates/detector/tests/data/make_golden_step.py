"""Writes golden_step.safetensors.gz: three GradCon training steps and the scores, in PyTorch.

Inputs follow exact formulas that crates/detector/tests/golden_step.rs recomputes:
  parameter p (0..15 in state_dict order), element i, of a layer with fan-in f:
      u = ((i * 2654435761 + p * 40503) mod 2^32) / 2^32;  value = f32((2u - 1) / sqrt(f))
  ref_grad.l (l = 0..3), element i: f32((((i * 40503 + 17 l) mod 1024) / 1024 - 0.5) * 2e-3),
  ref_grad_count 5 (so every step has the second-order term)
  image n (0..15) of 1x28x28, pixel i: r = ((i * 2654435761 + n * 97) mod 2^32) >> 24,
      value = r^3 // 65025 (u8), fed as value / 255
Then three steps of the peer's Trainer (Adam, lr 1e-3, alpha 0.03) on the batch, and the
authors' batch-of-one scores (beta 0.12) of the batch under the final weights.
Output: the 16 parameters and ref_grad.0..3 after the steps (f32), ref_grad_count (int64),
`scores` (f64, [16, 3]: gradcon, recon, grad).
Run from the repository root: python crates/detector/tests/data/make_golden_step.py
(needs torch, numpy and safetensors).
"""
import gzip
import os
import sys

import numpy as np
import torch
from safetensors.torch import save

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../benches/peer"))
import gradcon as peer  # noqa: E402

torch.use_deterministic_algorithms(True)
model = peer.GradConAE(1)
with torch.no_grad():
    for p, t in enumerate(model.state_dict().values()):
        n = t.numel()
        fan_in = t.shape[1] * 16 if t.dim() == 4 else None
        if fan_in is None:  # a bias: the fan-in of its layer's weight
            fan_in = prev_fan_in
        prev_fan_in = fan_in
        i = np.arange(n, dtype=np.uint64)
        u = ((i * np.uint64(2654435761) + np.uint64(p * 40503)) % np.uint64(2**32)).astype(np.float64) / 2**32
        t.copy_(torch.from_numpy(((2 * u - 1) / np.sqrt(float(fan_in))).astype(np.float32)).reshape(t.shape))
ref = []
for l, w in enumerate(model.grad_layers()):
    i = np.arange(w.numel(), dtype=np.int64)
    r = (((i * 40503 + 17 * l) % 1024) / 1024 - 0.5) * 2e-3
    ref.append(torch.from_numpy(r.astype(np.float32)).reshape(w.shape))
imgs = []
for n in range(16):
    i = np.arange(784, dtype=np.uint64)
    r = ((i * np.uint64(2654435761) + np.uint64(n * 97)) % np.uint64(2**32)) >> np.uint64(24)
    imgs.append((r ** 3 // 65025).astype(np.uint8).reshape(1, 28, 28))
x = torch.from_numpy(np.stack(imgs)).float() / 255

trainer = peer.Trainer(model, ref=ref, ref_count=5)
for _ in range(3):
    trainer.step(x)
scores = peer.score_batch_of_one(model, trainer.ref, x)
sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
for l, r in enumerate(trainer.ref):
    sd[f"ref_grad.{l}"] = r.detach().contiguous()
sd["ref_grad_count"] = torch.tensor(trainer.k, dtype=torch.int64)
sd["scores"] = torch.tensor(scores, dtype=torch.float64)
out = os.path.join(os.path.dirname(__file__), "golden_step.safetensors.gz")
with open(out, "wb") as f:
    f.write(gzip.compress(save(sd), mtime=0))
print("wrote", out, "ref_grad_count", trainer.k, "scores[0]", scores[0])
