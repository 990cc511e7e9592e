"""Per-slice probabilities, batched over a whole study, and a study verdict from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.datasets import Dataset, Sample
from core.errors import Cancelled, CTLensError
from core.preprocess import Preprocessing, prepare_batch

RULES = ("max", "topk", "fraction")


@torch.no_grad()
def predict_slices(
    model: nn.Module,
    prep: Preprocessing,
    load: Callable[[int], tuple[np.ndarray, str]],
    count: int,
    *,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Class probabilities (count, K) float32; ``load(i)`` gives slice i's model pixels (see
    :func:`~core.preprocess.stack_input`) and unit.

    Slices go through the model ``batch_size`` at a time, with float16 autocast on CUDA.
    """
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, count, batch_size):
        if cancel is not None and cancel():
            raise Cancelled("diagnosis cancelled")
        items = [load(i) for i in range(start, min(start + batch_size, count))]
        x = prepare_batch([p for p, _ in items], [u for _, u in items], prep).to(device)
        autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
        with autocast:
            logits = model(x)
        out.append(torch.softmax(logits.float(), 1).cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, count), count)
    return np.concatenate(out) if out else np.zeros((0, 2), np.float32)


def predict_samples(model: nn.Module, prep: Preprocessing, dataset: Dataset, samples: Sequence[Sample], *,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:  # fmt: skip
    """Class probabilities (N, K) of a dataset's ``samples`` (see :func:`predict_slices`)."""

    def load(i: int) -> tuple[np.ndarray, str]:
        image = dataset.load_input(samples[i], prep)
        return image.pixels, image.unit

    return predict_slices(model, prep, load, len(samples), progress=progress)


@dataclass(frozen=True)
class StudyVerdict:
    """``positive`` when the rule's score reaches 0.5; ``suspicious`` = slice indices, most first."""

    positive: bool
    score: float
    rule: str
    suspicious: tuple[int, ...]

    def describe(self) -> str:
        return f"{'COVID lesion' if self.positive else 'no lesion'} (score {self.score:.2f}, rule {self.rule})"


def study_verdict(
    probs: np.ndarray | Sequence[float],
    rule: str = "topk",
    *,
    k: int = 3,
    cutoff: float = 0.5,
    min_fraction: float = 0.05,
    top: int = 5,
) -> StudyVerdict:
    """Combine per-slice lesion probabilities ``probs`` (N,) into a study verdict.

    Rules: ``max`` — the highest slice probability; ``topk`` — the mean of the ``k`` highest
    (robust to one noisy slice); ``fraction`` — the fraction of slices above ``cutoff``,
    scaled so that ``min_fraction`` of the study maps to a score of 0.5.
    """
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size == 0:
        raise CTLensError("no slices to diagnose")
    if not np.isfinite(p).all():
        raise CTLensError(f"{int((~np.isfinite(p)).sum())} of {p.size} slice probabilities are NaN or infinite: "
                          "no verdict")  # fmt: skip
    order = np.argsort(-p, kind="stable")
    if rule == "max":
        score = float(p[order[0]])
    elif rule == "topk":
        score = float(p[order[: max(1, k)]].mean())
    elif rule == "fraction":
        score = min(1.0, float(np.mean(p > cutoff)) * 0.5 / min_fraction)
    else:
        raise CTLensError(f"unknown verdict rule {rule!r} ({', '.join(RULES)})")
    share = f"{np.mean(p > cutoff):.0%} of slices above {cutoff:g}; positive from {min_fraction:.0%}"
    names = {"max": "max", "topk": f"mean of top {k}", "fraction": share}
    label = names[rule]
    return StudyVerdict(score >= 0.5, score, label, tuple(int(i) for i in order[:top]))
