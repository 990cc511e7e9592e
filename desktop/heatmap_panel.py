"""Heatmap controls (visibility, opacity, colour map, method, target, threshold) and overlap numbers."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.explain.methods import METHODS
from core.overlap import DEFAULT_THRESHOLD, OverlapScores, OverlapSummary
from desktop.overlay import COLORMAPS, SUPPORT_STYLES, lookup_table

METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++", "layercam": "Layer-CAM",
                "guided-gradcam": "Guided Grad-CAM", "rise": "RISE (black box)"}  # fmt: skip


class ColourBar(QtWidgets.QLabel):
    """A horizontal gradient of the current colour map, 0 at the left, 1 at the right."""

    def __init__(self) -> None:
        super().__init__()
        self.setFixedHeight(14)
        self.setMinimumWidth(60)
        policy = QtWidgets.QSizePolicy.Policy
        self.setSizePolicy(policy.Ignored, policy.Fixed)
        self.setToolTip("Heatmap colour scale: 0 (left) to 1 (right)")
        self.set_colormap("jet")

    def set_colormap(self, name: str) -> None:
        lut = np.ascontiguousarray(np.repeat(lookup_table(name)[None], 14, axis=0))
        image = QtGui.QImage(lut.data, 256, 14, 256 * 3, QtGui.QImage.Format.Format_RGB888).copy()
        self.setPixmap(QtGui.QPixmap.fromImage(image))
        self.setScaledContents(True)


class HeatmapPanel(QtWidgets.QGroupBox):
    visibility_changed = QtCore.Signal(bool)
    opacity_changed = QtCore.Signal(float)
    colormap_changed = QtCore.Signal(str)
    support_style_changed = QtCore.Signal(str)
    threshold_changed = QtCore.Signal(float)
    explanation_changed = QtCore.Signal(str, int)  # method, target class index

    def __init__(self, classes: tuple[str, ...] = ("non-COVID", "COVID"), parent: QtWidgets.QWidget | None = None):
        super().__init__("Heatmap", parent)
        self.visible_box = QtWidgets.QCheckBox("Show heatmap (H)")
        self.visible_box.setChecked(True)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.colormap_box = QtWidgets.QComboBox()
        self.colormap_box.addItems(COLORMAPS)
        self.colour_bar = ColourBar()
        self.method_box = QtWidgets.QComboBox()
        for method in METHODS:
            self.method_box.addItem(METHOD_NAMES.get(method, method), method)
        self.target_box = QtWidgets.QComboBox()
        self.set_classes(classes)
        self.style_box = QtWidgets.QComboBox()
        self.style_box.addItems(SUPPORT_STYLES)
        self.threshold = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(round(DEFAULT_THRESHOLD * 100))
        self.threshold.setToolTip("Support region = heatmap > threshold (0.70 in the paper)")
        self.threshold_label = QtWidgets.QLabel(f"{DEFAULT_THRESHOLD:.2f}")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.threshold, 1)
        row.addWidget(self.threshold_label)
        form = QtWidgets.QFormLayout(self)
        form.addRow(self.visible_box)
        form.addRow("Method", self.method_box)
        form.addRow("Target", self.target_box)
        form.addRow("Opacity", self.opacity)
        form.addRow("Colours", self.colormap_box)
        form.addRow("", self.colour_bar)
        form.addRow("Threshold", row)
        form.addRow("Support", self.style_box)
        self.visible_box.toggled.connect(self.visibility_changed)
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100))
        self.colormap_box.currentTextChanged.connect(self._on_colormap)
        self.style_box.currentTextChanged.connect(self.support_style_changed)
        self.threshold.valueChanged.connect(self._on_threshold)
        self.method_box.currentIndexChanged.connect(self._emit_explanation)
        self.target_box.currentIndexChanged.connect(self._emit_explanation)

    @property
    def method(self) -> str:
        return str(self.method_box.currentData())

    @property
    def target(self) -> int:
        return int(self.target_box.currentData())

    @property
    def threshold_value(self) -> float:
        return self.threshold.value() / 100

    def set_classes(self, classes: tuple[str, ...]) -> None:
        with QtCore.QSignalBlocker(self.target_box):
            self.target_box.clear()
            for i, name in enumerate(classes):
                self.target_box.addItem(name, i)
            self.target_box.setCurrentIndex(len(classes) - 1)  # the lesion class

    def _on_colormap(self, name: str) -> None:
        self.colour_bar.set_colormap(name)
        self.colormap_changed.emit(name)

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.threshold_changed.emit(value / 100)

    def _emit_explanation(self) -> None:
        self.explanation_changed.emit(self.method, self.target)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


class OverlapPanel(QtWidgets.QGroupBox):
    """Consistent degree (|S ∩ L| / |L|), IoU, Dice, pointing game: this slice and the study."""

    lesions_visibility_changed = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Overlap with lesions", parent)
        self.visible_box = QtWidgets.QCheckBox("Show lesion outlines (A)")
        self.visible_box.setChecked(True)
        self.source_label = QtWidgets.QLabel("no annotations")
        self.source_label.setWordWrap(True)
        self.source_label.setStyleSheet("color: gray")
        self.table = QtWidgets.QTableWidget(4, 2)
        self.table.setHorizontalHeaderLabels(["this slice", "study"])
        self.table.setVerticalHeaderLabels(["consistent degree", "IoU", "Dice", "pointing game"])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setFixedHeight(self.table.verticalHeader().length() + self.table.horizontalHeader().height() + 4)
        self.study_label = QtWidgets.QLabel("")  # why this slice has no scores, and what the study's are over
        self.study_label.setWordWrap(True)
        self._notes = ["", ""]
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.visible_box)
        layout.addWidget(self.source_label)
        layout.addWidget(self.table)
        layout.addWidget(self.study_label)
        self.visible_box.toggled.connect(self.lesions_visibility_changed)
        self.show_slice(None, "")
        self.show_study(None)

    def cell(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return "" if item is None else item.text()

    def show_slice(self, scores: OverlapScores | None, reason: str) -> None:
        """This slice's scores, or ``reason`` (no lesion here, no heatmap yet...)."""
        values: list[str]
        if scores is None or not scores.has_lesion:
            values = ["–"] * 4
            self._note(0, f"this slice: {reason}" if reason else "")
        else:
            pointing = "hit" if scores.pointing_game else "miss"
            values = [_fmt(scores.consistent_degree), _fmt(scores.iou), _fmt(scores.dice), pointing]
            self._note(0, "")
        for row, text in enumerate(values):
            self.table.setItem(row, 0, QtWidgets.QTableWidgetItem(text))

    def show_study(self, summary: OverlapSummary | None) -> None:
        if summary is None or summary.slices_with_lesion == 0:
            values = ["–"] * 4
            self._note(1, "")
        else:
            values = [_fmt(summary.consistent_degree), _fmt(summary.iou), _fmt(summary.dice),
                      _fmt(summary.pointing_game)]  # fmt: skip
            n = summary.slices_with_lesion
            self._note(1, f"study: mean over {n} slice{'s' * (n != 1)} with a lesion")
        for row, text in enumerate(values):
            self.table.setItem(row, 1, QtWidgets.QTableWidgetItem(text))

    def _note(self, which: int, text: str) -> None:
        self._notes[which] = text
        self.study_label.setText("\n".join(n for n in self._notes if n))
