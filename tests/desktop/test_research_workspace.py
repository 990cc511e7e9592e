"""The research workspace inside the main window: switching, shared dataset/model, click-through,
and ``ctlens view --panel NAME --screenshot``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image
from PySide6 import QtWidgets

from core.datasets import open_dataset
from core.preprocess import Preprocessing
from desktop.research import PANELS


def _settle(qtbot, workspace, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: workspace.ready and workspace.session.image is not None, timeout=timeout)


def test_workspace_replaces_the_viewer_and_back(make_window, train_root, tiny_model, qtbot):
    window = make_window()
    docks = [d for d in window.findChildren(QtWidgets.QDockWidget) if d.isVisibleTo(window)]
    workspace = window.show_workspace("filters", data=train_root, model=tiny_model)
    _settle(qtbot, workspace)
    assert window.stack.currentWidget() is workspace
    assert [workspace.tabs.tabText(i) for i in range(workspace.tabs.count())][0] == "Training"
    assert workspace.tabs.count() == len(PANELS) and workspace.tabs.currentWidget() is workspace.panels["filters"]
    assert not any(d.isVisibleTo(window) for d in docks)
    assert workspace.session.data == train_root and workspace.session.model == tiny_model
    first_positive = next(s for s in open_dataset(train_root).samples if s.label == 1)
    assert workspace.session.image.name == first_positive.id
    assert workspace.data_label.text() == train_root.name
    window.show_viewer()
    assert window.stack.currentWidget() is window.view
    assert all(d.isVisibleTo(window) for d in docks)


def test_viewer_slice_becomes_the_workspace_image(make_window, synth_root, train_root, tiny_model, qtbot):
    window = make_window(synth_root / "SYN001")
    window.view.set_index(3)
    workspace = window.show_workspace(data=train_root, model=tiny_model)
    _settle(qtbot, workspace)
    assert workspace.session.image.name.endswith("slice 4")
    np.testing.assert_array_equal(workspace.session.image.pixels, window.series.slice(3))
    stacked = workspace.session.image.model_input(Preprocessing(adjacent=1)).pixels  # what a 2.5-D model sees
    np.testing.assert_array_equal(stacked, np.stack([window.series.slice(i) for i in (2, 3, 4)]))
    assert workspace.session.image.model_input(Preprocessing()).pixels.shape == window.series.slice(3).shape


def test_a_dataset_image_chosen_in_the_workspace_opens_in_the_viewer(make_window, train_root, tiny_model, qtbot):
    window = make_window()
    workspace = window.show_workspace(data=train_root, model=tiny_model)
    _settle(qtbot, workspace)
    sample = open_dataset(train_root).samples[5]
    with qtbot.waitSignal(window.analysis_done, timeout=60_000):
        workspace.image_requested.emit(sample)
    assert window.stack.currentWidget() is window.view
    assert window.view.index == sample.frame
    assert window.results is not None  # with its heatmap


def test_panel_screenshot_command(tmp_path, train_root, tiny_model):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               CTLENS_CACHE=str(tmp_path / "cache"))  # fmt: skip
    out = tmp_path / "filters.png"
    cmd = [sys.executable, "-m", "desktop", "--panel", "filters", "--data", str(train_root), "--model", str(tiny_model),
           "--screenshot", str(out)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    shot = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert shot.shape[0] > 400 and shot.shape[1] > 800
    assert (shot.max(-1) - shot.min(-1)).mean() > 2  # coloured filter tiles, not an empty grey window
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("demo-model-*"))  # no demo training


def test_panel_screenshot_command_fails_when_the_panel_does(tmp_path, tiny_model):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               CTLENS_CACHE=str(tmp_path / "cache"))  # fmt: skip
    out = tmp_path / "filters.png"
    cmd = [sys.executable, "-m", "desktop", "--panel", "filters", "--data", str(tmp_path / "missing"),
           "--model", str(tiny_model), "--screenshot", str(out)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("ctlens view: ")]  # not Qt's warnings
    assert len(error) == 1 and "missing" in error[0] and "Traceback" not in result.stderr, result.stderr
    assert out.is_file()  # the picture still shows the panel with its error
