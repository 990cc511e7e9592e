"""StudyView: one slice of a series with window/level, overlays, a slice slider and a probability strip.

Reading controls: mouse wheel or arrow/PageUp/PageDown/Home/End keys scroll slices;
Ctrl+wheel zooms, left-drag pans (paints in drawing mode), double-click fits; right-drag (or
Ctrl+left-drag) sets the window live (horizontal: width, vertical: level).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.errors import StudyReadError
from core.io.series import Series
from core.pixels import LUNG, PRESETS, Window
from desktop.overlay import OverlayLayers
from desktop.prob_strip import ProbabilityStrip

_NAV_KEYS = {
    QtCore.Qt.Key.Key_Up: -1, QtCore.Qt.Key.Key_Left: -1, QtCore.Qt.Key.Key_Down: 1, QtCore.Qt.Key.Key_Right: 1,
    QtCore.Qt.Key.Key_PageUp: -10, QtCore.Qt.Key.Key_PageDown: 10,
}  # fmt: skip


class SliceViewBox(pg.ViewBox):
    """A view box whose wheel scrolls slices and whose right-drag sets the window."""

    scrolled = QtCore.Signal(int)  # slices to move
    window_dragged = QtCore.Signal(float, float)  # dx, dy in screen pixels since the last event
    fit_requested = QtCore.Signal()
    brushed = QtCore.Signal(float, float, str)  # x, y in image pixels; "start", "move" or "end"
    drawing = False  # when True, left-drag and left-click paint instead of panning

    def wheelEvent(self, ev, axis=None):  # noqa: N802, ANN001, ANN201 - pyqtgraph override
        if ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        self.scrolled.emit(-1 if ev.delta() > 0 else 1)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802, ANN001, ANN201 - pyqtgraph override
        ctrl_left = ev.button() == QtCore.Qt.MouseButton.LeftButton and (
            ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier
        )
        if ev.button() == QtCore.Qt.MouseButton.RightButton or ctrl_left:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_dragged.emit(float(delta.x()), float(delta.y()))
            return
        if self.drawing and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapToView(ev.pos())
            phase = "start" if ev.isStart() else "end" if ev.isFinish() else "move"
            self.brushed.emit(point.x(), point.y(), phase)
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):  # noqa: N802, ANN001, ANN201 - pyqtgraph override
        if self.drawing and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapToView(ev.pos())
            for phase in ("start", "end"):
                self.brushed.emit(point.x(), point.y(), phase)
            return
        super().mouseClickEvent(ev)

    def mouseDoubleClickEvent(self, ev):  # noqa: N802, ANN001, ANN201 - pyqtgraph override
        ev.accept()
        self.fit_requested.emit()


class StudyView(QtWidgets.QWidget):
    """Shows slice ``index`` of a series through a window (lung by default)."""

    slice_changed = QtCore.Signal(int)
    hovered = QtCore.Signal(str)  # "x, y: value" under the cursor, "" outside the slice

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.series: Series | None = None
        self._window: Window = LUNG
        self._pixels: np.ndarray | None = None
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.graphics.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.viewbox = SliceViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.graphics.addItem(self.viewbox)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.overlays = OverlayLayers(self.viewbox)
        self.strip = ProbabilityStrip()
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.slice_label = QtWidgets.QLabel("no study")
        widest = self.slice_label.fontMetrics().horizontalAdvance("slice 8888/8888  -8888.8 mm  W8888 L-8888")
        self.slice_label.setFixedWidth(widest)  # the track beside it keeps its size while scrolling
        self.unreadable = pg.TextItem("", color=(230, 70, 58), anchor=(0.5, 0.5))  # why a slice shows nothing
        self.unreadable.setVisible(False)
        self.viewbox.addItem(self.unreadable)
        self.window_box = QtWidgets.QComboBox()
        self.window_box.addItems([w.name for w in PRESETS.values()])
        self.window_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        track = QtWidgets.QVBoxLayout()
        track.setSpacing(1)
        track.addWidget(self.strip)
        track.addWidget(self.slider)
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("Window"))
        controls.addWidget(self.window_box)
        controls.addLayout(track, 1)
        controls.addWidget(self.slice_label)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(controls)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.window_box.currentTextChanged.connect(self._on_window_box_changed)
        self.strip.slice_clicked.connect(self.set_index)
        self.viewbox.scrolled.connect(lambda step: self.set_index(self.index + step))
        self.viewbox.window_dragged.connect(self._on_window_dragged)
        self.viewbox.fit_requested.connect(self.fit)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

    @property
    def index(self) -> int:
        return self.slider.value()

    @property
    def pixels(self) -> np.ndarray | None:
        """The shown slice's pixels; None when it could not be read (or no series is shown)."""
        return self._pixels

    @property
    def window(self) -> Window:
        return self._window

    def set_series(self, series: Series, index: int | None = None) -> None:
        """Show ``series`` at ``index`` (its middle slice by default), header window if any."""
        self.series = series
        self.strip.reset(len(series))
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(0, len(series) - 1)
            self.slider.setValue(len(series) // 2 if index is None else index)
        self.slider.setEnabled(len(series) > 1)
        has_header = series.info.window is not None
        if has_header and self.window_box.findText("header") < 0:
            self.window_box.addItem("header")
        elif not has_header and self.window_box.findText("header") >= 0:
            self.window_box.removeItem(self.window_box.findText("header"))
        self.window_box.setEnabled(series.info.unit == "HU" or has_header)  # presets are HU windows
        if series.info.unit == "gray":
            self._window = Window(1.0, 0.5, "image")
        elif series.info.unit != "HU":  # MR, CR...: the header's window, else the slice's range
            self._window = series.info.window or _auto_window(series.slice(self.slider.value()))
        else:  # CT: the selected preset, never a window left over from the previous series
            chosen = self.window_box.currentText()
            self._window = (
                series.info.window if chosen == "header" and series.info.window else PRESETS.get(chosen, LUNG)
            )
        self._show()
        self.fit()  # fit a new series; scrolling keeps the user's zoom
        self.slice_changed.emit(self.index)

    def set_index(self, index: int) -> None:
        if self.series is not None:
            self.slider.setValue(int(np.clip(index, 0, len(self.series) - 1)))

    def set_window(self, window: Window) -> None:
        self._window = window
        self._show()

    def set_preset(self, name: str) -> None:
        """Select a window preset by name ("lung", "mediastinum", "bone", "header")."""
        i = self.window_box.findText(name)
        if i >= 0:
            self.window_box.setCurrentIndex(i)
            self._on_window_box_changed(name)

    def fit(self) -> None:
        self.viewbox.autoRange(items=[self.image], padding=0.0)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = QtCore.Qt.Key(event.key())
        if key in _NAV_KEYS:
            self.set_index(self.index + _NAV_KEYS[key])
        elif key == QtCore.Qt.Key.Key_Home:
            self.set_index(0)
        elif key == QtCore.Qt.Key.Key_End and self.series is not None:
            self.set_index(len(self.series) - 1)
        else:
            super().keyPressEvent(event)

    def _on_window_box_changed(self, name: str) -> None:
        if name == "header" and self.series is not None and self.series.info.window is not None:
            self.set_window(self.series.info.window)
        elif name in PRESETS:
            self.set_window(PRESETS[name])

    def _on_window_dragged(self, dx: float, dy: float) -> None:
        w = self._window
        step = max(w.width, 1e-3) / 200.0  # 200 px of drag double or halve nothing abruptly
        self.set_window(Window(max(w.width + dx * step, 1e-3), w.level - dy * step, "custom"))

    def _on_slider_value_changed(self, value: int) -> None:
        self._show()
        self.strip.set_current(value)
        self.slice_changed.emit(value)

    def _on_mouse_moved(self, pos: QtCore.QPointF) -> None:
        if self._pixels is None or not self.viewbox.sceneBoundingRect().contains(pos):
            self.hovered.emit("")
            return
        point = self.viewbox.mapSceneToView(pos)
        col, row = int(np.floor(point.x())), int(np.floor(point.y()))
        rows, cols = self._pixels.shape
        if not (0 <= row < rows and 0 <= col < cols):
            self.hovered.emit("")
            return
        value = float(self._pixels[row, col])
        unit = " HU" if self.series is not None and self.series.info.unit == "HU" else ""
        lps = ""
        if self.series is not None:
            x, y, z = (self.series.geometry.affine @ np.array([col, row, self.index, 1.0]))[:3]
            lps = f"  ({x:.1f}, {y:.1f}, {z:.1f}) mm"
        self.hovered.emit(f"x {col}  y {row}: {value:.0f}{unit}{lps}")

    def _show(self) -> None:
        if self.series is None:
            return
        index = self.slider.value()
        pos = self.series.geometry.positions_mm[index]
        where = f"slice {index + 1}/{len(self.series)}  {pos:+.1f} mm"
        try:
            self._pixels = np.asarray(self.series.slice(index))
        except StudyReadError as exc:  # a truncated or corrupt file: say so in its place, keep scrolling
            self._pixels = None
            rows, cols = self.series.shape[1:]
            self.image.setImage(np.full((rows, cols), self._window.low, np.float32),
                                levels=(self._window.low, self._window.high), autoLevels=False)  # fmt: skip
            self.unreadable.setText(f"unreadable: {exc}")
            self.unreadable.setPos(cols / 2, rows / 2)
            self.unreadable.setVisible(True)
            self.slice_label.setText(f"{where}  unreadable")
            return
        self.unreadable.setVisible(False)
        self.image.setImage(self._pixels, levels=(self._window.low, self._window.high), autoLevels=False)
        self.slice_label.setText(f"{where}  W{self._window.width:g} L{self._window.level:g}")


def _auto_window(pixels: np.ndarray) -> Window:
    """A window spanning the 1st-99th percentile of a slice (for data without HU)."""
    low, high = (float(v) for v in np.percentile(pixels, (1, 99)))
    return Window(max(high - low, 1e-3), (low + high) / 2, "auto")
