"""The 3-D embedding view: pyqtgraph OpenGL, rotated (drag), zoomed (wheel) and panned
(Ctrl+drag, middle drag) with the mouse; hover and click pick the point nearest the cursor.

Imported only where :func:`~desktop.research.embedding_views.opengl_available` said yes, since
importing ``pyqtgraph.opengl`` needs PyOpenGL and a libGL.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from PySide6 import QtCore, QtGui, QtWidgets

from desktop.research.embedding_views import POINT_SIZE, nearest_point

CUBE = 5.0  # points are scaled into [-CUBE, CUBE]^3
CLICK_SLOP = 4.0  # pixels a press may move and still be a click


def fit_cube(coords: np.ndarray, half: float = CUBE) -> np.ndarray:
    """(N, 3) float32 coordinates centred on their mid-range and scaled so the largest extent is ±half."""
    xyz = np.asarray(coords, np.float64)[:, :3]
    if len(xyz) == 0:
        return np.zeros((0, 3), np.float32)
    low, high = xyz.min(0), xyz.max(0)
    span = float((high - low).max()) or 1.0
    return ((xyz - (low + high) / 2) * (2 * half / span)).astype(np.float32)


class PickingGLView(gl.GLViewWidget):
    """GLViewWidget that also reports the mouse position of hovers and of clicks (not drags)."""

    hovered_at = QtCore.Signal(float, float)
    clicked_at = QtCore.Signal(float, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self._press: QtCore.QPointF | None = None

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:
        self._press = ev.position()
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:
        if ev.buttons() == QtCore.Qt.MouseButton.NoButton:
            self.hovered_at.emit(ev.position().x(), ev.position().y())
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:
        press, self._press = self._press, None
        moved = ev.position() - press if press is not None else QtCore.QPointF(1e9, 0)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton and abs(moved.x()) + abs(moved.y()) <= CLICK_SLOP:
            self.clicked_at.emit(ev.position().x(), ev.position().y())
        super().mouseReleaseEvent(ev)


class ScatterView3D(QtWidgets.QWidget):
    """Points in a rotatable 3-D scene with a grid and axes (``glOptions="translucent"``: alpha
    blending, so colours stay as given instead of adding up to white)."""

    point_hovered = QtCore.Signal(int)
    point_clicked = QtCore.Signal(int)
    selection_changed = QtCore.Signal(object)  # list[int] (never emitted: select in 2-D)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.gl_view = PickingGLView()
        self.gl_view.setBackgroundColor("w")
        self.gl_view.setCameraPosition(distance=3.0 * CUBE, elevation=24, azimuth=40)
        grid = gl.GLGridItem(color=(0, 0, 0, 55), glOptions="translucent")
        grid.setSize(2 * CUBE, 2 * CUBE)
        grid.setSpacing(CUBE / 5, CUBE / 5)
        grid.translate(0, 0, -CUBE)
        corner = np.full(3, -CUBE)
        ends = corner + np.eye(3) * 2 * CUBE
        axes = gl.GLLinePlotItem(pos=np.stack([corner, ends[0], corner, ends[1], corner, ends[2]]), mode="lines",
                                 color=(0.25, 0.25, 0.25, 1.0), width=2, antialias=True,
                                 glOptions="translucent")  # fmt: skip
        font = QtGui.QFont()
        font.setPointSize(10)
        self.axis_labels = [gl.GLTextItem(pos=end * 1.04, text="", color=(60, 60, 60, 255), font=font,
                                          glOptions="translucent") for end in ends]  # fmt: skip
        for label in self.axis_labels:
            label.setDepthValue(10)  # painted last: QPainter text after all GL drawing
        self.scatter = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=POINT_SIZE + 1, pxMode=True,
                                            glOptions="translucent")  # fmt: skip
        self.hover_mark = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=POINT_SIZE + 9, pxMode=True,
                                               color=(0.07, 0.07, 0.07, 1.0), glOptions="translucent")  # fmt: skip
        # the hovered point again, on top of its dark ring
        self.hover_dot = gl.GLScatterPlotItem(pos=np.zeros((0, 3)), size=POINT_SIZE + 1, pxMode=True,
                                              glOptions="translucent")  # fmt: skip
        for item in (grid, axes, *self.axis_labels, self.scatter, self.hover_mark, self.hover_dot):
            self.gl_view.addItem(item)
        self.coords = np.zeros((0, 3), np.float32)  # as shown, in the cube
        self.selected: list[int] = []
        self._hovered = -1
        self._rgba = np.zeros((0, 4), np.uint8)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.gl_view)
        self.gl_view.hovered_at.connect(self._on_gl_hovered)
        self.gl_view.clicked_at.connect(self._on_gl_clicked)

    @property
    def context_valid(self) -> bool:
        """Whether the widget got a working OpenGL context (known once it has been shown)."""
        context = self.gl_view.context()
        return bool(self.gl_view.isValid() and context is not None and context.isValid())

    def set_points(self, coords: np.ndarray, rgba: np.ndarray) -> None:
        self._rgba = np.asarray(rgba, np.uint8)
        self.set_positions(coords)

    def set_positions(self, coords: np.ndarray) -> None:
        self.coords = fit_cube(coords)
        self.scatter.setData(pos=self.coords, color=self._rgba.astype(np.float32) / 255.0)
        self._show_hover(self._hovered)

    def set_colours(self, rgba: np.ndarray) -> None:
        self._rgba = np.asarray(rgba, np.uint8)
        self.scatter.setData(color=self._rgba.astype(np.float32) / 255.0)
        self._show_hover(self._hovered)

    def set_tool(self, tool: str) -> None:  # selection tools act on 2-D views only
        del tool

    def set_axis_names(self, names: tuple[str, ...]) -> None:
        for label, name in zip(self.axis_labels, names, strict=False):
            label.setData(text=name)

    def point_count(self) -> int:
        return len(self.scatter.pos) if self.scatter.pos is not None else 0

    def screen_positions(self) -> np.ndarray:
        """(N, 2) pixel positions of the points in the GL widget (NaN behind the camera)."""
        w, h = self.gl_view.width(), self.gl_view.height()
        view = (0, 0, w, h)
        mvp = self.gl_view.projectionMatrix(view, view) * self.gl_view.viewMatrix()
        m = np.array(mvp.data(), np.float64).reshape(4, 4).T  # Qt stores column-major
        clip = np.c_[self.coords.astype(np.float64), np.ones(len(self.coords))] @ m.T
        with np.errstate(divide="ignore", invalid="ignore"):
            ndc = clip[:, :2] / clip[:, 3:4]
        screen = np.stack([(ndc[:, 0] + 1) * w / 2, (1 - ndc[:, 1]) * h / 2], axis=1)
        screen[clip[:, 3] <= 0] = np.nan
        return screen

    def render(self) -> np.ndarray:
        """What the view shows now, rendered again: uint8 (height, width, 4) RGBA."""
        image = self.gl_view.grabFramebuffer().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
        rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
        return rows[:, : image.width() * 4].reshape(image.height(), image.width(), 4).copy()

    def viewport(self) -> QtWidgets.QWidget:
        return self.gl_view

    def _show_hover(self, index: int) -> None:
        self._hovered = index if 0 <= index < len(self.coords) else -1
        at = self.coords[[self._hovered]] if self._hovered >= 0 else np.zeros((0, 3), np.float32)
        self.hover_mark.setData(pos=at)
        colour = self._rgba[self._hovered] if self._hovered >= 0 and len(self._rgba) > self._hovered else [0, 0, 0, 0]
        self.hover_dot.setData(pos=at, color=tuple(float(c) / 255.0 for c in colour))

    def _on_gl_hovered(self, x: float, y: float) -> None:
        index = nearest_point(self.screen_positions(), x, y)
        if index != self._hovered:
            self._show_hover(index)
            self.point_hovered.emit(index)

    def _on_gl_clicked(self, x: float, y: float) -> None:
        index = nearest_point(self.screen_positions(), x, y)
        if index >= 0:
            self.point_clicked.emit(index)
