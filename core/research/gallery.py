"""Attention gallery (Wan et al. 2021, Figs 11-12): where the network looks vs the annotated lesion.

:func:`explain_images` runs one explanation method over a dataset's images batch by batch and
yields, per image, its heatmap on the image's own pixel grid; ``ctlens explain`` writes those to
disk, :func:`attention_gallery` keeps the ones with a lesion in memory. A :class:`Gallery` then
scores every image at any support-region threshold with :mod:`core.overlap`'s pure functions
(consistent degree = |S ∩ L| / |L|, S = heatmap > threshold; the paper: 60.02% mean over 500
images at 0.7), so moving the threshold re-ranks the images without running the network again.

Memory: a gallery holds, per image with a lesion, its heatmap (float32), its lesion mask (bool)
and its lung-window picture (uint8): 6 bytes a pixel, ~1.5 MB for a 512² image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.datasets import Dataset, Image2D, Sample
from core.errors import Cancelled
from core.explain.cam import heatmaps_on_grid
from core.explain.methods import explain_batch
from core.explain.targets import ClassTarget
from core.model.card import ModelCard
from core.overlap import DEFAULT_THRESHOLD, OverlapScores, OverlapSummary, score_slice, summarise
from core.preprocess import display_values, prepare_batch

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True, eq=False)
class ExplainedImage:
    """One image and its explanation.

    Attributes
    ----------
    image : the pixels (HU or gray, see :class:`~core.datasets.Image2D`).
    raw : float32 (h, w) non-negative map at the method's own resolution.
    heatmap : float32 (H, W) in [0, 1] on the image's grid (``raw`` resized, then min-max normalised).
    p_lesion : the model's probability of the lesion (positive) class.
    mask : bool (H, W) lesion annotation, or None when the image has none.
    """

    sample: Sample
    image: Image2D
    raw: np.ndarray
    heatmap: np.ndarray
    p_lesion: float
    mask: np.ndarray | None


def explain_images(
    model: nn.Module, card: ModelCard, dataset: Dataset, samples: Sequence[Sample], *, method: str = "gradcam",
    layer: str | None = None, batch_size: int = 16, masks: Sequence[np.ndarray | None] | None = None,
    progress: Progress | None = None, cancel: Cancel | None = None,
) -> Iterator[ExplainedImage]:  # fmt: skip
    """Explain the positive class for ``samples``, ``batch_size`` images per network pass, in order.

    ``masks``: the samples' lesion masks when the caller has read them already (else they are read).

    ``progress(done, len(samples))`` after each batch; ``cancel()`` is polled before each batch
    (raises :class:`~core.errors.Cancelled`).
    """
    device = next(model.parameters()).device
    positive = card.positive_index
    for start in range(0, len(samples), batch_size):
        if cancel is not None and cancel():
            raise Cancelled("explanation cancelled")
        chunk = samples[start : start + batch_size]
        images = [dataset.load_image(s) for s in chunk]
        inputs = [dataset.load_input(s, card.preprocessing) for s in chunk]
        x = prepare_batch([im.pixels for im in inputs], [im.unit for im in inputs], card.preprocessing).to(device)
        raw, logits = explain_batch(model, x, method, ClassTarget(positive), layer)
        probs = torch.softmax(torch.from_numpy(logits).float(), 1)[:, positive].numpy()
        for k, (sample, image, r, prob) in enumerate(zip(chunk, images, raw, probs, strict=True), start):
            heat = heatmaps_on_grid(r[None], image.pixels.shape)[0]
            mask = dataset.load_mask(sample) if masks is None else masks[k]
            yield ExplainedImage(sample, image, np.asarray(r, np.float32), heat, float(prob), mask)
        if progress is not None:
            progress(min(start + batch_size, len(samples)), len(samples))


@dataclass(frozen=True, eq=False)
class Gallery:
    """Heatmaps of a dataset's images that have a lesion, ready to be scored at any threshold.

    Attributes
    ----------
    samples : the images with a non-empty lesion mask, in dataset order (N of them).
    heatmaps : N float32 (H, W) in [0, 1], each on its image's grid.
    masks : N bool (H, W) lesion masks, none empty.
    pictures : N uint8 (H, W) the images in the model's display window (lung by default).
    p_lesion : float32 (N,) the model's lesion probability per image.
    without_lesion : images whose mask is empty (not scored: no lesion, not a score of 0).
    without_mask : images with no annotation at all.
    """

    method: str
    samples: tuple[Sample, ...]
    heatmaps: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]
    pictures: tuple[np.ndarray, ...]
    p_lesion: np.ndarray
    without_lesion: int = 0
    without_mask: int = 0

    def __len__(self) -> int:
        return len(self.samples)

    @functools.cached_property
    def _inside(self) -> tuple[np.ndarray, ...]:
        """Each image's heatmap values inside its lesion, sorted (for O(log n) re-scoring)."""
        return tuple(np.sort(h[m]) for h, m in zip(self.heatmaps, self.masks, strict=True))

    def consistency(self, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """float64 (N,) consistent degree |S ∩ L| / |L| per image, S = heatmap > ``threshold``;
        equal to :func:`core.overlap.consistent_degree` on each image."""
        t = np.float32(threshold)
        return np.array([(v.size - np.searchsorted(v, t, side="right")) / v.size for v in self._inside], np.float64)

    def lesion_pixels(self) -> np.ndarray:
        """int64 (N,) lesion area |L| of each image in pixels."""
        return np.array([v.size for v in self._inside], np.int64)

    def ranking(self, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """int64 (N,) image indices, most consistent first; among equals the larger lesion first (a
        sliver covered by a broad map says less than a large lesion covered), then dataset order."""
        return np.lexsort((-self.lesion_pixels(), -self.consistency(threshold))).astype(np.int64)

    def scores(self, index: int, threshold: float = DEFAULT_THRESHOLD) -> OverlapScores:
        """Consistent degree, IoU, Dice and pointing game of image ``index``."""
        return score_slice(self.heatmaps[index], self.masks[index], threshold)

    def summary(self, threshold: float = DEFAULT_THRESHOLD) -> OverlapSummary:
        """Means over the images (all have a lesion) of every overlap score at ``threshold``."""
        return summarise(self.scores(i, threshold) for i in range(len(self)))

    def histogram(self, threshold: float = DEFAULT_THRESHOLD, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(counts int64 (bins,), edges float64 (bins + 1,)) of the consistent degree over [0, 1]."""
        counts, edges = np.histogram(self.consistency(threshold), bins=bins, range=(0.0, 1.0))
        return counts.astype(np.int64), edges


def attention_gallery(
    model: nn.Module, card: ModelCard, dataset: Dataset, samples: Sequence[Sample] | None = None, *,
    method: str = "gradcam", layer: str | None = None, batch_size: int = 16, progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Gallery:  # fmt: skip
    """Explain the images of ``samples`` (default: the whole dataset) that have a lesion mask
    with a lesion in it; the others are only counted (no network pass).

    ``progress(done, total)`` counts images read for their masks, then images explained.
    """
    samples = dataset.samples if samples is None else tuple(samples)
    with_lesion, lesion_masks, without_lesion, without_mask = [], [], 0, 0
    for i, sample in enumerate(samples):
        if i % 16 == 0 and cancel is not None and cancel():
            raise Cancelled("explanation cancelled")
        mask = dataset.load_mask(sample)
        if mask is None:
            without_mask += 1
        elif not mask.any():
            without_lesion += 1
        else:
            with_lesion.append(sample)
            lesion_masks.append(mask)
    total = len(samples) + len(with_lesion)

    def explained(done: int, _: int) -> None:
        if progress is not None:
            progress(len(samples) + done, total)

    if progress is not None:
        progress(len(samples), total)
    items = list(explain_images(model, card, dataset, with_lesion, method=method, layer=layer, batch_size=batch_size,
                                masks=lesion_masks, progress=explained, cancel=cancel))  # fmt: skip
    window = card.preprocessing.window
    pictures = tuple(
        (display_values(e.image.pixels, e.image.unit, window) * 255).round().astype(np.uint8) for e in items
    )
    return Gallery(
        method, tuple(e.sample for e in items), tuple(e.heatmap for e in items),
        tuple(np.asarray(e.mask, bool) for e in items), pictures,
        np.array([e.p_lesion for e in items], np.float32), without_lesion, without_mask,
    )  # fmt: skip
