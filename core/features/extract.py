"""Features of a dataset's images, extracted once and cached on disk.

* ``lbp``  — 59-bin uniform LBP histograms of the display image (the model card's HU window,
  lung by default; gray images as they are), at the image's own resolution.
* ``deep`` — the input of the classifier head, batched at forward-pass speed: for AlexNet the
  9216-dim output of its feature extractor (``features`` + ``avgpool``, flattened; the paper's),
  likewise for VGG; for other networks the input of the last linear layer (ResNet-18: its 512
  globally pooled channels).

The cache key hashes the feature kind, the checkpoint's bytes (deep) or window (LBP), and the
samples' ids and files, so a second projection of the same data skips the network.
"""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_path
from core.datasets import Dataset, Sample
from core.errors import Cancelled, CTLensError
from core.features.lbp import lbp_histogram
from core.model.build import drop_head
from core.preprocess import Preprocessing, display_values, prepare_batch

KINDS = ("deep", "lbp")
Progress = Callable[[int, int], None]


def feature_extractor(model: nn.Module) -> nn.Module:
    """The part of a classifier before its head: AlexNet/VGG ``features`` + ``avgpool`` + flatten,
    any other network up to its last linear layer (a copy with that layer an identity)."""
    features, pool = getattr(model, "features", None), getattr(model, "avgpool", None)
    if isinstance(features, nn.Module) and isinstance(pool, nn.Module):
        return nn.Sequential(features, pool, nn.Flatten(1))
    return nn.Sequential(drop_head(copy.deepcopy(model)), nn.Flatten(1))


@torch.no_grad()
def deep_features(model: nn.Module, prep: Preprocessing, dataset: Dataset, samples: Sequence[Sample], *,
                  batch_size: int = 32, progress: Progress | None = None,
                  cancel: Callable[[], bool] | None = None) -> np.ndarray:  # fmt: skip
    """(N, D) float32 features; D = 9216 for AlexNet, 512 for ResNet-18."""
    extractor = feature_extractor(model).eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(samples), batch_size):
        if cancel is not None and cancel():
            raise Cancelled("feature extraction cancelled")
        images = [dataset.load_input(s, prep) for s in samples[start : start + batch_size]]
        x = prepare_batch([im.pixels for im in images], [im.unit for im in images], prep).to(device)
        out.append(extractor(x).float().cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, len(samples)), len(samples))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def lbp_features(prep: Preprocessing, dataset: Dataset, samples: Sequence[Sample], *,
                 progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> np.ndarray:  # fmt: skip
    """(N, 59) float32 uniform-LBP histograms."""
    out = np.empty((len(samples), 59), np.float32)
    for i, sample in enumerate(samples):
        if cancel is not None and cancel():
            raise Cancelled("feature extraction cancelled")
        image = dataset.load_image(sample)
        gray = (display_values(image.pixels, image.unit, prep.window) * 255).round().astype(np.uint8)
        out[i] = lbp_histogram(gray)
        if progress is not None:
            progress(i + 1, len(samples))
    return out


def cache_key(kind: str, samples: Sequence[Sample], identity: bytes) -> str:
    h = hashlib.sha256(kind.encode() + b"\0" + identity)
    for s in samples:
        h.update(f"{s.id}\0{s.path}\0{s.frame}\0".encode())
    return h.hexdigest()[:32]


def cached_features(folder: Path, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()`` once per key; later calls read ``folder/KEY.npy`` (written atomically)."""
    path = folder / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    values = compute()
    buffer = io.BytesIO()
    np.save(buffer, values)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return values


def dataset_features(
    kind: str, model: nn.Module, prep: Preprocessing, checkpoint: Path, dataset: Dataset, samples: Sequence[Sample],
    *, progress: Progress | None = None,
) -> tuple[str, np.ndarray]:  # fmt: skip
    """``kind`` ("deep" or "lbp") features of ``samples``, cached under the cache folder; (key, values)."""
    from core.demo import cache_dir

    if kind == "deep":
        key = cache_key(kind, samples, hashlib.sha256(checkpoint.read_bytes()).digest())
        return key, cached_features(cache_dir() / "features", key, lambda: deep_features(
            model, prep, dataset, samples, progress=progress))  # fmt: skip
    if kind == "lbp":
        key = cache_key(kind, samples, repr(prep.window).encode())
        return key, cached_features(cache_dir() / "features", key, lambda: lbp_features(
            prep, dataset, samples, progress=progress))  # fmt: skip
    raise CTLensError(f"unknown features {kind!r} ({', '.join(KINDS)})")
