"""The attention gallery, headless: heatmaps of the images with lesions, re-scored at any threshold
with core.overlap's functions, and the explain command built on the same explanation loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.datasets import open_dataset
from core.errors import Cancelled
from core.model.build import build_classifier
from core.model.card import ModelCard
from core.overlap import consistent_degree, score_slice, support_region
from core.preprocess import Preprocessing
from core.research.gallery import Gallery, attention_gallery, explain_images


@pytest.fixture(scope="module")
def model_and_card():
    torch.manual_seed(0)
    return build_classifier().eval(), ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(input_size=64))


@pytest.fixture(scope="module")
def gallery(model_and_card, train_root: Path) -> Gallery:
    model, card = model_and_card
    # Grad-CAM++ rather than Grad-CAM: on a random-init net Grad-CAM leaves most lesions at 0
    return attention_gallery(model, card, open_dataset(train_root), method="gradcampp", batch_size=8)


def test_gallery_holds_only_images_with_a_lesion_and_counts_the_rest(gallery, train_root):
    data = open_dataset(train_root)
    masks = [data.load_mask(s) for s in data.samples]
    lesion_ids = [s.id for s, m in zip(data.samples, masks, strict=True) if m is not None and m.any()]
    assert [s.id for s in gallery.samples] == lesion_ids and 0 < len(gallery) < len(data.samples)
    assert gallery.without_lesion == sum(m is not None and not m.any() for m in masks)
    assert gallery.without_mask == sum(m is None for m in masks)
    assert len(gallery) + gallery.without_lesion + gallery.without_mask == len(data.samples)
    for sample, heat, mask, picture in zip(gallery.samples, gallery.heatmaps, gallery.masks, gallery.pictures,
                                           strict=True):  # fmt: skip
        assert heat.dtype == np.float32 and heat.shape == data.load_image(sample).pixels.shape == mask.shape
        assert heat.min() >= 0.0 and heat.max() <= 1.0 and mask.any()
        assert picture.dtype == np.uint8 and picture.shape == heat.shape
    assert gallery.p_lesion.shape == (len(gallery),) and ((gallery.p_lesion >= 0) & (gallery.p_lesion <= 1)).all()


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7, 0.95])
def test_rescoring_at_any_threshold_equals_core_overlap(gallery, threshold):
    expected = [consistent_degree(support_region(h, threshold), m) for h, m in zip(gallery.heatmaps, gallery.masks,
                                                                                   strict=True)]  # fmt: skip
    values = gallery.consistency(threshold)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    order = gallery.ranking(threshold)
    assert sorted(order.tolist()) == list(range(len(gallery)))
    assert (np.diff(values[order]) <= 0).all()  # most consistent first
    areas = np.array([m.sum() for m in gallery.masks])
    assert np.array_equal(gallery.lesion_pixels(), areas)
    ties = np.diff(values[order]) == 0
    assert (np.diff(areas[order])[ties] <= 0).all()  # among equals, the larger lesion first
    counts, edges = gallery.histogram(threshold, bins=10)
    assert counts.sum() == len(gallery) and edges[0] == 0.0 and edges[-1] == 1.0
    summary = gallery.summary(threshold)
    assert summary.slices_with_lesion == len(gallery)
    assert summary.consistent_degree == pytest.approx(float(np.mean(expected)))
    assert gallery.scores(0, threshold) == score_slice(gallery.heatmaps[0], gallery.masks[0], threshold)


def test_a_lower_threshold_never_lowers_a_consistent_degree(gallery):
    assert (gallery.consistency(0.3) >= gallery.consistency(0.7)).all()
    assert len(set(gallery.consistency(0.7).round(6))) > 3  # a real spread to rank


def test_explain_images_streams_every_sample_with_its_mask_and_honours_cancel(model_and_card, train_root, gallery):
    model, card = model_and_card
    data = open_dataset(train_root)
    calls = []
    explained = list(explain_images(model, card, data, data.samples[:10], batch_size=4,
                                    progress=lambda d, n: calls.append((d, n))))  # fmt: skip
    assert [e.sample for e in explained] == list(data.samples[:10]) and calls == [(4, 10), (8, 10), (10, 10)]
    for e in explained:
        assert e.raw.ndim == 2 and e.heatmap.shape == e.image.pixels.shape
        assert (e.mask is None) == (data.load_mask(e.sample) is None)
    first = gallery.samples[0]
    again = next(explain_images(model, card, data, [first], method="gradcampp"))
    np.testing.assert_allclose(again.heatmap, gallery.heatmaps[0], atol=1e-5)
    with pytest.raises(Cancelled):
        attention_gallery(model, card, data, cancel=lambda: True)
    with pytest.raises(Cancelled):
        list(explain_images(model, card, data, data.samples, cancel=lambda: True))
