"""StudyView: one slice of a series with window/level, a slice slider and window presets."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.io.series import Series
from core.pixels import LUNG, PRESETS, Window


class StudyView(QtWidgets.QWidget):
    """Shows slice ``index`` of a series through a window (lung by default)."""

    slice_changed = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._series: Series | None = None
        self._window: Window = LUNG
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.viewbox = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slice_label = QtWidgets.QLabel("no study")
        self.window_box = QtWidgets.QComboBox()
        self.window_box.addItems([w.name for w in PRESETS.values()])
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("Window"))
        controls.addWidget(self.window_box)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.slice_label)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(controls)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.window_box.currentTextChanged.connect(self._on_window_box_changed)

    @property
    def index(self) -> int:
        return self.slider.value()

    @property
    def window(self) -> Window:
        return self._window

    def set_series(self, series: Series, index: int | None = None) -> None:
        """Show ``series`` at ``index`` (its middle slice by default), header window if any."""
        self._series = series
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(0, len(series) - 1)
            self.slider.setValue(len(series) // 2 if index is None else index)
        self.slider.setEnabled(len(series) > 1)
        has_header = series.info.window is not None
        if has_header and self.window_box.findText("header") < 0:
            self.window_box.addItem("header")
        elif not has_header and self.window_box.findText("header") >= 0:
            self.window_box.removeItem(self.window_box.findText("header"))
        if series.info.unit == "gray":
            self._window = Window(1.0, 0.5, "image")
        elif series.info.unit != "HU":  # MR, CR...: the header's window, else the slice's range
            self._window = series.info.window or _auto_window(series.slice(self.slider.value()))
        self._show()
        self.viewbox.autoRange(padding=0.0)  # fit a new series; scrolling keeps the user's zoom

    def set_window(self, window: Window) -> None:
        self._window = window
        self._show()

    def _on_window_box_changed(self, name: str) -> None:
        if name == "header" and self._series is not None and self._series.info.window is not None:
            self.set_window(self._series.info.window)
        elif name in PRESETS:
            self.set_window(PRESETS[name])

    def _on_slider_value_changed(self, value: int) -> None:
        self._show()
        self.slice_changed.emit(value)

    def _show(self) -> None:
        if self._series is None:
            return
        index = self.slider.value()
        pixels = self._series.slice(index)
        self.image.setImage(np.asarray(pixels), levels=(self._window.low, self._window.high), autoLevels=False)
        pos = self._series.geometry.positions_mm[index]
        self.slice_label.setText(
            f"slice {index + 1}/{len(self._series)}  {pos:+.1f} mm  W{self._window.width:g} L{self._window.level:g}"
        )


def _auto_window(pixels: np.ndarray) -> Window:
    """A window spanning the 1st-99th percentile of a slice (for data without HU)."""
    low, high = (float(v) for v in np.percentile(pixels, (1, 99)))
    return Window(max(high - low, 1e-3), (low + high) / 2, "auto")
