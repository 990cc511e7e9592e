"""RISE: randomised input sampling for explanation (Petsiuk et al. 2018), model-agnostic.

Saliency = E[score(x ⊙ M) · M] / E[M] over random masks M: small binary grids, upsampled
bilinearly with a random sub-cell shift. Only forward passes; the model is treated as a
black box, which makes it a useful second opinion beside gradient-based maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import Cancelled
from core.explain.targets import ClassTarget, Target, per_sample_scores


def random_masks(n: int, size: int, *, cells: int = 7, p: float = 0.5, generator: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size) soft masks in [0, 1]."""
    cell = int(np.ceil(size / cells))
    grid = (torch.rand(n, 1, cells, cells, generator=generator) < p).float()
    up = F.interpolate(grid, size=((cells + 1) * cell, (cells + 1) * cell), mode="bilinear", align_corners=False)
    dx, dy = torch.randint(0, cell, (2, n), generator=generator)
    masks = torch.stack([up[i, :, dy[i] : dy[i] + size, dx[i] : dx[i] + size] for i in range(n)])
    return masks.clamp_(0.0, 1.0)


@torch.no_grad()
def rise(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: Target | Sequence[Target] | None = None,
    *,
    n_masks: int = 1000,
    batch_size: int = 50,
    p: float = 0.5,
    seed: int = 0,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Saliency maps (B, H, W) float32 (unnormalised) for a batch (B, C, H, W)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    size = inputs.shape[-1]
    masks = random_masks(n_masks, size, p=p, generator=generator).to(inputs.device)
    out = []
    for i, x in enumerate(inputs):
        if targets is None:
            one: Target = ClassTarget(int(model(x[None]).argmax(1)))
        else:
            one = targets if callable(targets) else targets[i]
        total = torch.zeros(size, size, device=inputs.device)
        for start in range(0, n_masks, batch_size):
            if cancel is not None and cancel():
                raise Cancelled("RISE cancelled")
            m = masks[start : start + batch_size]
            target_scores = per_sample_scores(torch.softmax(model(x[None] * m), 1), one)
            total += (target_scores.view(-1, 1, 1) * m[:, 0]).sum(0)
        out.append((total / (n_masks * p)).cpu().numpy())
    return np.stack(out).astype(np.float32)
