"""TileGrid: many small images as one zoomable mosaic with captions, click to select a tile.

All tiles are composed into a single RGB image (one ``ImageItem``) with gaps, inside a
``ViewBox`` that pans with the mouse and zooms with the wheel. Captions sit in the gap under
each tile and scale with the mosaic, so they stay attached to their tile at any zoom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.render import jet

BACKGROUND = 32  # gray level of the gaps
CAPTION_RGB = (220, 220, 220)
HIGHLIGHT_RGB = (255, 210, 0)


def mosaic(tiles: np.ndarray, columns: int, gap: int, caption: int) -> np.ndarray:
    """uint8 RGB mosaic (H, W, 3) of ``tiles`` (N, h, w[, 3]) float in [0, 1], row by row,
    ``gap`` pixels between tiles and ``caption`` more under each row."""
    t = np.asarray(tiles, np.float32)
    t = np.repeat(t[..., None], 3, axis=-1) if t.ndim == 3 else t
    n, h, w = t.shape[:3]
    rows = max(1, math.ceil(n / columns))
    out = np.full((gap + rows * (h + caption + gap), gap + columns * (w + gap), 3), BACKGROUND, np.uint8)
    for i in range(n):
        y, x = tile_origin(i, columns, (h, w), gap, caption)
        out[y : y + h, x : x + w] = (np.clip(t[i], 0.0, 1.0) * 255).round().astype(np.uint8)
    return out


def tile_origin(index: int, columns: int, shape: tuple[int, int], gap: int, caption: int) -> tuple[int, int]:
    """Top-left (row, column) pixel of tile ``index`` in the mosaic."""
    r, c = divmod(index, columns)
    return gap + r * (shape[0] + caption + gap), gap + c * (shape[1] + gap)


class MosaicViewBox(pg.ViewBox):
    """A view box that reports left clicks (and double clicks) in view coordinates."""

    clicked = QtCore.Signal(float, float, bool)  # x, y, double

    def mouseClickEvent(self, ev):  # noqa: N802, ANN001, ANN201 - pyqtgraph override
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapSceneToView(ev.scenePos())
            self.clicked.emit(point.x(), point.y(), bool(ev.double()))
            return
        super().mouseClickEvent(ev)

    def mouseDoubleClickEvent(self, ev):  # noqa: N802, ANN001, ANN201 - Qt override: pyqtgraph's
        ev.accept()  # click events do not reach a view box as double clicks
        point = self.mapSceneToView(ev.scenePos())
        self.clicked.emit(point.x(), point.y(), True)


class TileGrid(QtWidgets.QWidget):
    """A titled mosaic of tiles; each tile has an id (e.g. a filter or channel number)."""

    tile_clicked = QtCore.Signal(int)  # the tile's id
    tile_activated = QtCore.Signal(int)  # double click: the tile's id

    def __init__(self, title: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel(title)
        self.title.setWordWrap(True)
        self.view = pg.GraphicsView()
        self.view.setBackground((BACKGROUND,) * 3)
        self.viewbox = MosaicViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setCentralItem(self.viewbox)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.highlight = QtWidgets.QGraphicsRectItem()
        pen = QtGui.QPen(QtGui.QColor(*HIGHLIGHT_RGB), 2)
        pen.setCosmetic(True)
        self.highlight.setPen(pen)
        self.highlight.setZValue(10)
        self.highlight.setVisible(False)
        self.viewbox.addItem(self.highlight)
        self._captions: list[QtWidgets.QGraphicsSimpleTextItem] = []
        self.ids: list[int] = []
        self.captions: list[str] = []
        self.selected: int | None = None
        self._columns, self._shape, self._gap, self._caption = 1, (0, 0), 1, 0
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.title)
        column.addWidget(self.view, 1)
        self.viewbox.clicked.connect(self._on_viewbox_clicked)

    @property
    def count(self) -> int:
        """How many tiles are shown."""
        return len(self.ids)

    def set_tiles(self, tiles: np.ndarray, captions: Sequence[str] | None = None, ids: Sequence[int] | None = None,
                  columns: int | None = None) -> None:  # fmt: skip
        """Show ``tiles`` (N, h, w[, 3]) float in [0, 1]; ``ids`` default to 0 .. N-1."""
        n, h, w = tiles.shape[:3]
        self.ids = [int(i) for i in (range(n) if ids is None else ids)]
        self.captions = list(captions) if captions is not None else []
        self._columns = max(1, min(n, columns or math.ceil(math.sqrt(n))))
        self._shape, self._gap = (h, w), max(1, round(0.1 * min(h, w)))
        self._caption = max(4, round(0.2 * h)) if self.captions else 0
        self.image.setImage(mosaic(tiles, self._columns, self._gap, self._caption), levels=(0, 255))
        self._place_captions()
        self.select(self.selected if self.selected in self.ids else None)
        self.viewbox.autoRange(padding=0.02)

    def clear(self) -> None:
        self.ids, self.captions, self.selected = [], [], None
        self.image.clear()
        self._place_captions()
        self.highlight.setVisible(False)

    def select(self, tile_id: int | None) -> None:
        """Outline tile ``tile_id`` (None: no outline)."""
        self.selected = tile_id
        if tile_id is None or tile_id not in self.ids:
            self.highlight.setVisible(False)
            return
        y, x = self._origin(self.ids.index(tile_id))
        h, w = self._shape
        self.highlight.setRect(QtCore.QRectF(x - 0.5, y - 0.5, w + 1, h + 1))
        self.highlight.setVisible(True)

    def tile_at(self, x: float, y: float) -> int | None:
        """The id of the tile under view point (x, y), or None (a gap, a caption, nothing)."""
        h, w = self._shape
        row = math.floor((y - self._gap) / (h + self._caption + self._gap))
        col = math.floor((x - self._gap) / (w + self._gap))
        if not (0 <= col < self._columns and row >= 0):
            return None
        index = row * self._columns + col
        oy, ox = self._origin(index) if index < len(self.ids) else (0, 0)
        inside = index < len(self.ids) and oy <= y < oy + h and ox <= x < ox + w
        return self.ids[index] if inside else None

    def tile_centre(self, tile_id: int) -> QtCore.QPointF:
        """The centre of tile ``tile_id`` in view coordinates."""
        y, x = self._origin(self.ids.index(tile_id))
        return QtCore.QPointF(x + self._shape[1] / 2, y + self._shape[0] / 2)

    def tile_pixels(self, tile_id: int) -> np.ndarray:
        """uint8 (h, w, 3) of tile ``tile_id`` as shown."""
        y, x = self._origin(self.ids.index(tile_id))
        image = self.image.image
        assert image is not None
        return np.asarray(image[y : y + self._shape[0], x : x + self._shape[1]])

    def _origin(self, index: int) -> tuple[int, int]:
        return tile_origin(index, self._columns, self._shape, self._gap, self._caption)

    def _place_captions(self) -> None:
        for item in self._captions:
            self.viewbox.removeItem(item)
        self._captions = []
        h, w = self._shape
        for index, text in enumerate(self.captions[: len(self.ids)]):
            item = QtWidgets.QGraphicsSimpleTextItem(text)
            item.setBrush(QtGui.QColor(*CAPTION_RGB))
            box = item.boundingRect()
            scale = min(self._caption / max(box.height(), 1.0), w / max(box.width(), 1.0))
            item.setScale(scale)
            y, x = self._origin(index)
            item.setPos(x + (w - box.width() * scale) / 2, y + h + (self._caption - box.height() * scale) / 2)
            self.viewbox.addItem(item, ignoreBounds=True)
            self._captions.append(item)

    def _on_viewbox_clicked(self, x: float, y: float, double: bool) -> None:
        tile_id = self.tile_at(x, y)
        if tile_id is None:
            return
        if double:
            self.tile_activated.emit(tile_id)
        else:
            self.tile_clicked.emit(tile_id)


def heat_overlay(display: np.ndarray, values: np.ndarray, opacity: float = 0.55) -> np.ndarray:
    """float32 RGB (..., 3): gray ``display`` in [0, 1] with jet-coloured ``values`` blended in."""
    gray = np.repeat(np.clip(display, 0.0, 1.0)[..., None], 3, axis=-1)
    return ((1 - opacity) * gray + opacity * jet(values)).astype(np.float32)


class PictureView(QtWidgets.QWidget):
    """One titled picture (gray or RGB in [0, 1]) in a zoomable, pannable view box."""

    def __init__(self, title: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel(title)
        self.title.setWordWrap(True)
        self.view = pg.GraphicsView()
        self.view.setBackground((BACKGROUND,) * 3)
        self.viewbox = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setCentralItem(self.viewbox)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.title)
        column.addWidget(self.view, 1)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shown picture's array shape, None when empty."""
        return None if self.image.image is None else tuple(self.image.image.shape)

    def set_picture(self, picture: np.ndarray, title: str | None = None) -> None:
        self.image.setImage(np.asarray(picture, np.float32), levels=(0.0, 1.0))
        self.viewbox.autoRange(padding=0.01)
        if title is not None:
            self.title.setText(title)

    def clear(self, title: str = "") -> None:
        self.image.clear()
        self.title.setText(title)
