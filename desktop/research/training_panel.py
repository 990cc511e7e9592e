"""Training panel (Wan et al. 2021, Figs 4-5): train, stop and resume a run and watch its loss
and metric curves grow epoch by epoch; open a past run, or two to compare them.

Training runs on the workspace's training lane (its own :class:`~desktop.engine.Engine`), so the
other panels stay usable. Every finished epoch arrives as a partial result and is appended to
the curves; Stop cancels at the next batch (finished epochs are kept) and Resume continues the
shown run to its planned epochs with its own settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.demo import cache_dir
from core.errors import CTLensError
from core.train.config import TrainConfig
from core.train.cross_validate import CrossValidation
from core.train.history import EpochRecord
from core.train.loop import TrainResult
from desktop.engine import Engine, Job
from desktop.research.curves import CurvesView
from desktop.research.job_bar import JobBar
from desktop.research.session import ResearchSession
from desktop.research.training_form import TrainingForm
from desktop.research.training_runs import RunFolder, dataset_root, holds_run, new_run_dir, read_run, run_target


def runs_dir() -> Path:
    """Where new runs go unless the user chooses a folder."""
    return cache_dir() / "runs"


def train_run(job: Job, data: Path | None, run: Path, cfg: TrainConfig, resume: bool) -> object:
    """Worker side: train (or continue) ``run``; every epoch is emitted as ``(fold, record)``."""
    from core.datasets import open_dataset
    from core.train.cross_validate import cross_validate
    from core.train.loop import train

    root = dataset_root(read_run(run), data) if resume else data
    if root is None:
        raise CTLensError("choose a dataset folder first")
    dataset = open_dataset(root)
    if cfg.folds > 1:
        return cross_validate(dataset, run, cfg, resume=resume, progress=job.progress, cancel=job.cancelled,
                              on_epoch=lambda fold, record: job.emit((fold, record)))  # fmt: skip
    return train(dataset, run, cfg, resume=resume, progress=job.progress, cancel=job.cancelled,
                 on_epoch=lambda record: job.emit((0, record)))  # fmt: skip


class TrainingPanel(QtWidgets.QWidget):
    run_ended = QtCore.Signal(object)  # Path: a run finished, was stopped or failed

    def __init__(self, session: ResearchSession, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.engine = session, engine
        self.job_bar = JobBar(engine)  # connected first: its message is set before this panel's
        self.form = TrainingForm()
        self.curves = CurvesView()
        self.run: RunFolder | None = None  # the run on the curves (slot 0)
        self.compared: RunFolder | None = None  # slot 1
        self.fold = 0  # the fold shown of a cross-validation
        self.ticket: int | None = None  # the training job running
        self.training: Path | None = None  # its folder
        self._live_fold = 0
        self._next_dir: Path | None = None  # chosen folder for the next new run; None: a new one in the cache
        self._previous: RunFolder | None = None  # shown before Start, shown again if the new run wrote nothing
        self._build()
        self._connect()
        self._on_session_data_changed(session.data)
        self._update_controls()

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.data_label = QtWidgets.QLabel()
        self.data_button = QtWidgets.QPushButton("Dataset…")
        self.folder_label = QtWidgets.QLabel()
        self.folder_button = QtWidgets.QPushButton("Run folder…")
        self.start_button = QtWidgets.QPushButton("Start")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.open_button = QtWidgets.QPushButton("Open run…")
        self.compare_button = QtWidgets.QPushButton("Compare with…")
        self.uncompare_button = QtWidgets.QPushButton("Clear comparison")
        self.fold_combo = QtWidgets.QComboBox()
        self.run_label = QtWidgets.QLabel()
        self.compare_label = QtWidgets.QLabel()
        for label in (self.data_label, self.folder_label, self.run_label, self.compare_label):
            label.setWordWrap(True)
            label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.start_button.setToolTip("Train a new run with these settings")
        self.stop_button.setToolTip("Stop at the next batch; finished epochs are kept")
        self.resume_button.setToolTip("Continue the shown run to its planned epochs, with its own settings")
        side = QtWidgets.QVBoxLayout()
        side.addWidget(self._group("Dataset", self.data_label, self.data_button))
        side.addWidget(self.form)
        buttons = QtWidgets.QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(button)
        side.addWidget(self._group("New run", self.folder_label, self.folder_button, buttons))
        compare_row = QtWidgets.QHBoxLayout()
        compare_row.addWidget(self.compare_button)
        compare_row.addWidget(self.uncompare_button)
        side.addWidget(self._group("Curves", self.run_label, self.fold_combo, self.open_button, self.compare_label,
                                   compare_row))  # fmt: skip
        side.addStretch(1)
        side_widget = QtWidgets.QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(330)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side_widget)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(350)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(scroll)
        row.addWidget(self.curves, 1)
        column = QtWidgets.QVBoxLayout(self)
        column.addLayout(row, 1)
        column.addWidget(self.job_bar)

    @staticmethod
    def _group(title: str, *parts: QtWidgets.QWidget | QtWidgets.QLayout) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox(title)
        layout = QtWidgets.QVBoxLayout(box)
        for part in parts:
            if isinstance(part, QtWidgets.QLayout):
                layout.addLayout(part)
            else:
                layout.addWidget(part)
        return box

    def _connect(self) -> None:
        self.data_button.clicked.connect(self._on_data_button_clicked)
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.compare_button.clicked.connect(self._on_compare_button_clicked)
        self.uncompare_button.clicked.connect(lambda: self.compare_run(None))
        self.fold_combo.activated.connect(self._on_fold_combo_activated)
        self.engine.partial.connect(self._on_engine_partial)
        self.engine.finished.connect(self._on_engine_finished)
        self.engine.failed.connect(self._on_engine_failed)
        self.session.data_changed.connect(self._on_session_data_changed)
        self.session.runs_changed.connect(self._on_session_runs_changed)

    # -- public -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.ticket is not None

    def refresh(self) -> None:
        """Show the session's runs (the first; the second for comparison); trains nothing."""
        self._on_session_data_changed(self.session.data)  # set quietly by the workspace
        if self.busy:
            return
        runs = self.session.runs
        if runs:
            self.open_run(runs[0], publish=False)
        else:
            self._show(None, 0)
        self.compare_run(runs[1] if len(runs) > 1 else None, publish=False)

    def set_run_folder(self, folder: str | Path | None) -> None:
        """Where the next Start trains (``None``: a new folder under the CTLens cache)."""
        self._next_dir = None if folder is None else Path(folder)
        self._update_controls()

    def start(self) -> int | None:
        """Train a new run with the form's settings; returns the job's ticket (None: not started)."""
        if self.busy:
            return None
        data = self.session.data
        try:
            if data is None:
                raise CTLensError("choose a dataset folder first")
            cfg = self.form.config(self.engine.device)
            run = run_target(self._next_dir, data) if self._next_dir is not None else new_run_dir(runs_dir())
        except CTLensError as exc:
            self.job_bar.show_message(str(exc), error=True)
            return None
        self._next_dir, self._previous = None, self.run
        self.run = RunFolder(run, cfg.folds, cfg)
        self._show(self.run, 0)
        return self._submit(run, cfg, resume=False)

    def stop(self) -> None:
        """Stop the running job at its next batch (finished epochs stay in its folder)."""
        if self.ticket is not None:
            self.engine.cancel(self.ticket)
            self.stop_button.setEnabled(False)
            self.job_bar.show_message("Stopping at the next batch…")

    def resume(self) -> int | None:
        """Continue the shown run to its planned epochs; returns the job's ticket."""
        run = self.run
        if self.busy:
            return None
        if run is None or run.config is None or not run.unfinished:
            self.job_bar.show_message("Nothing to resume: open a stopped run", error=True)
            return None
        return self._submit(run.path, run.config, resume=True)

    def open_run(self, path: str | Path, *, publish: bool = True) -> bool:
        """Show the curves of the run in ``path``; on failure say why and keep what is shown."""
        try:
            if self.busy:
                raise CTLensError("a run is training: stop it before opening another")
            run = read_run(path)
        except CTLensError as exc:
            self.job_bar.show_message(str(exc), error=True)
            return False
        self.job_bar.show_message("")
        self._show(run, 0)
        if self.compared is not None:
            self._show_compared()
        if publish:
            self._publish()
        return True

    def compare_run(self, path: str | Path | None, *, publish: bool = True) -> bool:
        """Draw the run in ``path`` on the same axes (``None``: remove the comparison)."""
        try:
            compared = None if path is None else read_run(path)
            if compared is not None and self.run is not None and compared.path.resolve() == self.run.path.resolve():
                raise CTLensError(f"{compared.path.name}: that is the run shown; choose another to compare with")
        except CTLensError as exc:
            self.job_bar.show_message(str(exc), error=True)
            return False
        self.compared = compared
        self.job_bar.show_message("")
        self._show_compared()
        if publish:
            self._publish()
        return True

    def show_fold(self, fold: int) -> None:
        """Show fold ``fold`` (0-based) of the cross-validation on the curves."""
        if self.run is not None and 0 <= fold < self.run.folds:
            self._show(self.run, fold)
            if self.compared is not None:
                self._show_compared()

    # -- internals ----------------------------------------------------------------------------

    def _submit(self, run: Path, cfg: TrainConfig, *, resume: bool) -> int:
        data = self.session.data
        title = f"{'Resuming' if resume else 'Training'} {run.name}"
        ticket = self.engine.submit("train", title, lambda job: train_run(job, data, run, cfg, resume))
        self.ticket, self.training, self._live_fold = self.job_bar.track(ticket), run, self.fold
        self.job_bar.cancel_button.setVisible(False)  # the panel's Stop button does it
        self._update_controls()
        return ticket

    def _show(self, run: RunFolder | None, fold: int) -> None:
        """Put ``run``'s fold ``fold`` on the curves (slot 0) from its history file."""
        self.run, self.fold = run, fold
        if run is None:
            self.curves.clear_run(0)
        else:
            self.curves.show_run(0, self._name(run, fold), run.records(fold))
        with QtCore.QSignalBlocker(self.fold_combo):
            self.fold_combo.clear()
            if run is not None and run.folds > 1:
                self.fold_combo.addItems([f"fold {k + 1} of {run.folds}" for k in range(run.folds)])
                self.fold_combo.setCurrentIndex(fold)
        self.fold_combo.setVisible(run is not None and run.folds > 1)
        self._update_controls()

    def _show_compared(self) -> None:
        other = self.compared
        if other is None:
            self.curves.clear_run(1)
        else:
            fold = self.fold if self.fold < other.folds else 0
            self.curves.show_run(1, self._name(other, fold), other.records(fold))
        self._update_controls()

    def _name(self, run: RunFolder, fold: int) -> str:
        """Legend name; the parent folder is added when both runs have the same name."""
        other = self.compared if run is self.run else self.run
        label = run.label(fold)
        if other is not None and other.path != run.path and other.path.name == run.path.name:
            label = f"{run.path.parent.name}/{label}"
        return label

    def _publish(self) -> None:
        runs = [r.path for r in (self.run, self.compared) if r is not None]
        if runs != self.session.runs:
            self.session.set_runs(runs)

    def _update_controls(self) -> None:
        busy = self.busy
        self.start_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.resume_button.setEnabled(not busy and self.run is not None and self.run.unfinished)
        for widget in (self.open_button, self.folder_button, self.data_button, self.form):
            widget.setEnabled(not busy)
        self.uncompare_button.setEnabled(self.compared is not None)
        target = self._next_dir
        self.folder_label.setText(f"Into <b>{target.name}</b>" if target is not None else
                                  "Into a new folder under the CTLens cache")  # fmt: skip
        self.folder_label.setToolTip(str(target) if target is not None else str(runs_dir()))
        run = self.run
        self.run_label.setText("No run shown" if run is None else
                               f"<b>{run.path.name}</b><br><small>{run.summary()}</small>")  # fmt: skip
        self.run_label.setToolTip("" if run is None else str(run.path))
        other = self.compared
        self.compare_label.setText("" if other is None else f"Compared with <b>{other.path.name}</b><br>"
                                   f"<small>{other.summary()}</small>")  # fmt: skip
        self.compare_label.setVisible(other is not None)

    # -- slots --------------------------------------------------------------------------------

    def _on_engine_partial(self, ticket: int, item: object) -> None:
        if ticket != self.ticket or self.run is None or not isinstance(item, tuple):
            return
        fold, record = item
        assert isinstance(record, EpochRecord)
        if fold != self._live_fold:
            if self.fold == self._live_fold:  # follow the training onto its next fold
                self._show(self.run, fold)
            self._live_fold = fold
        if fold == self.fold:
            self.curves.append(record)
        self._update_controls()

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        if ticket != self.ticket:
            return
        if isinstance(result, TrainResult):
            acc = result.best.get("acc", float("nan"))
            message = f"Finished {result.epochs_done} epochs; best epoch {result.best_epoch} (val ACC {acc:.3f})"
        elif isinstance(result, CrossValidation):
            message = (f"Finished {len(result.folds)}-fold cross-validation: val ACC {result.mean['acc']:.3f} "
                       f"± {result.std['acc']:.3f}")  # fmt: skip
        else:
            message = "Finished"
        self._end_training()
        self.job_bar.show_message(message)

    def _on_engine_failed(self, ticket: int, kind: str, message: str) -> None:
        if ticket != self.ticket:
            return
        records = self.curves.runs[0].records if self.curves.runs[0] is not None else []
        self._end_training()
        if message == "cancelled" and records:
            more = "; Resume continues it" if self.resume_button.isEnabled() else ""
            self.job_bar.show_message(f"Stopped after epoch {records[-1].epoch}{more}")
        elif message == "cancelled":
            self.job_bar.show_message("Stopped before its first epoch ended; nothing was kept")

    def _end_training(self) -> None:
        run = self.training
        self.ticket = self.training = None
        if run is not None:
            try:
                self.run = read_run(run)
            except CTLensError:  # stopped or failed before its first epoch ended
                self._show(self._previous if self._previous is not None and holds_run(self._previous.path) else None, 0)
            self._publish()
        self._update_controls()
        if run is not None:
            self.run_ended.emit(run)

    def _on_session_data_changed(self, path: Path | None) -> None:
        self.data_label.setText("None chosen yet" if path is None else f"<b>{path.name}</b>")
        self.data_label.setToolTip("" if path is None else str(path))

    def _on_session_runs_changed(self, runs: list[Path]) -> None:
        shown = [r.path for r in (self.run, self.compared) if r is not None]
        if runs != shown:
            self.refresh()

    def _on_data_button_clicked(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder")
        if folder:
            self.session.set_data(Path(folder))

    def _on_folder_button_clicked(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder for the new run", str(runs_dir()))
        if folder:
            self.set_run_folder(folder)

    def _on_open_button_clicked(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a run folder", str(runs_dir()))
        if folder:
            self.open_run(folder)

    def _on_compare_button_clicked(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Compare with the run in", str(runs_dir()))
        if folder:
            self.compare_run(folder)

    def _on_fold_combo_activated(self, index: int) -> None:
        self.show_fold(index)
