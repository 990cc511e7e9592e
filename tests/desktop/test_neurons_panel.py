"""The neuron browser as a user sees it: N reconstructions captioned with their channels, layer
changes, one neuron per layer across images, and a clicked neuron's activation map, top dataset
images and activation maximisation."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from core.datasets import open_dataset
from core.research.neurons import pick_channels
from desktop.research.neurons_panel import NeuronsPanel
from desktop.research.session import CurrentImage, ResearchSession

TIMEOUT = 60_000


@pytest.fixture
def panel(open_panel, tiny_model, train_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CTLENS_CACHE", str(tmp_path / "cache"))  # top-image statistics are cached there
    session = ResearchSession()
    dataset = open_dataset(train_root)
    first = dataset.samples[0]
    image = dataset.load_image(first)
    session.set_data(train_root)
    session.set_model(tiny_model)
    session.set_image(CurrentImage(first.id, image.pixels, image.unit))
    return open_panel(NeuronsPanel, session, (1200, 750))


def _show(qtbot, panel: NeuronsPanel, action=None) -> None:  # noqa: ANN001
    """Run ``action`` (default: refresh) and wait for the grid, the first neuron and its top images."""
    signals = [panel.reconstructions_shown, panel.activation_shown, panel.top_images_shown]
    with qtbot.waitSignals(signals, timeout=TIMEOUT):
        (action or panel.refresh)()


def _click_tile(qtbot, grid, tile_id: int) -> None:
    scene_point = grid.viewbox.mapViewToScene(grid.tile_centre(tile_id))
    qtbot.mouseClick(grid.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=grid.view.mapFromScene(scene_point))


def test_default_is_eight_random_neurons_of_the_last_conv_with_their_top_images(qtbot, panel):
    panel.k_spin.setValue(5)
    _show(qtbot, panel)
    expected = pick_channels(256, 8, seed=0)
    assert panel.grid.count == 8
    assert [c.split(" · ")[0] for c in panel.grid.captions] == [f"ch {c}" for c in expected]
    assert panel.grid.image.image.ndim == 3 and panel.grid.image.image.shape[-1] == 3  # colour reconstructions
    assert [panel.layer_combo.itemText(i).split(" · ")[0] for i in range(panel.layer_combo.count())] == [
        "conv1", "conv2", "conv3", "conv4", "conv5"]  # fmt: skip
    assert panel.layer_combo.currentData() == "features.10" and "conv5 (features.10)" in panel.grid.title.text()
    assert panel.neuron == ("features.10", expected[0]) and panel.grid.selected == 0
    assert panel.top_grid.count == 5 and len(panel.top.samples) == 5 and len({s.id for s in panel.top.samples}) == 5
    assert panel.top_grid.captions[0].startswith(panel.top.samples[0].id)
    assert np.all(np.diff(panel.top.scores) <= 0)
    assert panel.activation_view.shape == (*panel.session.image.pixels.shape, 3)
    requested: list[object] = []
    panel.image_requested.connect(requested.append)
    point = panel.top_grid.view.mapFromScene(panel.top_grid.viewbox.mapViewToScene(panel.top_grid.tile_centre(1)))
    qtbot.mouseDClick(panel.top_grid.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=point)
    assert requested == [panel.top.samples[1]]  # a double click opens that image in the viewer


def test_changing_the_layer_or_listing_channels_updates_the_captions(qtbot, panel):
    _show(qtbot, panel)
    _show(qtbot, panel, lambda: panel.layer_combo.setCurrentIndex(1))
    assert [c.split(" · ")[0] for c in panel.grid.captions] == [f"ch {c}" for c in pick_channels(192, 8, seed=0)]
    assert panel.grid.title.text().startswith("conv2 (features.3)")
    panel.channels_edit.setText("3, 17, 42")
    _show(qtbot, panel, lambda: qtbot.keyClick(panel.channels_edit, QtCore.Qt.Key.Key_Return))
    assert panel.list_button.isChecked() and panel.grid.count == 3
    assert [c.split(" · ")[0] for c in panel.grid.captions] == ["ch 3", "ch 17", "ch 42"]
    panel.channels_edit.setText("3, 999")
    with qtbot.waitSignal(panel.engine.failed, timeout=TIMEOUT):
        panel.refresh()
    assert "out of range" in panel.hint.text() and panel.grid.count == 3  # the last good grid stays


def test_clicking_a_neuron_shows_its_activation_and_maximisation(qtbot, panel):
    _show(qtbot, panel)
    channel = panel.grid_result.picks[3][1]
    shown: list[tuple[str, int]] = []
    panel.activation_shown.connect(lambda layer, c: shown.append((layer, c)))
    with qtbot.waitSignals([panel.activation_shown, panel.top_images_shown], timeout=TIMEOUT):
        _click_tile(qtbot, panel.grid, 3)
    assert shown == [("features.10", channel)]
    assert panel.grid.selected == 3 and f"channel {channel}" in panel.neuron_title.text()
    assert panel.activation_view.shape == (*panel.session.image.pixels.shape, 3)
    panel.steps_spin.setValue(4)
    with qtbot.waitSignal(panel.feature_shown, timeout=TIMEOUT) as done:
        panel.maximise_button.click()
    assert done.args == ["features.10", channel] and panel.feature_view.shape == (96, 96, 3)
    assert "mean activation" in panel.feature_view.title.text()


def test_one_neuron_per_layer_across_images(qtbot, panel):
    _show(qtbot, panel, lambda: panel.mode_combo.setCurrentIndex(1))
    assert panel.grid.count == 5 * 4  # rows: conv1..conv5; columns: the current image and 3 dataset images
    assert not panel.layer_combo.isEnabled()
    rows = [panel.grid.captions[i * 4].split(" ch ")[0] for i in range(5)]
    assert rows == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert panel.grid.title.text().count(",") == 3 and panel.session.image.name in panel.grid.title.text()


def test_without_an_image_the_panel_says_so(qtbot, panel):
    panel.session.set_image(None)
    panel.refresh()
    assert "No current image" in panel.hint.text() and panel.grid.count == 0
