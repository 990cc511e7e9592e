"""The attention gallery as a user sees it: the top N images by consistent degree with their
heatmap and outlines, re-ranked at once when the threshold moves (no new engine job), the
histogram over the images with lesions and its mean, and a double-click that opens an image."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6 import QtCore

from core.datasets import open_dataset
from core.explain.methods import METHODS
from core.model.checkpoint import load_checkpoint
from core.overlap import consistent_degree, support_region
from core.research.gallery import attention_gallery
from desktop.overlay import LESION_RGBA
from desktop.research import gallery_panel
from desktop.research.gallery_panel import GalleryPanel

METHOD = "gradcampp"  # on a random-init net Grad-CAM leaves most lesions at 0: nothing to rank


@pytest.fixture
def panel(open_panel):
    widget = open_panel(GalleryPanel, size=(1300, 850))
    widget.jobs = []
    widget.engine.started.connect(lambda ticket, title: widget.jobs.append(ticket))
    return widget


@pytest.fixture
def shown(qtbot, panel, train_root, tiny_model):
    panel.method_combo.setCurrentIndex(panel.method_combo.findData(METHOD))  # no data yet: no job
    panel.session.set_data(train_root)
    panel.session.set_model(tiny_model)
    with qtbot.waitSignal(panel.gallery_shown, timeout=60_000):
        panel.refresh()
    assert len(panel.jobs) == 1
    return panel


@pytest.fixture(scope="module")
def core_gallery(train_root, tiny_model):
    model, card = load_checkpoint(tiny_model)
    return attention_gallery(model, card, open_dataset(train_root), method=METHOD)


def _caption_values(panel) -> list[int]:
    return [int(re.search(r"consistency (\d+)%$", c).group(1)) for c in panel.grid.captions]


def _expected(core_gallery, threshold: float) -> np.ndarray:
    return np.array([consistent_degree(support_region(h, threshold), m) for h, m in zip(core_gallery.heatmaps,
                    core_gallery.masks, strict=True)])  # fmt: skip


def test_defaults_and_top_tiles_sorted_by_consistency(shown, core_gallery):
    assert shown.threshold == 0.7 and shown.threshold_slider.value() == 70 and shown.top_spin.value() == 6
    assert gallery_panel.METHODS == METHODS and shown.method_combo.itemData(0) == "gradcam"
    lesions = len(core_gallery)
    assert shown.grid.count == min(6, lesions) == 6
    values = _caption_values(shown)
    assert values == sorted(values, reverse=True)
    expected = _expected(core_gallery, 0.7)
    areas = [int(m.sum()) for m in core_gallery.masks]  # ties: the larger lesion first
    order = sorted(range(lesions), key=lambda i: (-expected[i], -areas[i], i))
    top_ids = [core_gallery.samples[i].id for i in order[:6]]
    assert [c.split(" — ")[0] for c in shown.grid.captions] == top_ids
    np.testing.assert_allclose(shown.values, expected, atol=1e-6)
    tile = shown.grid.tile_pixels(shown.grid.ids[0])
    assert (tile == LESION_RGBA[:3]).all(-1).sum() > 10  # the lesion outline is drawn in green
    assert (tile == (255, 255, 255)).all(-1).sum() > 10  # and the support region's contour in white
    assert len(set(map(tuple, tile.reshape(-1, 3)))) > 100  # heatmap over the image, not flat colour


def test_histogram_and_mean_over_images_with_lesions(shown, core_gallery):
    heights = shown.histogram.bars.opts["height"]
    assert len(heights) == 10 and int(np.sum(heights)) == len(core_gallery)
    mean = float(np.mean(_expected(core_gallery, 0.7)))
    text = shown.mean_label.text()
    assert f"mean consistent degree {100 * mean:.1f}%" in text and f"over {len(core_gallery)} images" in text
    assert "paper: 60.02% over 500" in text
    assert shown.histogram.mean_line.value() == pytest.approx(mean, abs=1e-6)
    assert "1 with an empty lesion mask" in shown.counts_label.text()  # not scored as 0
    assert "16 without an annotation" in shown.counts_label.text()


def test_threshold_and_top_n_rerank_without_running_the_network(qtbot, shown, core_gallery):
    before = list(shown.grid.captions)
    with qtbot.waitSignal(shown.gallery_shown, timeout=1000):
        shown.threshold_slider.setValue(30)
    assert shown.threshold_spin.value() == pytest.approx(0.3) and "0.30" in shown.legend_label.text()
    expected = _expected(core_gallery, 0.3)
    np.testing.assert_allclose(shown.values, expected, atol=1e-6)
    values = _caption_values(shown)
    assert values == sorted(values, reverse=True) and shown.grid.captions != before
    assert f"{100 * expected.mean():.1f}%" in shown.mean_label.text()
    assert int(np.sum(shown.histogram.bars.opts["height"])) == len(core_gallery)
    shown.top_spin.setValue(40)
    assert shown.grid.count == len(core_gallery) < 40
    shown.threshold_spin.setValue(0.9)
    assert shown.threshold_slider.value() == 90
    assert len(shown.jobs) == 1  # still the one explanation job


def test_double_clicking_a_tile_requests_its_image(qtbot, shown):
    grid = shown.grid
    tile_id = grid.ids[1]
    point = grid.view.mapFromScene(grid.viewbox.mapViewToScene(grid.tile_centre(tile_id)))
    with qtbot.waitSignal(shown.image_requested, timeout=2000) as requested:
        qtbot.mouseDClick(grid.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=point)
    assert requested.args[0] == shown.gallery.samples[tile_id]


def test_without_data_a_hint_and_no_job(panel, qtbot):
    panel.refresh()
    qtbot.wait(50)
    assert "Choose a dataset" in panel.hint.text() and panel.jobs == []


def test_a_dataset_without_lesion_masks_is_reported_not_scored(qtbot, panel, tiny_model, tmp_path):
    from PIL import Image

    for folder in ("covid", "non-covid"):
        (tmp_path / "plain" / folder).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32), 40 * i, np.uint8)).save(tmp_path / "plain" / folder / f"{i}.png")
    panel.session.set_data(tmp_path / "plain")
    panel.session.set_model(tiny_model)
    with qtbot.waitSignal(panel.gallery_shown, timeout=60_000) as shown:
        panel.refresh()
    assert shown.args == [0] and panel.grid.count == 0
    assert "nothing to score" in panel.mean_label.text() and "6 without an annotation" in panel.counts_label.text()
    assert not panel.histogram.mean_line.isVisible() and len(panel.histogram.bars.opts["height"]) == 0
