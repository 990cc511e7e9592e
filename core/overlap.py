"""Agreement between an explanation heatmap and an annotated lesion (pure functions).

The support region is where the normalised heatmap exceeds a threshold (0.7 in Wan et al.
2021, Sec. 3.4); the paper's *consistent degree* is |S ∩ L| / |L|. IoU, Dice and the pointing
game (is the heatmap's maximum inside the lesion?) are reported beside it. A slice without a
lesion has no score (None), which is different from a score of 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 0.7


def support_region(heatmap: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Boolean mask of ``heatmap > threshold`` (heatmap float in [0, 1])."""
    return np.asarray(heatmap) > threshold


def consistent_degree(support: np.ndarray, lesion: np.ndarray) -> float | None:
    """|support ∩ lesion| / |lesion|, or None when the lesion is empty."""
    lesion = np.asarray(lesion, bool)
    n = int(lesion.sum())
    return None if n == 0 else float(np.logical_and(support, lesion).sum() / n)


def iou(support: np.ndarray, lesion: np.ndarray) -> float | None:
    lesion = np.asarray(lesion, bool)
    if not lesion.any():
        return None
    union = np.logical_or(support, lesion).sum()
    return float(np.logical_and(support, lesion).sum() / union)


def dice(support: np.ndarray, lesion: np.ndarray) -> float | None:
    lesion = np.asarray(lesion, bool)
    if not lesion.any():
        return None
    return float(2 * np.logical_and(support, lesion).sum() / (np.sum(support) + lesion.sum()))


def pointing_game(heatmap: np.ndarray, lesion: np.ndarray) -> bool | None:
    """Whether the heatmap's maximum (any of its maxima) falls inside the lesion.

    A flat map (e.g. an all-zero Grad-CAM) has no maximum to point with: False.
    """
    lesion = np.asarray(lesion, bool)
    if not lesion.any():
        return None
    heat = np.asarray(heatmap)
    peak = heat.max()
    return bool(peak > heat.min() and lesion[heat == peak].any())


@dataclass(frozen=True)
class OverlapScores:
    """Scores of one slice; all None when it has no lesion."""

    consistent_degree: float | None
    iou: float | None
    dice: float | None
    pointing_game: bool | None

    @property
    def has_lesion(self) -> bool:
        return self.consistent_degree is not None


def score_slice(heatmap: np.ndarray, lesion: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> OverlapScores:
    if heatmap.shape != lesion.shape:
        raise ValueError(f"heatmap {heatmap.shape} and lesion mask {lesion.shape} differ in shape")
    support = support_region(heatmap, threshold)
    return OverlapScores(
        consistent_degree(support, lesion), iou(support, lesion), dice(support, lesion), pointing_game(heatmap, lesion)
    )


@dataclass(frozen=True)
class OverlapSummary:
    """Means over the slices that have a lesion (None when there are none)."""

    slices_with_lesion: int
    consistent_degree: float | None
    iou: float | None
    dice: float | None
    pointing_game: float | None


def summarise(scores: Iterable[OverlapScores]) -> OverlapSummary:
    scored = [s for s in scores if s.has_lesion]
    if not scored:
        return OverlapSummary(0, None, None, None, None)

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    return OverlapSummary(
        len(scored),
        mean([s.consistent_degree for s in scored if s.consistent_degree is not None]),
        mean([s.iou for s in scored if s.iou is not None]),
        mean([s.dice for s in scored if s.dice is not None]),
        mean([float(bool(s.pointing_game)) for s in scored]),
    )


class ThresholdSweep:
    """One slice's overlap scores at any threshold in O(log n), for a slider that moves live.

    Sorting the heatmap's values (all, and inside the lesion) once turns |S|, |S ∩ L| for
    S = heatmap > t into two binary searches; the results equal :func:`score_slice`'s.
    """

    def __init__(self, heatmap: np.ndarray, lesion: np.ndarray) -> None:
        if heatmap.shape != lesion.shape:
            raise ValueError(f"heatmap {heatmap.shape} and lesion mask {lesion.shape} differ in shape")
        lesion = np.asarray(lesion, bool)
        self._all = np.sort(np.asarray(heatmap, np.float32), axis=None)
        self._inside = np.sort(np.asarray(heatmap, np.float32)[lesion])
        self._pointing = pointing_game(heatmap, lesion)

    def support_size(self, threshold: float) -> int:
        return int(self._all.size - np.searchsorted(self._all, np.float32(threshold), side="right"))

    def scores(self, threshold: float) -> OverlapScores:
        n_lesion = self._inside.size
        if n_lesion == 0:
            return OverlapScores(None, None, None, None)
        t = np.float32(threshold)
        both = int(n_lesion - np.searchsorted(self._inside, t, side="right"))
        support = self.support_size(threshold)
        return OverlapScores(both / n_lesion, both / (support + n_lesion - both), 2 * both / (support + n_lesion),
                             self._pointing)  # fmt: skip
