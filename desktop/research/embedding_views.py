"""Scatter views of an embedding: a 2-D pyqtgraph plot, a 3-D OpenGL one (:mod:`embedding_gl`),
and what they share: point colours, picking the point under the mouse, the colour legend.

Both views take coordinates (N, 2 or 3) and RGBA colours (N, 4) uint8, and say which point the
mouse is over (``point_hovered``, -1 when none), which one was clicked (``point_clicked``) and
which ones a box or lasso drag selected (``selection_changed``). No torch here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

COVID, NON_COVID = "#ff7f0e", "#1f77b4"  # the paper's orange and blue
CORRECT, WRONG = "#2ca02c", "#d62728"
NO_LESION = "#9e9e9e"
COLOUR_MODES = {"label": "Label", "prediction": "Prediction", "correctness": "Correctness",
                "consistency": "Consistent degree"}  # fmt: skip
TOOLS = {"pan": "Pan / zoom", "box": "Box select", "lasso": "Lasso select"}
POINT_SIZE = 8
PICK_RADIUS = 7.0  # pixels
NO_GL_ENV = "CTLENS_NO_OPENGL"  # set to 1 to always use the 2-D fallback for 3-D embeddings


@dataclass(frozen=True)
class Colouring:
    """Per-point RGBA (N, 4) uint8 and how to read it: legend ``entries`` (colour, text), and for a
    continuous colouring the colour map's 256-entry lookup table (uint8 (256, 4)) and its name."""

    rgba: np.ndarray
    entries: tuple[tuple[str, str], ...]
    lookup: np.ndarray | None = None
    scale: str = ""


def _rgba(hex_colour: str) -> np.ndarray:
    c = QtGui.QColor(hex_colour)
    return np.array([c.red(), c.green(), c.blue(), 255], np.uint8)


def _two_colours(flags: np.ndarray, yes: str, no: str) -> np.ndarray:
    return np.where(np.asarray(flags, bool)[:, None], _rgba(yes), _rgba(no)).astype(np.uint8)


def consistency_lookup() -> np.ndarray:
    """uint8 (256, 4) viridis lookup table (perceptually even, readable beside the grey)."""
    return pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.uint8)


def point_colours(mode: str, labels: np.ndarray, predictions: np.ndarray,
                  consistency: np.ndarray | None = None) -> Colouring:  # fmt: skip
    """Colours of N points: by ``label`` or ``prediction`` (COVID orange, non-COVID blue), by
    ``correctness`` (green / red) or by ``consistency`` (viridis over [0, 1]; NaN or missing grey)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if mode == "label":
        return Colouring(_two_colours(labels == 1, COVID, NON_COVID), ((COVID, "COVID"), (NON_COVID, "non-COVID")))
    if mode == "prediction":
        return Colouring(_two_colours(predictions == 1, COVID, NON_COVID),
                         ((COVID, "predicted COVID"), (NON_COVID, "predicted non-COVID")))  # fmt: skip
    if mode == "correctness":
        return Colouring(_two_colours(labels == predictions, CORRECT, WRONG), ((CORRECT, "correct"), (WRONG, "wrong")))
    if mode == "consistency":
        lookup = consistency_lookup()
        values = np.full(len(labels), np.nan) if consistency is None else np.asarray(consistency, np.float64)
        known = np.isfinite(values)
        rgba = np.tile(_rgba(NO_LESION), (len(labels), 1))
        rgba[known] = lookup[np.clip(np.round(values[known] * 255), 0, 255).astype(int)]
        return Colouring(rgba, ((NO_LESION, "no lesion"),), lookup, "consistent degree (Grad-CAM > 0.7 vs lesion)")
    raise ValueError(f"unknown colouring {mode!r} ({', '.join(COLOUR_MODES)})")


def nearest_point(screen: np.ndarray, x: float, y: float, radius: float = PICK_RADIUS) -> int:
    """Index of the row of ``screen`` (N, 2) pixel positions nearest (x, y) within ``radius``, else -1."""
    if len(screen) == 0:
        return -1
    d2 = np.sum((screen - np.array([x, y])) ** 2, axis=1)
    d2[~np.isfinite(d2)] = np.inf
    best = int(np.argmin(d2))
    return best if d2[best] <= radius * radius else -1


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Indices of ``points`` (N, 2) inside the closed ``polygon`` (M, 2) (even-odd rule)."""
    if len(polygon) < 3 or len(points) == 0:
        return np.zeros(0, np.int64)
    x, y = points[:, 0:1], points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = np.sum(crosses & (x < at), axis=1) % 2 == 1
    return np.flatnonzero(inside)


def opengl_available() -> bool:
    """Whether an OpenGL 2.1+ context can be made here (and pyqtgraph.opengl imported); False when
    ``$CTLENS_NO_OPENGL`` is set. Probed once per process with an offscreen surface."""
    if os.environ.get(NO_GL_ENV, "") not in ("", "0"):
        return False
    global _GL_PROBE
    if _GL_PROBE is None:
        _GL_PROBE = _probe_opengl()
    return _GL_PROBE


