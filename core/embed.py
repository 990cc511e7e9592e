"""2-D and 3-D embeddings of image features (the paper's Figures 6-7).

Methods: PCA, kernel PCA (linear, RBF) and t-SNE (:mod:`core.tsne`, after PCA to 50 dimensions, as
is usual for high-dimensional inputs). Features are standardised first. PCA is a randomised SVD in
torch (Halko, Martinsson & Tropp, SIAM Review 2011), so the first picture of 6,233 x 9,216 features
takes about a second. Projections are cached on disk beside the features, keyed by the features'
key, method, dimensions and seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import KernelPCA

from core.errors import CTLensError
from core.features.extract import cached_features
from core.tsne import Progress, Snapshot, tsne

METHODS = ("pca", "kpca-linear", "kpca-rbf", "tsne")
SNAPSHOT_EVERY = 10  # t-SNE iterations between snapshots: 100 frames for an animated view


def standardised(features: np.ndarray) -> torch.Tensor:
    """(N, D) float32 ``features`` with zero mean and unit variance per column (constant columns stay 0)."""
    x = torch.as_tensor(np.asarray(features, np.float32))
    std = x.std(0, correction=0)
    return (x - x.mean(0)) / torch.where(std > 0, std, 1)


def pca(x: torch.Tensor, dims: int, seed: int = 0) -> np.ndarray:
    """(N, dims) float32 principal component scores of the centred ``x`` (N, D).

    Randomised SVD with scikit-learn's 10 extra vectors and 7 (or, for many components, 4) power
    iterations; an exact SVD for small inputs. Each axis' largest loading is positive.
    """
    if min(x.shape) <= 500 or dims + 10 >= min(x.shape):
        _, _, vt = torch.linalg.svd(x, full_matrices=False)
    else:
        basis = torch.randn(x.shape[1], dims + 10, generator=torch.Generator().manual_seed(seed))
        basis = torch.linalg.qr(x @ basis).Q
        for _ in range(7 if dims < 0.1 * min(x.shape) else 4):
            basis = torch.linalg.qr(x @ torch.linalg.qr(x.T @ basis).Q).Q
        _, _, vt = torch.linalg.svd(basis.T @ x, full_matrices=False)
    axes = vt[:dims]
    axes = axes * torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    return (x @ axes.T).numpy()


def tsne_input(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, min(50, N, D)) float32: the standardised ``features`` (N, D) reduced by PCA, as t-SNE embeds them."""
    return pca(standardised(features), min(50, *np.shape(features)), seed)


def project(features: np.ndarray, method: str, dims: int, seed: int = 0, *, progress: Progress | None = None,
            cancel: Callable[[], bool] | None = None, on_snapshot: Snapshot | None = None) -> np.ndarray:  # fmt: skip
    """(N, dims) float32 coordinates of ``features`` (N, D).

    ``progress``, ``cancel`` and ``on_snapshot`` (every :data:`SNAPSHOT_EVERY` iterations, (N, dims)
    float32) follow t-SNE's iterations; the other methods finish in one step.
    """
    if method not in METHODS:
        raise CTLensError(f"unknown embedding {method!r} ({', '.join(METHODS)})")
    if dims not in (2, 3):
        raise CTLensError("embeddings have 2 or 3 dimensions")
    if len(features) <= dims:
        raise CTLensError(f"need more than {dims} images to embed, got {len(features)}")
    if method == "tsne":
        perplexity = min(30.0, (len(features) - 1) / 3)
        return tsne(tsne_input(features, seed), dims, perplexity=perplexity, seed=seed, progress=progress,
                    cancel=cancel, snapshot_every=SNAPSHOT_EVERY, on_snapshot=on_snapshot)  # fmt: skip
    if method == "pca":
        return pca(standardised(features), dims, seed)
    kernel = method.split("-", 1)[1]
    x = standardised(features).double().numpy()
    return KernelPCA(n_components=dims, kernel=kernel, random_state=seed).fit_transform(x).astype(np.float32)


def cached_projection(folder: Path, feature_key: str, features: np.ndarray, method: str, dims: int, seed: int = 0,
                      *, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
                      on_snapshot: Snapshot | None = None) -> np.ndarray:  # fmt: skip
    """:func:`project`, computed once per (features, method, dims, seed) and kept in ``folder``
    (``progress``, ``cancel`` and ``on_snapshot`` as for :func:`project`; a cached result calls none)."""
    key = f"{feature_key}-{method}-{dims}d-s{seed}"
    return cached_features(folder, key, lambda: project(features, method, dims, seed, progress=progress,
                                                        cancel=cancel, on_snapshot=on_snapshot))  # fmt: skip
