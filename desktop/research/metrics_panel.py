"""MetricsPanel (the paper's Table 1): LBP + SVM, deep features + SVM and the network side by side.

The table is computed on the engine by :func:`core.evaluate.table1` (the same function as
``ctlens evaluate --baselines``): the network on its held-out images, the two baselines by
k-fold cross-validation over the whole dataset. Each cell shows the value, its 95% bootstrap
interval and, for cross-validated methods, ``±`` the standard deviation over folds (each fold's
value in the tooltip); the best value per column is bold on a yellow background. Below: the ROC
curves on one plot with the AUCs in the legend, and one confusion matrix per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from desktop.research.job_bar import JobBar
from desktop.research.metrics_views import (
    BEST_BACKGROUND,
    METRIC_TITLES,
    ConfusionTable,
    RocPlot,
    method_colour,
    metric_cell,
    metric_tooltip,
)
from desktop.research.session import ResearchSession

if TYPE_CHECKING:
    from core.evaluate import MethodResult
    from desktop.engine import Engine, Job

METRICS = tuple(METRIC_TITLES)
FIXED_COLUMNS = ("Method", "Images")


@dataclass(frozen=True)
class TableResult:
    """What a Table 1 job returns: the methods' results and how they were computed."""

    results: list[MethodResult]
    classes: tuple[str, str]
    images: int
    folds: int  # folds used for the baselines (0: none possible)
    wanted_folds: int
    bootstrap: int


def compute_table(data: Path, model: Path, device: str, folds: int, bootstrap: int, job: Job) -> TableResult:
    """Worker side: Table 1 for ``data`` with the checkpoint ``model``; fewer folds when a class
    has fewer images than ``folds``, no baselines when it has fewer than two."""
    from core.datasets import open_dataset
    from core.evaluate import feasible_folds, table1
    from core.research.models import model_for

    dataset = open_dataset(data)
    network, card = model_for(model, device)
    k = feasible_folds(dataset.samples, folds)
    results = table1(dataset, network, card, model, baselines=k >= 2, folds=max(k, 2), bootstrap=bootstrap,
                     progress=job.progress, cancel=job.cancelled)  # fmt: skip
    return TableResult(results, dataset.classes, len(dataset.samples), k, folds, bootstrap)


