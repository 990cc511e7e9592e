"""What the viewer knows about one series' analysis: streamed probabilities and maps, overlap sweeps.

Heatmaps are made on the slice grid from the raw maps when a slice is shown (and cached for
the current slice); the threshold only re-reads precomputed :class:`ThresholdSweep` objects.
"""

from __future__ import annotations

import numpy as np

from core.explain.cam import heatmaps_on_grid
from core.overlap import OverlapScores, OverlapSummary, ThresholdSweep, summarise


class SeriesResults:
    def __init__(self, count: int, shape: tuple[int, int], positive: int) -> None:
        self.shape = shape
        self.positive = positive  # the lesion class, whatever class the maps explain
        self.probabilities = np.zeros(count, np.float32)  # of the lesion class
        self.known = np.zeros(count, bool)
        self.raw: np.ndarray | None = None  # (count, h, w) once the first chunk is in
        self.unreadable: dict[int, str] = {}  # slices the analysis could not read, and why
        self.sweeps: dict[int, ThresholdSweep] = {}
        self._heat_cache: tuple[int, np.ndarray] | None = None

    @property
    def complete(self) -> bool:
        """Every slice analysed or found unreadable."""
        return len(self.unreadable) + int(self.known.sum()) == len(self.known)

    def add_chunk(self, indices: np.ndarray, probabilities: np.ndarray, raw: np.ndarray) -> None:
        self.probabilities[indices] = probabilities[:, self.positive]
        if self.raw is None:
            self.raw = np.zeros((len(self.known), *raw.shape[1:]), np.float32)
        self.raw[indices] = raw
        self.known[indices] = True

    def known_probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """The analysed slices' indices and their lesion probabilities."""
        return np.flatnonzero(self.known), self.probabilities[self.known]

    def heatmap(self, index: int) -> np.ndarray | None:
        """Slice ``index``'s heatmap in [0, 1] on the slice grid, or None while not computed."""
        if self.raw is None or not self.known[index]:
            return None
        if self._heat_cache is None or self._heat_cache[0] != index:
            self._heat_cache = (index, heatmaps_on_grid(self.raw[index : index + 1], self.shape)[0])
        return self._heat_cache[1]

    def slice_scores(self, index: int, threshold: float) -> OverlapScores | None:
        sweep = self.sweeps.get(index)
        return None if sweep is None else sweep.scores(threshold)

    def study_summary(self, threshold: float) -> OverlapSummary:
        return summarise(sweep.scores(threshold) for sweep in self.sweeps.values())


def build_sweeps(raw: np.ndarray, masks: dict[int, np.ndarray], shape: tuple[int, int]) -> dict[int, ThresholdSweep]:
    """Threshold sweeps for the slices that have a lesion (run off the UI thread)."""
    return {i: ThresholdSweep(heatmaps_on_grid(raw[i : i + 1], shape)[0], mask) for i, mask in masks.items()}
