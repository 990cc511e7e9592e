"""Training curves (Wan et al. 2021, Figs 4-5): loss and the five metrics per epoch.

Six small plots (loss, ACC, sensitivity, specificity, PPV, NPV), the training split solid and
the validation split dashed; a second run can be drawn on the same axes in another colour for
comparison. Each run's best epoch (the rule of :func:`core.train.loop.best_epoch`) is a vertical
line, and the exact values at the epoch under the mouse appear in a table below the plots.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.LegendItem import ItemSample
from PySide6 import QtCore, QtGui, QtWidgets

from core.train.history import EpochRecord
from core.train.loop import best_epoch

SERIES = (("loss", "Loss"), ("acc", "ACC"), ("sensitivity", "Sensitivity"), ("specificity", "Specificity"),
          ("ppv", "PPV"), ("npv", "NPV"))  # fmt: skip
SPLITS = ("train", "val")
STYLES = {"train": QtCore.Qt.PenStyle.SolidLine, "val": QtCore.Qt.PenStyle.DashLine}
RUN_COLOURS = ("#1f5fa8", "#d35400")  # the run, the run it is compared with
HOVER_HINT = "Move the mouse over a plot to read the exact values of an epoch."


@dataclass
class RunCurves:
    """One run as drawn: its records, a curve per (series, split) and a best-epoch line per plot."""

    name: str
    colour: str
    records: list[EpochRecord] = field(default_factory=list)
    items: dict[tuple[str, str], pg.PlotDataItem] = field(default_factory=dict)
    markers: dict[str, pg.InfiniteLine] = field(default_factory=dict)

    def at(self, epoch: int) -> EpochRecord | None:
        return next((r for r in self.records if r.epoch == epoch), None)


def _number(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def hover_table(epoch: int, runs: list[RunCurves]) -> str:
    """Rich text: every series of every run at ``epoch`` (a row per run and split)."""
    head = "".join(f"<th align='right'>&nbsp;&nbsp;{title}</th>" for _, title in SERIES)
    rows = [f"<tr><th align='left'>Epoch {epoch}</th>{head}</tr>"]
    for run in runs:
        record = run.at(epoch)
        if record is None:
            continue
        for split in SPLITS:
            values = getattr(record, split)
            cells = "".join(f"<td align='right'>&nbsp;&nbsp;{_number(values.get(key, math.nan))}</td>"
                            for key, _ in SERIES)  # fmt: skip
            name = f"<span style='color:{run.colour}'>{html.escape(run.name)} {split}</span>"
            rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    return "<table cellspacing='0'>" + "".join(rows) + "</table>"


class EpochAxis(pg.AxisItem):
    """An x axis with ticks on whole epochs only."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802, N803
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return levels or [(1.0, 0.0)]


class LineSample(ItemSample):
    """A legend sample long enough to show a dashed pen; greyed while its curves are hidden.
    A click only reports the sample (the view toggles that run and split on every plot)."""

    WIDTH = 36

    def __init__(self, item: pg.PlotDataItem) -> None:
        super().__init__(item)
        self.setFixedWidth(self.WIDTH)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt override
        return QtCore.QRectF(0, 0, self.WIDTH, 20)

    def paint(self, painter: QtGui.QPainter, *args: object) -> None:
        pen = pg.mkPen(self.item.opts["pen"])
        if not self.item.isVisible():
            pen.setColor(QtGui.QColor("#c8c8c8"))
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.setPen(pen)
        painter.drawLine(QtCore.QPointF(1, 11), QtCore.QPointF(self.WIDTH - 1, 11))

    def mouseClickEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        if event.button() == QtCore.Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            event.accept()  # type: ignore[attr-defined]
            self.sigClicked.emit(self.item)


def _best_marker(colour: str, slot: int) -> pg.InfiniteLine:
    """A hidden vertical line labelled "best N" (the labels of two runs at different heights)."""
    pen = pg.mkPen(colour, width=1.2, style=QtCore.Qt.PenStyle.DashDotLine)
    label = {"position": 0.93 - 0.1 * slot, "color": colour, "fill": (255, 255, 255, 200)}  # text flips sides
    marker = pg.InfiniteLine(angle=90, pen=pen, label="best {value:.0f}", labelOpts=label)
    marker.setVisible(False)
    return marker


