"""2-D and 3-D embeddings of image features (the paper's Figures 6-7).

Methods: PCA, kernel PCA (linear, RBF) and t-SNE (after PCA to 50 dimensions, as is usual for
high-dimensional inputs). Features are standardised first. Projections are cached on disk
beside the features, keyed by the features' key, method, dimensions and seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA, KernelPCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from core.errors import CTLensError
from core.features.extract import cached_features

METHODS = ("pca", "kpca-linear", "kpca-rbf", "tsne")


def project(features: np.ndarray, method: str, dims: int, seed: int = 0) -> np.ndarray:
    """(N, dims) float32 coordinates of ``features`` (N, D)."""
    if method not in METHODS:
        raise CTLensError(f"unknown embedding {method!r} ({', '.join(METHODS)})")
    if dims not in (2, 3):
        raise CTLensError("embeddings have 2 or 3 dimensions")
    if len(features) <= dims:
        raise CTLensError(f"need more than {dims} images to embed, got {len(features)}")
    x = StandardScaler().fit_transform(np.asarray(features, np.float64))
    if method == "pca":
        out = PCA(n_components=dims, random_state=seed).fit_transform(x)
    elif method.startswith("kpca"):
        kernel = method.split("-", 1)[1]
        out = KernelPCA(n_components=dims, kernel=kernel, random_state=seed).fit_transform(x)
    else:
        reduced = PCA(n_components=min(50, *x.shape), random_state=seed).fit_transform(x)
        perplexity = min(30.0, (len(x) - 1) / 3)
        out = TSNE(n_components=dims, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return out.astype(np.float32)


def cached_projection(folder: Path, feature_key: str, features: np.ndarray, method: str, dims: int,
                      seed: int = 0) -> np.ndarray:  # fmt: skip
    """:func:`project`, computed once per (features, method, dims, seed) and kept in ``folder``."""
    key = f"{feature_key}-{method}-{dims}d-s{seed}"
    return cached_features(folder, key, lambda: project(features, method, dims, seed))
