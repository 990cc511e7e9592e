"""A dataset's images as points: features, projection, prediction and label per image.

The research workspace's Embeddings panel and ``ctlens embed`` share :func:`embed_dataset`:
LBP or deep (AlexNet ``features`` + ``avgpool``) features of every image, projected to 2-D or
3-D by PCA, kernel PCA or t-SNE (Wan et al. 2021, Figs 6-7), with the model's lesion
probability. Features, predictions and projections are cached on disk, so a second call with
the same dataset and checkpoint runs no network. :func:`consistency_degrees` (Grad-CAM support
region above 0.7 vs the lesion mask, Sec. 3.4) and :func:`dataset_thumbnails` (small lung-window
pictures) are computed only when a view asks for them, and cached the same way.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn

from core import embed
from core.datasets import Dataset, Sample
from core.diagnose import predict_slices
from core.errors import Cancelled, CTLensError
from core.features.extract import KINDS, cache_key, cached_features, dataset_features
from core.model.card import ModelCard
from core.overlap import DEFAULT_THRESHOLD
from core.pixels import Window
from core.preprocess import display_values

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]
Snapshot = Callable[[int, np.ndarray], None]

THUMBNAIL_SIZE = 96
_STEPS = 1000  # progress units per stage


@dataclass(frozen=True)
class EmbeddingRow:
    """One image as a point: its label (1 = COVID), the model's call and lesion probability."""

    sample: Sample
    label: int
    prediction: int
    p_lesion: float
    coords: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Embedding:
    """Every image of a dataset as a point of a ``dims``-D projection of ``features`` features.

    Attributes
    ----------
    samples : the images, in dataset order.
    labels : (N,) int64, 1 = COVID lesion, 0 = none.
    p_lesion : (N,) float32 in [0, 1], the model's probability of the lesion class.
    coords : (N, dims) float32 projection coordinates.
    feature_dims : length of the feature vectors that were projected (59 for LBP, 9216 for AlexNet).
    """

    features: str
    method: str
    dims: int
    samples: tuple[Sample, ...]
    labels: np.ndarray
    p_lesion: np.ndarray
    coords: np.ndarray
    feature_dims: int

    @property
    def predictions(self) -> np.ndarray:
        """(N,) int64, 1 where the lesion probability reaches 0.5."""
        return (self.p_lesion >= 0.5).astype(np.int64)

    def rows(self) -> list[EmbeddingRow]:
        return [
            EmbeddingRow(s, int(y), int(p >= 0.5), float(p), tuple(float(v) for v in xyz))
            for s, y, p, xyz in zip(self.samples, self.labels, self.p_lesion, self.coords, strict=True)
        ]


