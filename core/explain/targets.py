"""What to explain: a callable from logits (B, K) to one score per sample (B,)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Target = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ClassTarget:
    """The pre-softmax score of class ``index`` (Grad-CAM's y^c, Wan et al. Eq. 7)."""

    index: int

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.index]


def per_sample_scores(logits: torch.Tensor, targets: Target | Sequence[Target] | None) -> torch.Tensor:
    """(B,) scores: one target for all samples, one per sample, or the predicted class."""
    if targets is None:
        return logits.gather(1, logits.argmax(1, keepdim=True))[:, 0]
    if callable(targets):
        return targets(logits)
    if len(targets) != logits.shape[0]:
        raise ValueError(f"{len(targets)} targets for a batch of {logits.shape[0]}")
    return torch.stack([t(logits[i : i + 1])[0] for i, t in enumerate(targets)])
