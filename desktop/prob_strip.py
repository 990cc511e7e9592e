"""A strip of per-slice lesion probabilities beside the slice slider; click a bar to jump there."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

POSITIVE = QtGui.QColor(230, 70, 50)
NEGATIVE = QtGui.QColor(90, 150, 220)
PENDING = QtGui.QColor(70, 70, 70)


class ProbabilityStrip(QtWidgets.QWidget):
    """Bar ``i`` is slice ``i``'s probability (gray until it is computed); the current slice is marked."""

    slice_clicked = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setMaximumHeight(34)
        self.setToolTip("Lesion probability per slice (red ≥ 0.5); click to go to a slice")
        self.probabilities = np.zeros(0, np.float32)
        self.known = np.zeros(0, bool)
        self.current = 0

    def reset(self, count: int) -> None:
        self.probabilities = np.zeros(count, np.float32)
        self.known = np.zeros(count, bool)
        self.current = 0
        self.update()

    def set_values(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Probabilities ``values`` of slices ``indices``."""
        self.probabilities[indices] = values
        self.known[indices] = True
        self.update()

    def set_current(self, index: int) -> None:
        self.current = index
        self.update()

    def index_at(self, x: float) -> int | None:
        n = len(self.probabilities)
        if n == 0 or self.width() <= 0:
            return None
        return int(np.clip(x / self.width() * n, 0, n - 1))

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 - Qt override
        index = self.index_at(event.position().x())
        if index is not None:
            self.slice_clicked.emit(index)

    def paintEvent(self, _: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(20, 20, 20))
        n = len(self.probabilities)
        if n == 0:
            return
        w, h = self.width() / n, self.height() - 2
        painter.setPen(QtGui.QColor(80, 80, 80))
        painter.drawLine(0, int(1 + h / 2), self.width(), int(1 + h / 2))  # the 0.5 line
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        for i in range(n):
            p = float(self.probabilities[i])
            colour = PENDING if not self.known[i] else POSITIVE if p >= 0.5 else NEGATIVE
            height = h * (p if self.known[i] else 0.08)
            painter.fillRect(QtCore.QRectF(i * w, 1 + h - height, max(w - 0.5, 1.0), height), colour)
        painter.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
        x = (self.current + 0.5) * w
        painter.drawLine(QtCore.QPointF(x, 0), QtCore.QPointF(x, self.height()))