def _stage(progress: Progress | None, cancel: Cancel | None, index: int, count: int) -> Progress:
    """Progress of stage ``index`` of ``count`` as a share of the whole; raises Cancelled when asked."""

    def report(done: int, total: int) -> None:
        if cancel is not None and cancel():
            raise Cancelled("embedding cancelled")
        if progress is not None:
            progress(index * _STEPS + done * _STEPS // max(total, 1), count * _STEPS)

    return report


def _checkpoint_identity(checkpoint: Path) -> bytes:
    """The checkpoint's SHA-256 (as the feature cache keys it), hashed once per file version."""
    stat = Path(checkpoint).stat()
    return _digest(str(Path(checkpoint).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _digest(path: str, mtime_ns: int, size: int) -> bytes:
    return hashlib.sha256(Path(path).read_bytes()).digest()


def _cache_folder(name: str) -> Path:
    from core.demo import cache_dir

    return cache_dir() / name


def cached_predictions(model: nn.Module, card: ModelCard, checkpoint: Path, dataset: Dataset,
                       samples: Sequence[Sample], *, progress: Progress | None = None,
                       cancel: Cancel | None = None) -> np.ndarray:  # fmt: skip
    """Class probabilities (N, K) float32 of ``samples``, computed once per checkpoint and samples."""

    def load(i: int) -> tuple[np.ndarray, str]:
        image = dataset.load_input(samples[i], card.preprocessing)
        return image.pixels, image.unit

    key = cache_key("predictions", samples, _checkpoint_identity(checkpoint))
    return cached_features(_cache_folder("predictions"), key, lambda: predict_slices(
        model, card.preprocessing, load, len(samples), progress=progress, cancel=cancel))  # fmt: skip


def embed_dataset(
    dataset: Dataset, model: nn.Module, card: ModelCard, checkpoint: Path, *, features: str = "deep",
    method: str = "pca", dims: int = 2, seed: int = 0, samples: Sequence[Sample] | None = None,
    progress: Progress | None = None, cancel: Cancel | None = None, on_snapshot: Snapshot | None = None,
) -> Embedding:  # fmt: skip
    """Project ``features`` ("deep" or "lbp") of ``samples`` (default: all) with ``method`` to ``dims``-D.

    ``checkpoint`` is the file ``model`` and ``card`` were loaded from (it keys the caches).
    ``progress(done, total)`` spans the three stages (features, predictions, projection);
    ``cancel`` is polled once per batch or t-SNE iteration and raises
    :class:`~core.errors.Cancelled`; ``on_snapshot(iteration, coords (N, dims))`` receives the
    t-SNE embedding while it converges (not called when the projection comes from the cache).
    """
    if features not in KINDS:
        raise CTLensError(f"unknown features {features!r} ({', '.join(KINDS)})")
    if method not in embed.METHODS:
        raise CTLensError(f"unknown embedding {method!r} ({', '.join(embed.METHODS)})")
    samples = tuple(dataset.samples if samples is None else samples)
    step = [_stage(progress, cancel, i, 3) for i in range(3)]
    step[0](0, 1)
    key, values = dataset_features(features, model, card.preprocessing, checkpoint, dataset, samples,
                                   progress=step[0])  # fmt: skip
    step[0](1, 1)
    probs = cached_predictions(model, card, checkpoint, dataset, samples, progress=step[1], cancel=cancel)
    step[1](1, 1)
    coords = embed.cached_projection(_cache_folder("features"), key, values, method, dims, seed, progress=step[2],
                                     cancel=cancel, on_snapshot=on_snapshot)  # fmt: skip
    step[2](1, 1)
    labels = np.array([s.label for s in samples], np.int64)
    p_lesion = probs[:, card.positive_index].astype(np.float32)
    return Embedding(features, method, dims, samples, labels, p_lesion, np.asarray(coords, np.float32),
                     int(values.shape[1]))  # fmt: skip


def consistency_degrees(
    dataset: Dataset, model: nn.Module, card: ModelCard, checkpoint: Path, samples: Sequence[Sample], *,
    threshold: float = DEFAULT_THRESHOLD, batch_size: int = 16, progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> np.ndarray:  # fmt: skip
    """Per-image consistent degree |S ∩ L| / |L| (Wan et al. 2021, Sec. 3.4) of the Grad-CAM
    support region S (normalised map above ``threshold``) for the lesion class and the lesion L.

    Returns (N,) float32 in [0, 1], NaN for images without a lesion mask (or an empty one).
    Cached per checkpoint, samples and threshold.
    """
    key = cache_key(f"consistency-gradcam-{threshold:g}", samples, _checkpoint_identity(checkpoint))
    return cached_features(_cache_folder("consistency"), key, lambda: _consistency(
        dataset, model, card, samples, threshold, batch_size, progress, cancel))  # fmt: skip


def _consistency(dataset: Dataset, model: nn.Module, card: ModelCard, samples: Sequence[Sample], threshold: float,
                 batch_size: int, progress: Progress | None, cancel: Cancel | None) -> np.ndarray:  # fmt: skip
    from core.overlap import consistent_degree, support_region
    from core.research.gallery import explain_images

    out = np.full(len(samples), np.nan, np.float32)
    masks = {i: mask for i, s in enumerate(samples) if (mask := dataset.load_mask(s)) is not None and mask.any()}
    todo = list(masks)
    explained = explain_images(model, card, dataset, [samples[i] for i in todo], batch_size=batch_size,
                               masks=[masks[i] for i in todo], progress=progress, cancel=cancel)  # fmt: skip
    for i, e in zip(todo, explained, strict=True):
        assert e.mask is not None
        degree = consistent_degree(support_region(e.heatmap, threshold), e.mask)
        out[i] = np.nan if degree is None else degree
    return out


def thumbnail(pixels: np.ndarray, unit: str, window: Window, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """uint8 (size, size) picture of an image in ``window`` (gray images as they are), its longer
    side fitted to ``size`` and the rest padded black."""
    gray = (display_values(pixels, unit, window) * 255).round().astype(np.uint8)
    picture = Image.fromarray(gray)
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return np.asarray(canvas, np.uint8)


def dataset_thumbnails(dataset: Dataset, samples: Sequence[Sample], window: Window, *, size: int = THUMBNAIL_SIZE,
                       progress: Progress | None = None, cancel: Cancel | None = None) -> np.ndarray:  # fmt: skip
    """uint8 (N, size, size) :func:`thumbnail` of every sample, cached per samples, window and size."""

    def compute() -> np.ndarray:
        out = np.zeros((len(samples), size, size), np.uint8)
        for i, sample in enumerate(samples):
            if cancel is not None and cancel():
                raise Cancelled("thumbnails cancelled")
            image = dataset.load_image(sample)
            out[i] = thumbnail(image.pixels, image.unit, window, size)
            if progress is not None:
                progress(i + 1, len(samples))
        return out

    key = cache_key(f"thumbnails-{size}", samples, repr(window).encode())
    return cached_features(_cache_folder("thumbnails"), key, compute)
