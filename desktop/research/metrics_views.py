"""What the Metrics panel draws: Table 1 cells, the ROC plot and the confusion matrices.

Pure formatting and small widgets over :class:`core.evaluate.MethodResult` (plain data), so
they can be tested and reused without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

if TYPE_CHECKING:
    from core.evaluate import MethodResult

METRIC_TITLES = {"acc": "ACC", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV",
                 "npv": "NPV", "f1": "F1", "auc": "AUC"}  # fmt: skip
METHOD_COLOURS = ((230, 126, 34), (52, 152, 219), (46, 204, 113), (155, 89, 182), (231, 76, 60))
BEST_BACKGROUND = QtGui.QColor(255, 230, 140)
DIAGONAL_PEN = pg.mkPen((150, 150, 150), width=1, style=QtCore.Qt.PenStyle.DashLine)


def metric_cell(value: float, ci: tuple[float, float], spread: float) -> str:
    """``0.812 [0.79, 0.85]`` (value, 95% CI) and `` ±0.031`` when a fold spread exists; ``—`` for NaN."""
    if math.isnan(value):
        return "—"
    text = f"{value:.3f}"
    if not (math.isnan(ci[0]) or math.isnan(ci[1])):
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    if not math.isnan(spread):
        text += f" ±{spread:.3f}"
    return text


def metric_tooltip(result: MethodResult, key: str) -> str:
    """The cell's details: its CI, and each fold's value when the method was cross-validated."""
    low, high = result.ci[key]
    lines = [f"{METRIC_TITLES[key]} of {result.name}: {result.metrics[key]:.4f}", f"95% CI [{low:.4f}, {high:.4f}]"]
    if result.folds:
        values = ", ".join("—" if math.isnan(f[key]) else f"{f[key]:.3f}" for f in result.folds)
        lines.append(f"folds: {values} (± = SD over folds)")
    return "\n".join(lines)


def method_colour(index: int) -> tuple[int, int, int]:
    return METHOD_COLOURS[index % len(METHOD_COLOURS)]


class RocPlot(pg.PlotWidget):
    """ROC curves of several methods on one plot, the chance diagonal, AUCs in the legend."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setLabel("bottom", "false positive rate (1 - specificity)")
        self.setLabel("left", "true positive rate (sensitivity)")
        self.setXRange(0, 1, padding=0.02)
        self.setYRange(0, 1, padding=0.02)
        self.setLimits(xMin=-0.05, xMax=1.05, yMin=-0.05, yMax=1.05)
        self.showGrid(x=True, y=True, alpha=0.2)
        # bottom right: the corner ROC curves stay out of
        self.legend = self.addLegend(offset=(-10, -10), labelTextColor=(20, 20, 20), brush=(255, 255, 255, 220))
        self.diagonal = self.plot([0, 1], [0, 1], pen=DIAGONAL_PEN)
        self.curves: list[pg.PlotDataItem] = []

    def set_results(self, results: Sequence[MethodResult]) -> None:
        for curve in self.curves:
            self.removeItem(curve)
        self.curves = []
        for i, r in enumerate(results):
            fpr, tpr = r.roc
            auc = r.metrics["auc"]
            name = f"{r.name} (AUC {auc:.3f})" if not math.isnan(auc) else f"{r.name} (AUC —)"
            curve = self.plot(fpr, tpr, pen=pg.mkPen(method_colour(i), width=2), name=name)
            self.curves.append(curve)

    def legend_texts(self) -> list[str]:
        """The legend's labels as shown (the diagonal has none)."""
        return [label.text for _, label in self.legend.items]


class ConfusionTable(QtWidgets.QWidget):
    """One method's 2×2 confusion matrix: rows the truth, columns the call, shaded by row share."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QtWidgets.QLabel("")
        self.title.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(2, 2)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setFixedHeight(110)
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.title)
        column.addWidget(self.table)

    def set_result(self, result: MethodResult, classes: tuple[str, str], colour: tuple[int, int, int]) -> None:
        negative, positive = classes
        self.title.setText(f"<b style='color: rgb{colour}'>■</b> {result.name} — {result.images} images")
        self.table.setHorizontalHeaderLabels([f"called\n{positive}", f"called\n{negative}"])
        self.table.setVerticalHeaderLabels([f"true {positive}", f"true {negative}"])
        c = result.confusion
        for row, (hit, miss, names) in enumerate(((c.tp, c.fn, ("TP", "FN")), (c.tn, c.fp, ("TN", "FP")))):
            total = max(hit + miss, 1)
            cells = ((hit, names[0]), (miss, names[1])) if row == 0 else ((miss, names[1]), (hit, names[0]))
            for col, (count, name) in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(f"{name} {count}")
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                share = count / total
                good = (row == 0) == (col == 0)
                tint = (46, 204, 113) if good else (231, 76, 60)
                item.setBackground(QtGui.QColor(*tint, int(40 + 160 * share)))
                item.setToolTip(f"{name}: {count} of {hit + miss} ({100 * share:.1f}%)")
                self.table.setItem(row, col, item)

    def counts(self) -> list[list[str]]:
        """The cells' texts, row by row."""
        return [[self.table.item(r, c).text() for c in range(2)] for r in range(2)]
