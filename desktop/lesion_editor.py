"""Drawing and erasing lesion labels with a round brush; one undo step per stroke.

Pure numpy (no Qt): the window feeds it brush positions and redraws from :attr:`labels`.
"""

from __future__ import annotations

import numpy as np

from core.io.annotations import GGO_CONSOLIDATION, LesionAnnotation


class LesionEditor:
    """An editable copy of a series' lesion labels (uint8 (n, rows, cols), 0 = background)."""

    def __init__(self, series_uid: str, shape: tuple[int, int, int], start: LesionAnnotation | None = None) -> None:
        self.series_uid = series_uid
        self.labels = np.zeros(shape, np.uint8) if start is None else np.array(start.labels, np.uint8)
        self.classes: dict[int, str] = (
            dict(GGO_CONSOLIDATION) if start is None else {**GGO_CONSOLIDATION, **start.classes}
        )
        self.source = "" if start is None else start.source
        self.dirty = False
        self._undo: list[tuple[int, np.ndarray]] = []
        self._redo: list[tuple[int, np.ndarray]] = []
        self._stroke: tuple[int, np.ndarray] | None = None

    def annotation(self) -> LesionAnnotation:
        """The labels as an annotation (shares the array: later edits show through)."""
        return LesionAnnotation(self.series_uid, self.labels, self.classes, self.source or "unsaved edits")

    def begin_stroke(self, index: int) -> None:
        self._stroke = (index, self.labels[index].copy())

    def paint(self, index: int, row: float, col: float, radius: float, value: int) -> None:
        """Set a disc of ``radius`` pixels around (row, col) on slice ``index`` to ``value`` (0 erases)."""
        if self._stroke is None or self._stroke[0] != index:
            self.begin_stroke(index)
        rows, cols = self.labels.shape[1:]
        r0, r1 = max(int(row - radius), 0), min(int(row + radius) + 1, rows)
        c0, c1 = max(int(col - radius), 0), min(int(col + radius) + 1, cols)
        if r0 >= r1 or c0 >= c1:
            return
        rr, cc = np.ogrid[r0:r1, c0:c1]
        disc = (rr - row) ** 2 + (cc - col) ** 2 <= radius**2
        self.labels[index, r0:r1, c0:c1][disc] = value

    def end_stroke(self) -> bool:
        """Close the stroke; True when it changed anything (then it can be undone)."""
        if self._stroke is None:
            return False
        index, before = self._stroke
        self._stroke = None
        if np.array_equal(before, self.labels[index]):
            return False
        self._undo.append((index, before))
        self._redo.clear()
        self.dirty = True
        return True

    def undo(self) -> int | None:
        """Revert the last stroke; returns the slice it touched."""
        return self._swap(self._undo, self._redo)

    def redo(self) -> int | None:
        return self._swap(self._redo, self._undo)

    def _swap(self, source: list[tuple[int, np.ndarray]], target: list[tuple[int, np.ndarray]]) -> int | None:
        if not source:
            return None
        index, labels = source.pop()
        target.append((index, self.labels[index].copy()))
        self.labels[index] = labels
        self.dirty = True
        return index

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def saved(self, source: str) -> None:
        self.source = source
        self.dirty = False
