"""The viewer window as a user sees it: the middle slice in the lung window."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from desktop.app import application
from desktop.main_window import MainWindow


def test_opens_middle_slice_with_lung_window(qtbot, synth_root):
    application()
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_path(synth_root / "SYN001")
    view = window.view
    assert view.index == 6
    assert view.window.name == "lung"
    assert "slice 7/12" in view.slice_label.text() and "W1500 L-600" in view.slice_label.text()
    shown = view.image.image
    np.testing.assert_array_equal(shown, window.study.series[0].slice(6))
    assert tuple(view.image.levels) == (-1350.0, 150.0)


def test_window_preset_changes_levels(qtbot, synth_root):
    application()
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_path(synth_root / "SYN001")
    window.view.window_box.setCurrentText("mediastinum")
    assert tuple(window.view.image.levels) == (-135.0, 215.0)


def test_bad_path_shows_error_and_keeps_current_study(qtbot, synth_root, tmp_path):
    application()
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_path(synth_root / "SYN001")
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    assert not window.open_path(tmp_path / "broken.dcm")
    assert window.statusBar().currentMessage().startswith("Cannot open:")
    assert window.study is not None and len(window.study.series[0]) == 12


def test_screenshot_command_renders_the_slice(tmp_path, synth_root):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "desktop", str(synth_root / "SYN001"), "--screenshot", str(out)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    img = np.asarray(Image.open(out).convert("L"))
    assert img.shape[0] > 400 and img.shape[1] > 600
    h, w = img.shape
    centre = img[h // 3 : 2 * h // 3, int(w * 0.45) : int(w * 0.8)]  # inside the slice view
    assert (centre < 100).mean() > 0.1 and (centre > 200).mean() > 0.05  # lungs dark, bone/tissue bright


def test_non_ct_series_gets_its_header_or_an_automatic_window(qtbot):
    from pydicom.data import get_testdata_file

    application()
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_path(get_testdata_file("MR_small.dcm", download=False))
    view = window.view
    shown = view.image.image
    low, high = view.image.levels
    assert view.window.name in ("header", "auto")
    assert low < float(shown.mean()) < high  # the anatomy is inside the window, not clipped away


def test_scrolling_keeps_the_users_zoom(qtbot, synth_root):
    application()
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_path(synth_root / "SYN001")
    view = window.view
    view.viewbox.setRange(xRange=(10, 50), yRange=(20, 60), padding=0)
    zoomed = view.viewbox.viewRange()
    view.slider.setValue(3)
    assert view.index == 3 and view.viewbox.viewRange() == zoomed
    np.testing.assert_array_equal(view.image.image, window.study.series[0].slice(3))
