"""The filter browser as a user sees it: one tile per filter, initial beside trained with change
scores when the run kept its initial filters, and a clicked filter's response to the image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore
from safetensors.numpy import load_file, save_file

from core.train.loop import INITIAL_FILTERS
from desktop.research.filters_panel import FiltersPanel
from desktop.research.session import CurrentImage, ResearchSession

IMAGE = CurrentImage("phantom", np.random.default_rng(3).normal(-600, 300, (70, 84)).astype(np.float32), "HU")


@pytest.fixture
def panel(open_panel):
    session = ResearchSession()
    session.set_image(IMAGE)
    return open_panel(FiltersPanel, session, (1200, 700))


@pytest.fixture
def run_checkpoint(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model as RUN/best.safetensors with RUN/initial_filters.safetensors beside it, named
    and keyed as training writes it; filter 7 moved the most, filter 2 not at all."""
    run = tmp_path / "run"
    run.mkdir()
    best = run / "best.safetensors"
    try:
        os.link(tiny_model, best)
    except OSError:
        best.write_bytes(tiny_model.read_bytes())
    trained = load_file(str(tiny_model))
    weight, bias = trained["features.0.weight"].copy(), trained["features.0.bias"]
    weight[7] *= 3.0  # ||W - W0|| / ||W0|| = 2/3 for filter 7
    weight[(np.arange(64) != 2) & (np.arange(64) != 7)] += 0.001  # every other filter but 2 moved a little
    save_file({"weight": weight, "bias": bias}, str(run / INITIAL_FILTERS))
    return best


def _load(qtbot, panel: FiltersPanel, model: Path) -> None:
    """Load ``model``'s filters; with an image, also wait for the default filter's response."""
    panel.session.set_model(model)
    counts: list[int] = []
    panel.filters_shown.connect(counts.append)
    signals = [panel.filters_shown] + ([panel.response_shown] if panel.session.image is not None else [])
    with qtbot.waitSignals(signals, timeout=60_000):
        panel.refresh()
    panel.filters_shown.disconnect(counts.append)
    assert counts == [64]


def _click_tile(qtbot, grid, tile_id: int) -> None:
    scene_point = grid.viewbox.mapViewToScene(grid.tile_centre(tile_id))
    qtbot.mouseClick(grid.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=grid.view.mapFromScene(scene_point))


def test_one_tile_per_filter_and_only_trained_without_initial_filters(qtbot, panel, tiny_model):
    _load(qtbot, panel, tiny_model)
    assert panel.selected == 0  # without change scores the first filter is shown to begin with
    assert panel.trained_grid.count == 64
    assert panel.trained_grid.captions[:3] == ["#0", "#1", "#2"]
    assert panel.trained_grid.image.image.shape[-1] == 3  # colour tiles
    assert not panel.initial_grid.isVisible() and not panel.change_plot.isVisible()
    assert "Only the trained filters" in panel.hint.text() and INITIAL_FILTERS in panel.hint.text()
    assert not panel.sort_box.isEnabled()


def test_initial_and_trained_side_by_side_with_sortable_change_scores(qtbot, panel, run_checkpoint):
    _load(qtbot, panel, run_checkpoint)
    assert panel.initial_grid.isVisible() and panel.trained_grid.isVisible() and panel.change_plot.isVisible()
    assert panel.initial_grid.count == panel.trained_grid.count == 64
    assert panel.initial_grid.title.text().startswith("initial (") and "trained" in panel.trained_grid.title.text()
    assert panel.trained_grid.captions[2] == "0.00" and panel.trained_grid.captions[7] == "0.67"
    assert panel.initial_grid.captions[7] == "#7"
    assert str(run_checkpoint.parent / INITIAL_FILTERS) in panel.hint.text()
    assert panel.selected == 7 and panel.response is not None and panel.response.channel == 7  # most changed first
    with qtbot.waitSignal(panel.filters_shown):
        panel.sort_box.setChecked(True)
    assert panel.trained_grid.ids[0] == 7 and panel.initial_grid.ids[0] == 7 and panel.trained_grid.ids[-1] == 2
    assert panel.trained_grid.captions[0] == "0.67"
    heights = panel.bars.opts["height"]
    assert len(heights) == 64 and heights[0] == pytest.approx(2 / 3, rel=1e-4) and np.all(np.diff(heights) <= 0)
    # per-filter contrast hides that filter 7 shrank to a third; one scale for both banks shows it
    assert panel.initial_grid.tile_pixels(7).std() == pytest.approx(panel.trained_grid.tile_pixels(7).std(), rel=0.05)
    panel.scale_combo.setCurrentIndex(1)
    assert panel.initial_grid.tile_pixels(7).std() > 2.5 * panel.trained_grid.tile_pixels(7).std()


def test_clicking_a_tile_shows_its_response_beside_the_image(qtbot, panel, tiny_model):
    _load(qtbot, panel, tiny_model)
    with qtbot.waitSignal(panel.response_shown, timeout=60_000) as shown:
        _click_tile(qtbot, panel.trained_grid, 12)
    assert shown.args == [12]
    assert panel.trained_grid.selected == 12 and panel.trained_grid.highlight.isVisible()
    assert panel.image_view.shape == IMAGE.pixels.shape
    assert panel.response_view.shape == (*IMAGE.pixels.shape, 3)
    assert panel.response is not None and panel.response.channel == 12
    assert "filter 12" in panel.response_view.title.text() and IMAGE.name in panel.image_view.title.text()
    # a click in the gap between tiles selects nothing new
    gap = panel.trained_grid.tile_centre(0) - QtCore.QPointF(panel.trained_grid._shape[1] / 2 + 0.5, 0)
    assert panel.trained_grid.tile_at(gap.x(), gap.y()) is None


def test_without_an_image_the_panel_says_so(qtbot, panel, tiny_model):
    panel.session.set_image(None)
    _load(qtbot, panel, tiny_model)
    panel.select_filter(3)
    assert "No current image" in panel.image_view.title.text()
    assert panel.response_view.shape is None
