"""Exports: the current view as a PNG with a legend, and the per-slice results as CSV.

Both are written atomically and never into the folder the study was read from.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui

from core.atomic import atomic_path, atomic_write_text, check_output_outside
from core.io.series import Series
from desktop.overlay import LESION_RGBA, lookup_table
from desktop.results import SeriesResults

LEGEND_HEIGHT = 44


def results_csv(path: Path, series: Series, results: SeriesResults, threshold: float, sources: list[Path],
                lesion_slices: Sequence[int] = ()) -> None:  # fmt: skip
    """One row per slice: position, lesion probability and (on lesion slices) the overlap scores."""
    check_output_outside(path.parent, *sources)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["slice", "position_mm", "p_lesion", "has_lesion", "threshold", "consistent_degree", "iou",
                     "dice", "pointing_game"])  # fmt: skip
    positions = series.geometry.positions_mm
    lesions = set(lesion_slices)
    for i in range(len(series)):
        prob = f"{results.probabilities[i]:.6f}" if results.known[i] else ""
        scores = results.slice_scores(i, threshold)
        if scores is None or not scores.has_lesion:
            overlap = ["", "", "", ""]
        else:
            overlap = [f"{scores.consistent_degree:.6f}", f"{scores.iou:.6f}", f"{scores.dice:.6f}",
                       str(int(bool(scores.pointing_game)))]  # fmt: skip
        has_lesion = ("1" if i in lesions else "0") if lesions else ""  # "" = no annotations
        writer.writerow([i + 1, f"{positions[i]:.2f}", prob, has_lesion, f"{threshold:.2f}", *overlap])
    atomic_write_text(path, buffer.getvalue())


def view_png(path: Path, view: QtGui.QPixmap, *, colormap: str | None, threshold: float, caption: str,
             sources: list[Path], lesions: bool = True) -> None:  # fmt: skip
    """The grabbed slice view with a legend strip below (colour bar when the heatmap is shown)."""
    check_output_outside(path.parent, *sources)
    image = QtGui.QImage(view.width(), view.height() + LEGEND_HEIGHT, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(0, 0, 0))
    painter = QtGui.QPainter(image)
    painter.drawPixmap(0, 0, view)
    painter.setPen(QtGui.QColor(230, 230, 230))
    y = view.height() + 8
    x = 8
    if colormap is not None:
        lut = np.ascontiguousarray(np.repeat(lookup_table(colormap)[None], 12, axis=0))
        bar = QtGui.QImage(lut.data, 256, 12, 256 * 3, QtGui.QImage.Format.Format_RGB888)
        painter.drawText(x, y + 11, "0")
        painter.drawImage(QtCore.QRect(x + 12, y, 160, 12), bar)
        painter.drawText(x + 178, y + 11, "1")
        painter.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
        painter.drawLine(x + 200, y + 6, x + 220, y + 6)
        painter.setPen(QtGui.QColor(230, 230, 230))
        painter.drawText(x + 226, y + 11, f"support > {threshold:.2f}")
        x += 340
    if lesions:
        painter.setPen(QtGui.QPen(QtGui.QColor(*LESION_RGBA[:3]), 2))
        painter.drawLine(x, y + 6, x + 20, y + 6)
        painter.setPen(QtGui.QColor(230, 230, 230))
        painter.drawText(x + 26, y + 11, "annotated lesion")
    painter.drawText(8, y + 30, caption)
    painter.end()
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"{path}: cannot write PNG")
