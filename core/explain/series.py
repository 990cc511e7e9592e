"""Diagnose and explain a whole series in one batched pass per chunk of slices.

The CAM pass yields the logits too, so diagnosis comes for free. Raw maps are kept at the
layer's resolution: re-thresholding, colour maps and overlay visibility work from them (or
from :meth:`SeriesExplanation.heatmap`) without running the network again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.errors import Cancelled
from core.explain.cam import heatmaps_on_grid
from core.explain.methods import explain_batch
from core.explain.targets import ClassTarget
from core.io.series import Series
from core.model.card import ModelCard
from core.preprocess import prepare_batch, resize_maps, stack_input


@dataclass(frozen=True)
class SeriesExplanation:
    probabilities: np.ndarray  # (N, K) float32
    raw: np.ndarray  # (N, h, w) float32, >= 0, unnormalised
    method: str
    target: int

    def heatmap(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """Slice ``index``'s heatmap on its pixel grid, min-max normalised to [0, 1]."""
        return heatmaps_on_grid(self.raw[index : index + 1], shape)[0]

    def heatmap_on_study_scale(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """The same map divided by the study's largest raw value, so slices compare on one scale."""
        peak = float(self.raw.max()) or 1.0
        resized = resize_maps(torch.from_numpy(self.raw[index : index + 1])[:, None], shape)[0, 0]
        return np.clip(resized.numpy() / peak, 0.0, 1.0)


def explain_series(
    model: nn.Module,
    card: ModelCard,
    series: Series,
    *,
    method: str = "gradcam",
    target: int | None = None,
    layer: str | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> SeriesExplanation:
    """Probabilities and raw maps for every slice; ``target`` defaults to the COVID class.

    ``on_chunk(start, probabilities, raw)`` receives each batch's results as soon as they exist
    (a viewer shows them slice by slice).
    """
    if target is None:
        target = card.positive_index
    device = next(model.parameters()).device
    probs, maps = [], []
    n = len(series)
    for start in range(0, n, batch_size):
        if cancel is not None and cancel():
            raise Cancelled("explanation cancelled")
        idx = range(start, min(start + batch_size, n))
        pixels = [stack_input(series.slice, i, n, card.preprocessing) for i in idx]
        x = prepare_batch(pixels, series.info.unit, card.preprocessing).to(device)
        raw, logits = explain_batch(model, x, method, ClassTarget(target), layer)
        probs.append(torch.softmax(torch.from_numpy(logits), 1).numpy())
        maps.append(raw)
        if on_chunk is not None:
            on_chunk(start, probs[-1], raw)
        if progress is not None:
            progress(idx.stop, n)
    return SeriesExplanation(np.concatenate(probs), np.concatenate(maps), method, target)
