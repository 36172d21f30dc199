"""Writes authors_state_dict.safetensors.gz: a GradCon state dict as PyTorch saves it.

The module mirrors the authors' layout (nn.Sequential `down` and `up`, ReLUs between, a Sigmoid
last) and is wrapped in nn.DataParallel, so every name carries the `module.` prefix. Values follow
exact formulas the Rust test recomputes:
  parameter of layer l (0..7 in state_dict order, weight and bias counted apart), element i:
      (i % 251) / 256 + l
  ref_grad.l (l = 0..3), element i: (i % 13) / 8 - l, stored as f64 for l < 3 and f16 for l = 3
  ref_grad_count: int64 scalar 7
Run with: python make_authors_state_dict.py  (needs torch and safetensors)
"""
import gzip

import torch
from safetensors.torch import save

C = 1


class GradConAE(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        k = dict(kernel_size=4, stride=2)
        self.down = torch.nn.Sequential(
            torch.nn.Conv2d(c, 32, padding=2, **k), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 32, padding=2, **k), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, padding=2, **k), torch.nn.ReLU(),
            torch.nn.Conv2d(64, 64, padding=2, **k), torch.nn.ReLU())
        self.up = torch.nn.Sequential(
            torch.nn.ConvTranspose2d(64, 64, padding=2, **k), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(64, 32, padding=1, **k), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(32, 32, padding=2, **k), torch.nn.ReLU(),
            torch.nn.ConvTranspose2d(32, c, padding=1, **k), torch.nn.Sigmoid())


model = torch.nn.DataParallel(GradConAE(C))
with torch.no_grad():
    for l, p in enumerate(model.state_dict().values()):
        p.copy_((torch.arange(p.numel()) % 251).float().reshape(p.shape) / 256 + l)
sd = dict(model.state_dict())
ups = [sd[f"module.up.{2 * l}.weight"] for l in range(4)]
for l, w in enumerate(ups):
    g = (torch.arange(w.numel()) % 13).double().reshape(w.shape) / 8 - l
    sd[f"ref_grad.{l}"] = g if l < 3 else g.half()
sd["ref_grad_count"] = torch.tensor(7, dtype=torch.int64)
with open("authors_state_dict.safetensors.gz", "wb") as f:
    f.write(gzip.compress(save(sd), mtime=0))