_GL_PROBE: bool | None = None


def _probe_opengl() -> bool:
    try:
        import pyqtgraph.opengl  # noqa: F401
    except Exception:  # noqa: BLE001 - no PyOpenGL or no libGL: the 2-D fallback
        return False
    context = QtGui.QOpenGLContext()
    if not context.create():
        return False
    surface = QtGui.QOffscreenSurface()
    surface.setFormat(context.format())
    surface.create()
    try:
        return surface.isValid() and context.makeCurrent(surface) and context.format().version() >= (2, 1)
    finally:
        context.doneCurrent()
        surface.destroy()


class SelectionViewBox(pg.ViewBox):
    """A ViewBox whose left drag selects (box or lasso tool, or Shift+drag) instead of panning."""

    sigSelected = QtCore.Signal(object)  # (M, 2) polygon in data coordinates

    def __init__(self) -> None:
        super().__init__()
        self.tool = "pan"
        self._trace: list[QtCore.QPointF] = []
        self._outline = QtWidgets.QGraphicsPathItem()
        pen = QtGui.QPen(QtGui.QColor("#333333"), 1.5, QtCore.Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._outline.setPen(pen)
        self._outline.setBrush(QtGui.QColor(51, 51, 51, 30))
        self._outline.setZValue(1e6)
        self._outline.setVisible(False)
        self.addItem(self._outline, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001 - pyqtgraph's signature
        shift = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        tool = "box" if shift and self.tool == "pan" else self.tool
        if ev.button() != QtCore.Qt.MouseButton.LeftButton or tool == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        here = self.mapToView(ev.pos())
        if ev.isStart() or not self._trace:
            self._trace = [self.mapToView(ev.buttonDownPos())]
        if tool == "lasso":
            self._trace.append(here)
            corners = self._trace
        else:
            start = self._trace[0]
            corners = [start, QtCore.QPointF(here.x(), start.y()), here, QtCore.QPointF(start.x(), here.y())]
        path = QtGui.QPainterPath()
        path.addPolygon(QtGui.QPolygonF(corners))
        path.closeSubpath()
        self._outline.setPath(path)
        self._outline.setVisible(not ev.isFinish())
        if ev.isFinish():
            self._trace = []
            self.sigSelected.emit(np.array([(p.x(), p.y()) for p in corners], np.float64))


class ScatterView2D(QtWidgets.QWidget):
    """Points on a pyqtgraph plot: hover, click, box/lasso selection, mouse pan and zoom."""

    point_hovered = QtCore.Signal(int)
    point_clicked = QtCore.Signal(int)
    selection_changed = QtCore.Signal(object)  # list[int]

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.view_box = SelectionViewBox()
        self.plot = pg.PlotWidget(background="w", viewBox=self.view_box)
        self.plot.setMouseTracking(True)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen("#555555")
            axis.setTextPen("#333333")
            self.plot.hideAxis(name)  # shown with the first points
        self.scatter = pg.ScatterPlotItem(size=POINT_SIZE, pen=pg.mkPen(255, 255, 255, 160, width=0.6), pxMode=True)
        self.marks = pg.ScatterPlotItem(size=POINT_SIZE + 6, pen=pg.mkPen("#111111", width=1.6), brush=None)
        self.hover_mark = pg.ScatterPlotItem(size=POINT_SIZE + 10, pen=pg.mkPen("#111111", width=2.2), brush=None)
        for item in (self.scatter, self.marks, self.hover_mark):
            self.plot.addItem(item)
        self.coords = np.zeros((0, 2), np.float32)
        self.selected: list[int] = []
        self._hovered = -1
        self._brushes: dict[tuple[int, ...], QtGui.QBrush] = {}
        self._rgba = np.zeros((0, 4), np.uint8)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.view_box.sigSelected.connect(self._on_view_box_selected)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)

    # -- data ---------------------------------------------------------------------------------

    def set_points(self, coords: np.ndarray, rgba: np.ndarray) -> None:
        """Show (N, 2+) ``coords`` (the first two columns) coloured ``rgba`` (N, 4) uint8."""
        self.coords = np.asarray(coords, np.float32)[:, :2]
        self._rgba = np.asarray(rgba, np.uint8)
        self.scatter.setData(pos=self.coords, brush=self._brush_list(self._rgba))
        for name in ("left", "bottom"):
            self.plot.showAxis(name)
        self.show_selection([])
        self._show_hover(-1)
        self.view_box.enableAutoRange()

    def set_positions(self, coords: np.ndarray) -> None:
        """Move the points (an animation step), keeping their colours; the range follows them until
        the user pans or zooms."""
        self.coords = np.asarray(coords, np.float32)[:, :2]
        self.scatter.setData(pos=self.coords, brush=self._brush_list(self._rgba))
        self.show_selection(self.selected)
        self._show_hover(self._hovered)

    def set_colours(self, rgba: np.ndarray) -> None:
        self._rgba = np.asarray(rgba, np.uint8)
        self.scatter.setBrush(self._brush_list(self._rgba))

    def set_tool(self, tool: str) -> None:
        self.view_box.tool = tool

    def set_axis_names(self, names: tuple[str, ...]) -> None:
        self.plot.setLabel("bottom", names[0])
        self.plot.setLabel("left", names[1])

    def brush_colours(self) -> list[str]:
        """Each point's fill colour as ``#rrggbb`` (what is drawn)."""
        return [b.color().name() for b in self.scatter.data["brush"]]

    def screen_positions(self) -> np.ndarray:
        """(N, 2) point positions in the plot widget's viewport pixels."""
        t = self.view_box.childGroup.sceneTransform() * self.plot.viewportTransform()  # data -> scene -> viewport
        x, y = self.coords[:, 0].astype(np.float64), self.coords[:, 1].astype(np.float64)
        return np.stack([t.m11() * x + t.m21() * y + t.dx(), t.m12() * x + t.m22() * y + t.dy()], axis=1)

    def viewport(self) -> QtWidgets.QWidget:
        return self.plot.viewport()

    def show_selection(self, indices: list[int]) -> None:
        """Ring the points ``indices`` (a selection made here or in another view of the same images)."""
        self.selected = list(indices)
        self.marks.setData(pos=self.coords[indices] if indices else np.zeros((0, 2)))

    # -- internals ----------------------------------------------------------------------------

    def _brush_list(self, rgba: np.ndarray) -> list[QtGui.QBrush]:
        out = []
        for colour in map(tuple, rgba.tolist()):
            brush = self._brushes.get(colour)
            if brush is None:
                brush = self._brushes[colour] = QtGui.QBrush(QtGui.QColor(*colour))
            out.append(brush)
        return out

    def _pick(self, scene_pos: QtCore.QPointF) -> int:
        view = self.plot.viewportTransform().map(scene_pos)
        return nearest_point(self.screen_positions(), view.x(), view.y())

    def _show_hover(self, index: int) -> None:
        self._hovered = index if 0 <= index < len(self.coords) else -1
        self.hover_mark.setData(pos=self.coords[[self._hovered]] if self._hovered >= 0 else np.zeros((0, 2)))

    def _on_scene_moved(self, pos: QtCore.QPointF) -> None:
        index = self._pick(pos)
        if index != self._hovered:
            self._show_hover(index)
            self.point_hovered.emit(index)

    def _on_scene_clicked(self, ev) -> None:  # noqa: ANN001 - pyqtgraph's MouseClickEvent
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        index = self._pick(ev.scenePos())
        if index >= 0:
            ev.accept()
            self.point_clicked.emit(index)

    def _on_view_box_selected(self, polygon: np.ndarray) -> None:
        self.show_selection([int(i) for i in points_in_polygon(self.coords.astype(np.float64), polygon)])
        self.selection_changed.emit(list(self.selected))


class ColourLegend(QtWidgets.QWidget):
    """What the colours mean: swatches with names, and a colour bar for a continuous colouring."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries = QtWidgets.QLabel("")
        self.bar = QtWidgets.QLabel()
        self.low, self.high = QtWidgets.QLabel("0"), QtWidgets.QLabel("1")
        self.scale = QtWidgets.QLabel("")
        self.scale.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.scale.setContentsMargins(12, 0, 0, 0)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.entries, self.scale, self.low, self.bar, self.high):
            row.addWidget(widget)
        row.addStretch(1)

    def show_colouring(self, colouring: Colouring) -> None:
        self.entries.setText("&nbsp;&nbsp;".join(
            f'<span style="color:{colour}; font-size:14pt">●</span>&nbsp;{text}' for colour, text in colouring.entries
        ))  # fmt: skip
        continuous = colouring.lookup is not None
        for widget in (self.bar, self.low, self.high, self.scale):
            widget.setVisible(continuous)
        if colouring.lookup is not None:
            self.scale.setText(f"{colouring.scale}:")
            self.bar.setPixmap(_gradient_pixmap(colouring.lookup, 160, 12))


def _gradient_pixmap(lookup: np.ndarray, width: int, height: int) -> QtGui.QPixmap:
    idx = np.linspace(0, len(lookup) - 1, width).round().astype(int)
    rgba = np.ascontiguousarray(np.repeat(lookup[idx][None], height, axis=0)[..., :4], np.uint8)
    image = QtGui.QImage(rgba.data, width, height, width * 4, QtGui.QImage.Format.Format_RGBA8888)
    return QtGui.QPixmap.fromImage(image.copy())


def gray_pixmap(gray: np.ndarray, scale: int = 1) -> QtGui.QPixmap:
    """A QPixmap of a uint8 (H, W) picture, enlarged ``scale`` times."""
    data = np.ascontiguousarray(gray, np.uint8)
    h, w = data.shape
    image = QtGui.QImage(data.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    pixmap = QtGui.QPixmap.fromImage(image)
    if scale != 1:
        pixmap = pixmap.scaled(w * scale, h * scale, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                               QtCore.Qt.TransformationMode.SmoothTransformation)  # fmt: skip
    return pixmap
