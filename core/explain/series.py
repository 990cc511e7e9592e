"""Diagnose and explain a whole series in one batched pass per chunk of slices.

The CAM pass yields the logits too, so diagnosis comes for free. Raw maps are kept at the
layer's resolution: re-thresholding, colour maps and overlay visibility work from them (or
from :meth:`SeriesExplanation.heatmap`) without running the network again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn

from core.errors import Cancelled, StudyReadError
from core.explain.cam import heatmaps_on_grid
from core.explain.methods import explain_batch
from core.explain.targets import ClassTarget
from core.io.series import Series
from core.model.card import ModelCard
from core.preprocess import prepare_batch, resize_maps, stack_input


@dataclass(frozen=True)
class SeriesExplanation:
    probabilities: np.ndarray  # (N, K) float32; NaN rows for unreadable slices
    raw: np.ndarray  # (N, h, w) float32, >= 0, unnormalised; zeros for unreadable slices
    method: str
    target: int
    unreadable: dict[int, str] = field(default_factory=dict)  # slice index -> why it could not be read

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
    on_chunk: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> SeriesExplanation:
    """Probabilities and raw maps for every slice; ``target`` defaults to the COVID class.

    A slice that cannot be read (a truncated or corrupt file) is left out and named in
    :attr:`SeriesExplanation.unreadable`; an unreadable neighbour of a 2.5-D input is replaced by
    the slice itself, as at the ends of the series. No readable slice at all is a StudyReadError.
    ``on_chunk(indices, probabilities, raw)`` receives each batch's results as soon as they exist
    (a viewer shows them slice by slice).
    """
    if target is None:
        target = card.positive_index
    device = next(model.parameters()).device
    n = len(series)
    unreadable: dict[int, str] = {}
    done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    indices: list[int] = []
    pixels: list[np.ndarray] = []
    for i in range(n):
        if cancel is not None and cancel():
            raise Cancelled("explanation cancelled")
        try:
            pixels.append(stack_input(partial(_slice_or_own, series, own=i), i, n, card.preprocessing))
            indices.append(i)
        except StudyReadError as exc:
            unreadable[i] = str(exc)
        if len(indices) == batch_size or (i == n - 1 and indices):
            x = prepare_batch(pixels, series.info.unit, card.preprocessing).to(device)
            raw, logits = explain_batch(model, x, method, ClassTarget(target), layer)
            chunk = (np.asarray(indices), torch.softmax(torch.from_numpy(logits), 1).numpy(), raw)
            done.append(chunk)
            if on_chunk is not None:
                on_chunk(*chunk)
            indices, pixels = [], []
        if progress is not None and (not indices or i == n - 1):
            progress(i + 1, n)
    if not done:
        raise StudyReadError(f"no slice of {series.info.description} can be read: {next(iter(unreadable.values()))}")
    probabilities = np.full((n, done[0][1].shape[1]), np.nan, np.float32)
    maps = np.zeros((n, *done[0][2].shape[1:]), np.float32)
    for idx, probs, raw in done:
        probabilities[idx], maps[idx] = probs, raw
    return SeriesExplanation(probabilities, maps, method, target, unreadable)


def _slice_or_own(series: Series, index: int, own: int) -> np.ndarray:
    """Slice ``index``, or slice ``own`` in its place when it cannot be read."""
    try:
        return series.slice(index)
    except StudyReadError:
        if index == own:
            raise
        return series.slice(own)