class MetricsPanel(QtWidgets.QWidget):
    table_shown = QtCore.Signal(int)  # number of methods

    def __init__(self, session: ResearchSession, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.engine = session, engine
        self.result: TableResult | None = None
        self._ticket: int | None = None
        self.job_bar = JobBar(engine)
        self.hint = QtWidgets.QLabel("")
        self.hint.setWordWrap(True)
        self.folds_spin = QtWidgets.QSpinBox()
        self.folds_spin.setRange(2, 10)
        self.folds_spin.setValue(5)
        self.folds_spin.setToolTip("cross-validation folds for the SVM baselines (fewer when a class is small)")
        self.bootstrap_spin = QtWidgets.QSpinBox()
        self.bootstrap_spin.setRange(0, 10000)
        self.bootstrap_spin.setSingleStep(100)
        self.bootstrap_spin.setValue(1000)
        self.bootstrap_spin.setToolTip("bootstrap resamples for the 95% confidence intervals (0: none)")
        self.compute_button = QtWidgets.QPushButton("Compute")
        self.export_button = QtWidgets.QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.table = _table_widget()
        self.roc_plot = RocPlot()
        self.confusions: list[ConfusionTable] = []
        self.confusion_box = QtWidgets.QVBoxLayout()
        self._layout()
        self._connect()

    def _layout(self) -> None:
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.hint, 1)
        for widget in (QtWidgets.QLabel("Folds:"), self.folds_spin, QtWidgets.QLabel("Bootstrap:"),
                       self.bootstrap_spin, self.compute_button, self.export_button):  # fmt: skip
            top.addWidget(widget)
        matrices = QtWidgets.QWidget()
        side = QtWidgets.QVBoxLayout(matrices)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(QtWidgets.QLabel("<b>Confusion matrices</b> (at each method's cut-off)"))
        side.addLayout(self.confusion_box)
        side.addStretch(1)
        split = QtWidgets.QSplitter()
        split.addWidget(self.roc_plot)
        split.addWidget(matrices)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([780, 480])
        column = QtWidgets.QVBoxLayout(self)
        column.addLayout(top)
        column.addWidget(self.table)
        column.addWidget(split, 1)
        column.addWidget(self.job_bar)

    def _connect(self) -> None:
        self.engine.finished.connect(self._on_engine_finished)
        self.engine.failed.connect(self._on_engine_failed)
        self.compute_button.clicked.connect(self.refresh)
        self.export_button.clicked.connect(self._on_export_clicked)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Compute Table 1 for the session's dataset and model in the background, then show it."""
        data, model = self.session.data, self.session.model
        if data is None or model is None:
            self.hint.setText("Choose a dataset and a model (or the demo ones) to compute Table 1.")
            return
        if self._ticket is not None:
            self.engine.cancel(self._ticket)
        device, folds, bootstrap = self.engine.device, self.folds_spin.value(), self.bootstrap_spin.value()
        self.hint.setText(f"Computing Table 1 for {data.name} with {model.name}…")
        work = lambda job: compute_table(data, model, device, folds, bootstrap, job)  # noqa: E731
        self._ticket = self.job_bar.track(self.engine.submit("metrics-table", "Computing Table 1", work))

    def export_csv(self, path: str | Path) -> bool:
        """Write the shown table to ``path`` as CSV (atomically, never into the dataset's folder);
        False, with the reason in the job bar, when it cannot."""
        from core.atomic import atomic_write_text, check_output_outside
        from core.errors import CTLensError
        from core.evaluate import table_csv

        if self.result is None:
            return False
        path = Path(path)
        try:
            if self.session.data is not None:
                check_output_outside(path, self.session.data)
            atomic_write_text(path, table_csv(self.result.results))
        except (CTLensError, OSError) as exc:
            self.job_bar.show_message(f"Not exported: {exc}", error=True)
            return False
        self.job_bar.show_message(f"Table 1 written to {path}")
        return True

    # -- results ------------------------------------------------------------------------------

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        if ticket == self._ticket and isinstance(result, TableResult):
            self._ticket = None
            self.show_result(result)

    def _on_engine_failed(self, ticket: int, kind: str, message: str) -> None:
        if ticket == self._ticket:
            self._ticket = None
            self.hint.setText("Table 1 was cancelled." if message == "cancelled" else f"No Table 1: {message}")

    def show_result(self, result: TableResult) -> None:
        from core.evaluate import best_per_column

        self.result = result
        best = best_per_column(result.results)
        self.table.setRowCount(len(result.results))
        for row, r in enumerate(result.results):
            self._fill_row(row, r, best)
        self.table.resizeRowsToContents()
        header = self.table.horizontalHeader().height()
        rows = sum(self.table.rowHeight(i) for i in range(self.table.rowCount()))
        self.table.setFixedHeight(header + rows + 2 * self.table.frameWidth() + 2)
        self.roc_plot.set_results(result.results)
        self._show_confusions(result)
        self.export_button.setEnabled(True)
        self.hint.setText(self._describe(result))
        self.table_shown.emit(len(result.results))

    def _fill_row(self, row: int, r: MethodResult, best: dict[str, str]) -> None:
        name = QtWidgets.QTableWidgetItem(r.name)
        name.setForeground(QtGui.QColor(*method_colour(row)).darker(130))
        name.setFont(_bold(name.font()))
        self.table.setItem(row, 0, name)
        images = QtWidgets.QTableWidgetItem(str(r.images))
        images.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.table.setItem(row, 1, images)
        spread = r.fold_sd()
        for col, key in enumerate(METRICS, start=len(FIXED_COLUMNS)):
            item = QtWidgets.QTableWidgetItem(metric_cell(r.metrics[key], r.ci[key], spread[key]))
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(metric_tooltip(r, key))
            if best.get(key) == r.name:
                item.setFont(_bold(item.font()))
                item.setBackground(BEST_BACKGROUND)
                item.setToolTip(item.toolTip() + "\nbest in this column")
            self.table.setItem(row, col, item)

    def _show_confusions(self, result: TableResult) -> None:
        while len(self.confusions) < len(result.results):
            table = ConfusionTable()
            self.confusions.append(table)
            self.confusion_box.addWidget(table)
        for i, table in enumerate(self.confusions):
            table.setVisible(i < len(result.results))
            if i < len(result.results):
                table.set_result(result.results[i], result.classes, method_colour(i))

    @staticmethod
    def _describe(result: TableResult) -> str:
        network = result.results[0]
        text = f"{network.name.split(' (')[0]} on {network.images} held-out images"
        if result.folds:
            fewer = f" (of {result.wanted_folds} asked)" if result.folds < result.wanted_folds else ""
            text += f"; baselines by {result.folds}-fold CV{fewer} over all {result.images} images"
        else:
            text += "; no baselines: a class has fewer than 2 images for cross-validation"
        ci = f"95% bootstrap CIs ({result.bootstrap} resamples)" if result.bootstrap else "no CIs (bootstrap 0)"
        return f"{text}. {ci}; ± = SD over folds; best per column in bold."

    def _on_export_clicked(self) -> None:
        start = str(Path.home() / "table1.csv")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export Table 1", start, "CSV (*.csv)")
        if path:
            self.export_csv(path)


def _table_widget() -> QtWidgets.QTableWidget:
    """Methods × (name, images, metrics); metric columns share the width left by the first two."""
    table = QtWidgets.QTableWidget(0, len(FIXED_COLUMNS) + len(METRICS))
    table.setHorizontalHeaderLabels([*FIXED_COLUMNS, *(METRIC_TITLES[k] for k in METRICS)])
    table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
    for column in range(len(FIXED_COLUMNS)):
        header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
    return table


def _bold(font: QtGui.QFont) -> QtGui.QFont:
    font.setBold(True)
    return font
