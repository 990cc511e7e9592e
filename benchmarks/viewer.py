"""Viewer responsiveness on a 300-slice 512x512 study (offscreen Qt, synchronous repaints).

* ``threshold_update_ms`` — move the threshold slider: support outline + overlap numbers
  (slice and study) + repaint. Goal 16 ms (one 60 Hz frame); ratio = value / 16.
* ``slice_scroll_fps`` — step through slices with heatmap, support and lesion overlays on;
  goal 30 slices/s; ratio = value / 30. The detail gives the same scroll without overlays,
  measured in the same run, as the reference.
* ``first_slice_seconds`` — from ``open_path`` to the first slice painted; goal 1 s.

The analysis results are injected (random Grad-CAM-sized maps, random lesion blobs): these
numbers are about the UI's work, which does not depend on what the network said.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from benchmarks.dicom_load import make_series
from benchmarks.report import Result
from core.io.annotations import LesionAnnotation
from desktop.app import application
from desktop.engine import Engine
from desktop.main_window import MainWindow
from desktop.results import SeriesResults, build_sweeps


def _wait(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    end = time.perf_counter() + timeout
    while not predicate():
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if time.perf_counter() > end:
            raise TimeoutError("viewer benchmark: timed out")


def _inject(window: MainWindow) -> None:
    series = window.series
    assert series is not None
    n, (rows, cols) = len(series), series.shape[1:]
    rng = np.random.default_rng(0)
    results = SeriesResults(n, (rows, cols), 1)
    probs = rng.random((n, 2)).astype(np.float32)
    results.add_chunk(np.arange(n), probs / probs.sum(1, keepdims=True), rng.random((n, 13, 13)).astype(np.float32))
    labels = np.zeros((n, rows, cols), np.uint8)
    yy, xx = np.mgrid[:rows, :cols]
    for k in range(0, n, 2):  # a lesion blob on every other slice
        cy, cx = rng.integers(rows // 4, 3 * rows // 4, 2)
        labels[k][(yy - cy) ** 2 + (xx - cx) ** 2 < 40**2] = 1
    window._lesions = LesionAnnotation(series.uid, labels, {1: "lesion"}, "benchmark")
    masks = {i: labels[i] > 0 for i in range(0, n, 2)}
    results.sweeps = build_sweeps(results.raw, masks, (rows, cols))
    window.results = results
    window.view.strip.set_values(np.arange(n), results.probabilities)
    window._update_verdict()


def _paint(window: MainWindow) -> None:
    """Paint the slice view now (the viewport: ``graphics.repaint()`` alone paints no item)."""
    window.view.graphics.viewport().repaint()


def _scroll(window: MainWindow, steps: int) -> float:
    view = window.view
    view.set_index(0)
    _paint(window)
    start = time.perf_counter()
    for i in range(1, steps + 1):  # every step a real slice change
        view.set_index(i)
        _paint(window)
    return steps / (time.perf_counter() - start)


def run(workdir: Path) -> list[Result]:
    make_series(workdir / "dicom-300")
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)  # not the user's preferences
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                             str(workdir / "settings"))  # fmt: skip
    application()
    engine = Engine("cpu")
    window = MainWindow(engine, model_path=workdir / "no-model.safetensors")  # no analysis: results are injected
    window.resize(1280, 860)
    window.show()
    _wait(lambda: not engine.busy)
    start = time.perf_counter()
    window.open_path(workdir / "dicom-300")
    _wait(lambda: window.view.image.image is not None)
    _paint(window)
    first = time.perf_counter() - start
    _inject(window)

    view = window.view
    view.set_index(0)
    slider = window.heatmap_panel.threshold
    slider.setValue(29)
    _paint(window)  # warm-up: the first paint of each item allocates
    steps = np.r_[np.arange(30, 91), np.arange(89, 29, -1)]  # every step a real change
    start = time.perf_counter()
    for value in steps:
        slider.setValue(int(value))
        _paint(window)
        window.overlap_panel.table.viewport().repaint()  # the overlap numbers are drawn too
    per_update = (time.perf_counter() - start) / len(steps) * 1000

    with_overlay = _scroll(window, 120)
    window.heatmap_panel.visible_box.setChecked(False)
    window.overlap_panel.visible_box.setChecked(False)
    plain = _scroll(window, 120)
    window.close()
    window.deleteLater()  # destroy the Qt side now, not during interpreter shutdown
    QtWidgets.QApplication.processEvents()
    return [
        Result("threshold_update_ms", per_update, "ms", per_update / 16, "<= 1",
               "512x512: support outline + slice and study overlap + repaint; goal 16 ms"),
        Result("slice_scroll_fps", with_overlay, "slices/s", with_overlay / 30, ">= 1",
               f"heatmap + support + lesion overlays on; without overlays {plain:.0f} slices/s; goal 30/s"),
        Result("first_slice_seconds", first, "s", first / 1.0, "<= 1",
               "300-slice 512x512 study: open_path to the first slice painted; goal 1 s"),
    ]  # fmt: skip
