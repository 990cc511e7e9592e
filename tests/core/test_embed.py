"""``core.embed``: randomised PCA against scikit-learn, t-SNE's progress, snapshots and cancel."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from core.embed import SNAPSHOT_EVERY, pca, project, standardised, tsne_input
from core.errors import Cancelled


def features(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(0, 1, (n, 8)) @ rng.normal(0, 2, (8, d)) + rng.normal(0, 1, (n, d)), 0)


@pytest.mark.parametrize("shape", [(120, 40), (700, 600)])  # exact SVD; randomised SVD
def test_pca_agrees_with_scikit_learn_including_signs(shape):
    x = features(*shape)
    reference = PCA(n_components=3, random_state=0).fit_transform(StandardScaler().fit_transform(x))
    ours = pca(standardised(x), 3)
    assert ours.shape == (shape[0], 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-3 * np.abs(reference).max())
    np.testing.assert_array_equal(project(x, "pca", 3), ours)


def test_standardised_leaves_constant_columns_at_zero_and_the_input_alone():
    x = features(50, 6)
    x[:, 2] = 7.0
    before = x.copy()
    z = standardised(x).numpy()
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), [1, 1, 0, 1, 1, 1], atol=1e-5)
    assert tsne_input(x).shape == (50, 6) and tsne_input(features(80, 300)).shape == (80, 50)


def test_tsne_projection_reports_progress_snapshots_and_cancels():
    x = features(60, 30)
    frames: list[int] = []
    done: list[tuple[int, int]] = []
    last: list[np.ndarray] = []

    def snapshot(iteration: int, coords: np.ndarray) -> None:
        frames.append(iteration)
        last[:] = [coords]

    coords = project(x, "tsne", 2, progress=lambda d, t: done.append((d, t)), on_snapshot=snapshot)
    assert frames == list(range(SNAPSHOT_EVERY, 1001, SNAPSHOT_EVERY)) and done[-1] == (1000, 1000)
    np.testing.assert_array_equal(last[0], coords)
    asked: list[int] = []
    with pytest.raises(Cancelled):
        project(x, "tsne", 3, cancel=lambda: asked.append(1) or len(asked) > 10)
    assert len(asked) == 11