class CurvesView(QtWidgets.QWidget):
    """Loss and metric curves of one run (slot 0) and optionally a second one (slot 1)."""

    epoch_hovered = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.hover_lines: dict[str, pg.InfiniteLine] = {}
        self.runs: list[RunCurves | None] = [None, None]
        self.hovered_epoch: int | None = None
        grid = QtWidgets.QGridLayout()
        grid.setSpacing(4)
        for i, (key, title) in enumerate(SERIES):
            self.plots[key] = plot = self._make_plot(key, title)
            grid.addWidget(plot, i // 3, i % 3)
        self.legend = pg.LegendItem(colCount=4, labelTextColor="#222222", labelTextSize="9pt", horSpacing=24,
                                    sampleType=LineSample)  # fmt: skip
        self.legend.sigSampleClicked.connect(self._on_legend_sample_clicked)
        legend_view = pg.GraphicsView(background="w")  # one row above the plots: it never hides a curve
        legend_view.setCentralItem(self.legend)
        legend_view.setFixedHeight(30)
        legend_view.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        legend_view.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.hover_label = QtWidgets.QLabel(HOVER_HINT)
        self.hover_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.hover_label.setMinimumHeight(92)
        self.hover_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(legend_view)
        column.addLayout(grid, 1)
        column.addWidget(self.hover_label)

    def _make_plot(self, key: str, title: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w", axisItems={"bottom": EpochAxis("bottom")})
        plot.setTitle(title, color="#222222", size="10pt")
        plot.setLabel("bottom", "epoch", color="#333333")
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setMenuEnabled(False)
        plot.setMinimumSize(180, 150)
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen("#555555")
            axis.setTextPen("#333333")
        if key != "loss":
            plot.setYRange(0.0, 1.0, padding=0.04)
            plot.setLimits(yMin=-0.05, yMax=1.05)
        line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888888", width=1, style=QtCore.Qt.PenStyle.DotLine))
        line.setVisible(False)
        line.setZValue(-10)
        plot.addItem(line, ignoreBounds=True)
        self.hover_lines[key] = line
        plot.scene().sigMouseMoved.connect(lambda pos, k=key: self._on_plot_mouse_moved(k, pos))
        return plot

    # -- runs ---------------------------------------------------------------------------------

    def show_run(self, slot: int, name: str, records: list[EpochRecord]) -> None:
        """Draw ``records`` as run ``slot`` (0: the run, 1: the comparison), named ``name``."""
        self.clear_run(slot)
        colour = RUN_COLOURS[slot]
        run = RunCurves(name, colour, list(records))
        for key, _ in SERIES:
            plot = self.plots[key]
            for split in SPLITS:
                pen = pg.mkPen(colour, width=2 if slot == 0 else 1.6, style=STYLES[split])
                item = pg.PlotDataItem(pen=pen, symbol="o", symbolSize=4, symbolPen=None, symbolBrush=colour,
                                       connect="finite")  # fmt: skip
                plot.addItem(item)
                if key == "loss":
                    self.legend.addItem(item, f"{name} {split}")
                run.items[key, split] = item
            marker = _best_marker(colour, slot)
            plot.addItem(marker, ignoreBounds=True)
            run.markers[key] = marker
        self.runs[slot] = run
        self._redraw(slot)

    def append(self, record: EpochRecord, slot: int = 0) -> None:
        """Add one finished epoch to run ``slot`` (a repeated epoch replaces the later ones)."""
        run = self.runs[slot]
        if run is None:
            return
        run.records = [r for r in run.records if r.epoch < record.epoch] + [record]
        self._redraw(slot)

    def clear_run(self, slot: int) -> None:
        run = self.runs[slot]
        if run is None:
            return
        for key, _ in SERIES:
            plot = self.plots[key]
            for split in SPLITS:
                plot.removeItem(run.items[key, split])
                self.legend.removeItem(run.items[key, split])
            plot.removeItem(run.markers[key])
        self.runs[slot] = None
        if self.hovered_epoch is not None:
            self.show_epoch(self.hovered_epoch)

    def curve(self, key: str, split: str, slot: int = 0) -> pg.PlotDataItem:
        """The drawn curve of series ``key`` ("loss", "acc", …) on ``split`` ("train" or "val")."""
        run = self.runs[slot]
        if run is None:
            raise KeyError(f"no run in slot {slot}")
        return run.items[key, split]

    def best_marker(self, key: str, slot: int = 0) -> pg.InfiniteLine:
        run = self.runs[slot]
        if run is None:
            raise KeyError(f"no run in slot {slot}")
        return run.markers[key]

    def legend_names(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    def _redraw(self, slot: int) -> None:
        run = self.runs[slot]
        assert run is not None
        epochs = np.array([r.epoch for r in run.records], np.float64)
        for (key, split), item in run.items.items():
            values = np.array([getattr(r, split).get(key, math.nan) for r in run.records], np.float64)
            item.setSymbol("o" if np.isfinite(values).any() else None)  # an all-NaN scatter warns on every paint
            item.setData(epochs, values)
        best = best_epoch(run.records).epoch if run.records else None
        for marker in run.markers.values():
            marker.setVisible(best is not None)
            if best is not None:
                marker.setValue(best)
        if self.hovered_epoch is not None:
            self.show_epoch(self.hovered_epoch)

    def set_visible(self, slot: int, split: str, visible: bool) -> None:
        """Show or hide run ``slot``'s curves of ``split`` on every plot."""
        run = self.runs[slot]
        if run is not None:
            for key, _ in SERIES:
                run.items[key, split].setVisible(visible)
            for sample, _ in self.legend.items:
                sample.update()

    def _on_legend_sample_clicked(self, item: pg.PlotDataItem) -> None:
        for slot, run in enumerate(self.runs):
            for split in SPLITS:
                if run is not None and run.items["loss", split] is item:
                    self.set_visible(slot, split, not item.isVisible())

    # -- hover --------------------------------------------------------------------------------

    def show_epoch(self, epoch: int) -> None:
        """Mark ``epoch`` on every plot and list every curve's value there."""
        shown = [run for run in self.runs if run is not None]
        if not any(run.at(epoch) for run in shown):
            return
        self.hovered_epoch = epoch
        for line in self.hover_lines.values():
            line.setValue(epoch)
            line.setVisible(True)
        self.hover_label.setText(hover_table(epoch, shown))
        self.epoch_hovered.emit(epoch)

    def _on_plot_mouse_moved(self, key: str, pos: QtCore.QPointF) -> None:
        view_box = self.plots[key].getPlotItem().getViewBox()
        if not view_box.sceneBoundingRect().contains(pos):
            return
        x = view_box.mapSceneToView(pos).x()
        epochs = sorted({r.epoch for run in self.runs if run is not None for r in run.records})
        if epochs:
            self.show_epoch(min(epochs, key=lambda e: (abs(e - x), e)))
