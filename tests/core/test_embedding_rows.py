"""The Embeddings panel's core: one row per image, caches that skip the network, lazy extras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import core.embed
from core.datasets import open_dataset
from core.errors import Cancelled
from core.model.build import build_classifier
from core.model.card import ModelCard
from core.model.checkpoint import load_checkpoint, save_checkpoint
from core.pixels import LUNG
from core.preprocess import Preprocessing
from core.research.embedding import (
    consistency_degrees,
    dataset_thumbnails,
    embed_dataset,
    thumbnail,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    card = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(input_size=64))
    return save_checkpoint(tmp_path_factory.mktemp("emb-model") / "m.safetensors", build_classifier().eval(), card)


@pytest.fixture
def loaded(checkpoint: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The model with a forward counter, its card; the cache under tmp_path."""
    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))
    model, card = load_checkpoint(checkpoint, torch.device("cpu"))
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return model, card, calls


def test_rows_one_per_image_with_label_prediction_and_coordinates(train_root, checkpoint, loaded):
    model, card, calls = loaded
    data = open_dataset(train_root)
    seen: list[tuple[int, int]] = []
    emb = embed_dataset(data, model, card, checkpoint, features="lbp", method="pca", dims=3,
                        progress=lambda d, n: seen.append((d, n)))  # fmt: skip
    rows = emb.rows()
    assert len(rows) == len(data.samples) == 32 and emb.coords.shape == (32, 3) and emb.feature_dims == 59
    assert [r.sample for r in rows] == list(data.samples)
    assert [r.label for r in rows] == [s.label for s in data.samples]
    assert all(r.prediction == int(r.p_lesion >= 0.5) and 0 <= r.p_lesion <= 1 and len(r.coords) == 3 for r in rows)
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1][0] == seen[-1][1]  # monotonic, ends at the total
    assert np.allclose(emb.coords.mean(0), 0, atol=1e-3)  # PCA scores are centred


def test_second_call_reads_every_cache_and_runs_no_network(train_root, checkpoint, loaded, monkeypatch):
    model, card, calls = loaded
    data = open_dataset(train_root)
    projections = []
    real_project = core.embed.project
    monkeypatch.setattr(core.embed, "project", lambda *a, **k: projections.append(1) or real_project(*a, **k))
    first = embed_dataset(data, model, card, checkpoint, features="deep", method="kpca-rbf", dims=2)
    assert calls and projections == [1] and first.feature_dims == 9216
    calls.clear()
    second = embed_dataset(data, model, card, checkpoint, features="deep", method="kpca-rbf", dims=2)
    assert calls == [] and projections == [1]  # features, predictions and projection all from the cache
    np.testing.assert_array_equal(first.coords, second.coords)
    np.testing.assert_array_equal(first.p_lesion, second.p_lesion)


def test_cancel_stops_before_anything_is_cached(train_root, checkpoint, loaded, tmp_path):
    model, card, _ = loaded
    with pytest.raises(Cancelled):
        embed_dataset(open_dataset(train_root), model, card, checkpoint, features="lbp", cancel=lambda: True)
    assert not list((tmp_path / "cache").rglob("*.npy"))


def test_consistency_is_nan_without_a_lesion_and_matches_a_direct_grad_cam(train_root, checkpoint, loaded):
    from core.explain.cam import heatmaps_on_grid
    from core.explain.methods import explain_batch
    from core.explain.targets import ClassTarget
    from core.overlap import consistent_degree, support_region
    from core.preprocess import prepare_batch

    model, card, calls = loaded
    data = open_dataset(train_root)
    degrees = consistency_degrees(data, model, card, checkpoint, data.samples)
    masks = [data.load_mask(s) for s in data.samples]
    has_lesion = np.array([m is not None and bool(m.any()) for m in masks])
    assert has_lesion.any() and not has_lesion.all()
    np.testing.assert_array_equal(np.isnan(degrees), ~has_lesion)
    assert np.all((degrees[has_lesion] >= 0) & (degrees[has_lesion] <= 1))
    for i in np.flatnonzero(has_lesion):  # every scored image, one at a time (no batching to hide behind)
        image = data.load_image(data.samples[i])
        raw, _ = explain_batch(model, prepare_batch([image.pixels], image.unit, card.preprocessing), "gradcam",
                               ClassTarget(card.positive_index))  # fmt: skip
        expected = consistent_degree(support_region(heatmaps_on_grid(raw, masks[i].shape)[0], 0.7), masks[i])
        assert degrees[i] == pytest.approx(expected, abs=1e-5), i
    calls.clear()
    np.testing.assert_array_equal(consistency_degrees(data, model, card, checkpoint, data.samples), degrees)
    assert calls == []  # cached


def test_thumbnails_are_lung_window_pictures_fitted_into_a_square(train_root, loaded):
    wide = np.full((40, 80), -600.0, np.float32)  # lung window level: mid gray
    wide[:, :10] = 2000.0  # bone: white
    small = thumbnail(wide, "HU", LUNG, size=32)
    assert small.shape == (32, 32) and small.dtype == np.uint8
    assert small[:7].max() == 0 and small[-7:].max() == 0  # letterboxed: the wide image fills 16 of 32 rows
    assert abs(int(small[16, 20]) - 128) <= 2 and small[16, 1] >= 250
    data = open_dataset(train_root)
    pictures = dataset_thumbnails(data, data.samples, LUNG, size=48)
    assert pictures.shape == (32, 48, 48) and pictures.dtype == np.uint8 and pictures.std() > 10
    np.testing.assert_array_equal(dataset_thumbnails(data, data.samples, LUNG, size=48), pictures)
