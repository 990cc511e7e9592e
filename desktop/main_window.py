"""The CTLens main window: study view, series list, verdict, heatmap and overlap panels.

Opening a study, loading the model and analysing a series go through :class:`Engine` on its
worker thread; results stream in and the window only redraws. A newer job's ticket makes older
results stale, so switching studies mid-analysis never mixes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.datasets import Sample
from core.errors import CTLensError
from core.explain.series import SeriesExplanation
from core.io.annotations import LesionAnnotation
from core.io.series import Series
from core.io.study import Study
from core.overlap import ThresholdSweep
from core.pixels import LUNG, PRESETS
from desktop.edit_panel import EditPanel
from desktop.engine import Chunk, Engine, LoadedModel
from desktop.heatmap_panel import HeatmapPanel, OverlapPanel
from desktop.info_panel import InfoPanel, shown_value
from desktop.lesion_editor import LesionEditor
from desktop.research import PANELS
from desktop.research.session import CurrentImage
from desktop.results import SeriesResults
from desktop.study_view import StudyView
from desktop.verdict_panel import VerdictPanel

if TYPE_CHECKING:
    from desktop.research.workspace import ResearchWorkspace

PRESET_KEYS = ("lung", "mediastinum", "bone", "header")  # on keys 1-4
MAX_RECENT = 8
THUMBNAIL = 64
OPEN_FILTER = "Studies (*.dcm *.DCM DICOMDIR *.nii *.nii.gz *.png *.jpg *.jpeg);;All (*)"
NAVIGATION_KEYS = (
    ("Wheel, ↑ ↓ ← →", "previous / next slice"), ("PageUp / PageDown", "10 slices back / on"),
    ("Home / End", "first / last slice"), ("Ctrl+wheel", "zoom"), ("Left-drag", "pan"),
    ("Double-click", "fit"), ("Right-drag, Ctrl+left-drag", "window width (horizontal) and level (vertical)"),
)  # fmt: skip


class MainWindow(QtWidgets.QMainWindow):
    study_loaded = QtCore.Signal(object)
    analysis_done = QtCore.Signal()

    def __init__(self, engine: Engine | None = None, *, model_path: str | Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("CTLens")
        self.resize(1320, 880)
        self.engine = engine or Engine()
        self.study: Study | None = None
        self.series: Series | None = None
        self.model: LoadedModel | None = None
        self._no_model = "loading the model…"  # what the verdict panel says while there is no model
        self.results: SeriesResults | None = None
        self._tickets: dict[str, int] = {}
        self._lesions: LesionAnnotation | None = None
        self._opening: str | list[str] = ""  # what open_path was last given
        self._study_paths: list[str] = []  # what the current study was opened from
        self.editor: LesionEditor | None = None
        self.settings = QtCore.QSettings()
        self._build_widgets()
        self._build_menus()
        self._connect()
        self._restore_preferences()
        self.setAcceptDrops(True)
        self.statusBar().showMessage("Open a study with File ▸ Open folder")
        self.load_model(model_path)

    # -- construction -------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.view = StudyView()
        self.stack = QtWidgets.QStackedWidget()  # the viewer, and the research workspace once opened
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)
        self.workspace: ResearchWorkspace | None = None
        self._viewer_docks = QtCore.QByteArray()
        self._pending_slice: int | None = None  # slice to show once the study being opened is loaded
        self.series_list = QtWidgets.QListWidget()
        self.series_list.setIconSize(QtCore.QSize(THUMBNAIL, THUMBNAIL))
        self.series_list.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)  # long UIDs: no sideways scrolling
        self.series_list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verdict_panel = VerdictPanel()
        self.heatmap_panel = HeatmapPanel()
        self.overlap_panel = OverlapPanel()
        self.info_panel = InfoPanel()
        self.edit_panel = EditPanel()
        left = self.series_dock = QtWidgets.QDockWidget("Series", self)
        left.setObjectName("series")
        left.setWidget(self.series_list)
        left.setMaximumWidth(260)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, left)
        side = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(side)
        column.setContentsMargins(4, 4, 4, 4)
        for panel in (self.verdict_panel, self.heatmap_panel, self.overlap_panel, self.edit_panel, self.info_panel):
            column.addWidget(panel)
        column.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right = QtWidgets.QDockWidget("Diagnosis", self)
        right.setObjectName("diagnosis")
        right.setWidget(scroll)
        right.setMinimumWidth(390)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, right)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.hover_label = QtWidgets.QLabel("")
        self.device_label = QtWidgets.QLabel("")
        for widget in (self.hover_label, self.progress, self.cancel_button, self.device_label):
            self.statusBar().addPermanentWidget(widget)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open &folder…", self._on_open_folder, QtGui.QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open fi&les / DICOMDIR…", self._on_open_files, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._action(file_menu, "Load &annotations…", self._on_load_annotations, "Ctrl+L")
        file_menu.addSeparator()
        self._action(file_menu, "&Export view as PNG…", self._on_export_png, "Ctrl+E")
        self._action(file_menu, "Export slice &without overlays as PNG…", lambda: self._on_export_png(False))
        self._action(file_menu, "Export per-slice results as &CSV…", self._on_export_csv, "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)
        edit_menu = self.menuBar().addMenu("&Edit")
        self._action(edit_menu, "&Draw lesions", lambda: self._toggle_mode("draw"), "D")
        self._action(edit_menu, "&Erase lesions", lambda: self._toggle_mode("erase"), "E")
        self._action(edit_menu, "&Undo stroke", self.undo, QtGui.QKeySequence.StandardKey.Undo)
        self._action(edit_menu, "&Redo stroke", self.redo, QtGui.QKeySequence.StandardKey.Redo)
        self._action(edit_menu, "&Save lesions as…", self._on_save_lesions, QtGui.QKeySequence.StandardKey.Save)
        view_menu = self.menuBar().addMenu("&View")
        self.heat_action = self._action(view_menu, "&Heatmap", self.heatmap_panel.visible_box.toggle, "H")
        self.lesion_action = self._action(view_menu, "&Lesion outlines", self.overlap_panel.visible_box.toggle, "A")
        self._action(view_menu, "&Fit to window", self.view.fit, "F")
        view_menu.addSeparator()
        self._action(view_menu, "&Viewer", self.show_viewer, "Ctrl+1")
        self._action(view_menu, "&Research workspace", lambda: self.show_workspace(), "Ctrl+2")
        window_menu = view_menu.addMenu("&Window")
        for key, name in enumerate(PRESET_KEYS, start=1):
            title = PRESETS[name].name.capitalize() if name in PRESETS else "From the header"
            self._action(window_menu, title, lambda _=False, n=name: self.view.set_preset(n), str(key))
        model_menu = self.menuBar().addMenu("&Model")
        self._action(model_menu, "&Open checkpoint…", self._on_open_model)
        self._action(model_menu, "Use the &demo model", lambda: self.load_model(None))
        self._action(model_menu, "&Re-analyse the series", self.analyse)
        self._action(model_menu, "Model &card…", self._on_model_card)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self._on_shortcuts, "F1")
        self._action(help_menu, "&About CTLens", self._on_about)

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut=None) -> QtGui.QAction:  # noqa: ANN001
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect(self) -> None:
        self.series_list.currentRowChanged.connect(self._on_series_row)
        self.view.slice_changed.connect(self._on_slice_changed)
        self.view.hovered.connect(self.hover_label.setText)
        self.verdict_panel.slice_requested.connect(self.view.set_index)
        self.verdict_panel.rule_changed.connect(lambda _: self._update_verdict())
        hp = self.heatmap_panel
        hp.visibility_changed.connect(self._on_heat_visible)
        hp.opacity_changed.connect(self.view.overlays.set_opacity)
        hp.colormap_changed.connect(self.view.overlays.set_colormap)
        hp.support_style_changed.connect(self.view.overlays.set_support_style)
        hp.threshold_changed.connect(self._on_threshold)
        hp.explanation_changed.connect(lambda *_: self.analyse())
        self.overlap_panel.lesions_visibility_changed.connect(self._on_lesions_visible)
        self.cancel_button.clicked.connect(lambda: self.engine.cancel())
        self.edit_panel.mode_changed.connect(self._on_edit_mode)
        self.edit_panel.undo_button.clicked.connect(self.undo)
        self.edit_panel.redo_button.clicked.connect(self.redo)
        self.edit_panel.save_button.clicked.connect(self._on_save_lesions)
        self.view.viewbox.brushed.connect(self._on_brush)
        self.engine.started.connect(self._on_job_started)
        self.engine.progress.connect(self._on_job_progress)
        self.engine.chunk.connect(self._on_chunk)
        self.engine.finished.connect(self._on_job_finished)
        self.engine.failed.connect(self._on_job_failed)
        self.engine.idle.connect(self._on_engine_idle)

    # -- public -------------------------------------------------------------------------------

    def open_path(self, path: str | Path | list[str]) -> None:
        """Open a study (folder, file, DICOMDIR or a list of files) in the background.

        Errors show in the status bar and the current study stays.
        """
        if not self._settle_unsaved():
            return
        self._tickets["study"] = self.engine.open_study(path)
        self._opening = [str(p) for p in path] if isinstance(path, list) else str(path)

    def load_model(self, path: str | Path | None) -> None:
        """Load a checkpoint (``None``: the demo model, trained on first use)."""
        self._tickets["model"] = self.engine.load_model(path)

    def analyse(self) -> None:
        """Diagnose and explain the current series with the panel's method and target."""
        if self.series is None:
            return
        if self.model is None:
            self.verdict_panel.clear(self._no_model)
            return
        self._drop_jobs("analysis", "sweeps")
        hp = self.heatmap_panel
        self.results = SeriesResults(len(self.series), self.series.shape[1:], self.model.card.positive_index)
        self.view.strip.reset(len(self.series))
        self.view.strip.set_current(self.view.index)
        self.verdict_panel.clear("analysing…")
        self._tickets["analysis"] = self.engine.analyse(self.series, method=hp.method, target=hp.target)
        self._on_slice_changed(self.view.index)

    def show_workspace(self, panel: str | None = None, *, data: Path | None = None, model: Path | None = None,
                       runs: list[Path] | None = None) -> ResearchWorkspace:  # fmt: skip
        """Switch to the research workspace (created on first use) on ``data``/``model``/``runs``
        (the demo ones where none is set); ``panel`` brings one to the front. The viewer's current
        slice becomes the image the filter and neuron browsers work on."""
        if self.workspace is None:
            from desktop.research.workspace import ResearchWorkspace  # imported on first use: keeps start-up fast

            self.workspace = ResearchWorkspace(self.engine.device)
            self.workspace.image_requested.connect(self._on_workspace_image)
            self.stack.addWidget(self.workspace)
        if self.stack.currentWidget() is self.view:
            self._viewer_docks = self.saveState()
            for dock in self.findChildren(QtWidgets.QDockWidget):
                dock.hide()
        self.stack.setCurrentWidget(self.workspace)
        self.device_label.hide()  # it names the viewer's model; the workspace names its own
        if self.series is not None and self.view.pixels is not None:  # not an unreadable slice
            index = self.view.index
            name = f"{self.series.info.description or 'series'} slice {index + 1}"
            series = self.series
            self.workspace.set_image(CurrentImage(name, self.view.pixels, series.info.unit, series.slice, index,
                                                  len(series)))  # fmt: skip
        if panel is not None:
            self.workspace.tabs.setCurrentIndex(PANELS.index(panel))
        if data is not None or model is not None or runs or self.workspace.session.model is None:
            self.workspace.open(data=data, model=model, runs=runs)
        return self.workspace

    def show_viewer(self) -> None:
        if self.stack.currentWidget() is not self.view:
            self.stack.setCurrentWidget(self.view)
            self.restoreState(self._viewer_docks)
            self.device_label.show()

    def _on_workspace_image(self, sample: Sample) -> None:
        """Open a dataset image chosen in the workspace (an embedding point, a gallery tile)."""
        self.show_viewer()
        self._pending_slice = sample.frame
        self.open_path(str(sample.path))

    def _drop_jobs(self, *kinds: str) -> None:
        """Cancel these jobs and forget their tickets, so a late result can no longer land."""
        for kind in kinds:
            if (ticket := self._tickets.pop(kind, None)) is not None:
                self.engine.cancel(ticket)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self._settle_unsaved():
            event.ignore()
            return
        self._save_preferences()
        self.engine.shutdown()
        if self.workspace is not None:
            self.workspace.shutdown()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths if len(paths) > 1 else paths[0])

    # -- preferences --------------------------------------------------------------------------

    def _restore_preferences(self) -> None:
        st, hp = self.settings, self.heatmap_panel
        hp.colormap_box.setCurrentText(str(st.value("heatmap/colormap", "jet")))
        hp.opacity.setValue(int(st.value("heatmap/opacity", 40)))
        hp.threshold.setValue(int(st.value("heatmap/threshold", 70)))
        hp.style_box.setCurrentText(str(st.value("heatmap/support", "outline")))
        self.view.set_preset(str(st.value("view/window", "lung")))
        self.info_panel.hide_box.setChecked(str(st.value("privacy/hide_identity", "false")).lower() == "true")
        self._update_recent_menu()

    def _save_preferences(self) -> None:
        st, hp = self.settings, self.heatmap_panel
        st.setValue("heatmap/colormap", hp.colormap_box.currentText())
        st.setValue("heatmap/opacity", hp.opacity.value())
        st.setValue("heatmap/threshold", hp.threshold.value())
        st.setValue("heatmap/support", hp.style_box.currentText())
        st.setValue("privacy/hide_identity", self.info_panel.hide_identity)
        if self.view.window.name in PRESET_KEYS:
            st.setValue("view/window", self.view.window.name)
        st.sync()

    def _remember(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self.settings.setValue("last_folder", str(Path(path).parent if Path(path).is_file() else Path(path)))
        self._update_recent_menu()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    # -- engine results -----------------------------------------------------------------------

    def _current(self, kind: str, ticket: int) -> bool:
        return self._tickets.get(kind) == ticket

    def _on_job_started(self, ticket: int, title: str) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat(title)
        self.progress.setToolTip(title)
        self.cancel_button.setVisible(True)
        self.statusBar().showMessage(f"{title}…")

    def _on_job_progress(self, ticket: int, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_engine_idle(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _on_job_failed(self, ticket: int, kind: str, message: str) -> None:
        if kind == "analysis" and self._current(kind, ticket):
            self.verdict_panel.clear(f"analysis {message}" if message == "cancelled" else f"analysis failed: {message}")
        if kind == "model" and self._current(kind, ticket):
            if self.model is None:
                self._no_model = f"no model: {message}"
                self.device_label.setText("no model")
                self.verdict_panel.clear(self._no_model)
            else:  # the engine keeps the model it had
                message += f"; still using {self.model.path.name}"
        what = {"study": "Cannot open", "model": "Cannot load model", "analysis": "Analysis", "sweeps": "Overlap",
                "annotation": "Cannot load annotations"}  # fmt: skip
        self.statusBar().showMessage(f"{what.get(kind, kind)}: {message}")

    def _on_job_finished(self, ticket: int, kind: str, result: object) -> None:
        if not self._current(kind, ticket):
            return
        if kind == "study":
            assert isinstance(result, Study)
            self._show_study(result)
        elif kind == "model":
            assert isinstance(result, LoadedModel)
            self._show_model(result)
        elif kind == "analysis":
            assert isinstance(result, SeriesExplanation) and self.results is not None
            self.results.unreadable = result.unreadable
            self._update_verdict()
            self.statusBar().showMessage(self._analysed())
            self._start_sweeps()
        elif kind == "annotation":
            assert isinstance(result, LesionAnnotation)
            if self.series is None or result.series_uid != self.series.uid:
                return
            self._set_lesions(result)
            if self.results is not None and self.results.complete:
                self._start_sweeps()
        elif kind == "sweeps" and self.results is not None:
            assert isinstance(result, dict)
            self.results.sweeps = result
            self._update_overlap()
            self.statusBar().showMessage(self._analysed())
            self.analysis_done.emit()

    def _analysed(self) -> str:
        """The status line once a series is analysed: how many slices, and any left out."""
        assert self.results is not None
        done = int(self.results.known.sum())
        bad = self.results.unreadable
        if not bad:
            return f"Analysed {done} slice{'s' * (done != 1)}"
        first = next(iter(bad.values()))
        return f"Analysed {done} of {len(self.results.known)} slices; {len(bad)} unreadable, left out ({first})"

    def _on_chunk(self, chunk: Chunk) -> None:
        if not self._current("analysis", chunk.ticket) or self.results is None:
            return
        self.results.add_chunk(chunk.indices, chunk.probabilities, chunk.raw)
        self.view.strip.set_values(chunk.indices, self.results.probabilities[chunk.indices])
        self._update_verdict()
        if self.view.index in chunk.indices:
            self._on_slice_changed(self.view.index)

    # -- state changes ------------------------------------------------------------------------

    def _show_study(self, study: Study) -> None:
        self.study = study
        with QtCore.QSignalBlocker(self.series_list):
            self.series_list.clear()
            for s, patient in zip(study.series, _patient_labels(study, self.info_panel.hide_identity), strict=True):
                item = QtWidgets.QListWidgetItem(f"{s.info.description or s.info.unit}\n{_slices(len(s))}{patient}")
                item.setToolTip(f"{s.info.description}\n{s.uid}")
                if len(study.series) > 1:
                    item.setIcon(QtGui.QIcon(thumbnail(s)))
                self.series_list.addItem(item)
            self.series_list.setCurrentRow(0)
        self.series_dock.setVisible(len(study.series) > 1)
        fields = study.series[0].info.fields
        hide = self.info_panel.hide_identity
        who = " · ".join(v for v in (shown_value(fields, k, hide) for k in ("PatientID", "StudyDescription")) if v)
        note = f"  ⚠ {len(study.warnings)} warning(s): {study.warnings[0]}" if study.warnings else ""
        opened = self._opening
        self._study_paths = [opened] if isinstance(opened, str) else list(opened)
        name = Path(opened).name if isinstance(opened, str) else f"{len(opened)} files"
        self.statusBar().showMessage(f"{who or name}{note}")
        self.statusBar().setToolTip("\n".join(study.warnings))
        self.setWindowTitle(f"CTLens — {name}")
        self._show_series(study.series[0])
        if isinstance(opened, str):
            self._remember(opened)
        if self._pending_slice is not None:
            self.view.set_index(self._pending_slice)
            self._pending_slice = None
        self.study_loaded.emit(study)

    def _show_series(self, series: Series) -> None:
        self._drop_jobs("annotation")
        self.series = series
        self.editor = None
        self.edit_panel.set_mode("off")
        self._update_history()
        self.info_panel.show_series(series)
        self.results = None
        self._set_lesions(self.study.annotation_for(series) if self.study is not None else None, refresh=False)
        self.view.set_series(series)
        self.analyse()

    def _set_lesions(self, annotation: LesionAnnotation | None, *, refresh: bool = True,
                     keep_sweeps: bool = False) -> None:  # fmt: skip
        self._lesions = annotation
        if self.results is not None and not keep_sweeps:
            self.results.sweeps = {}
        self.overlap_panel.source_label.setText(
            "no annotations"
            if annotation is None
            else f"{Path(annotation.source).name}: lesions on {_slices(len(annotation.lesion_slices))}"
        )
        if refresh:
            self._on_slice_changed(self.view.index)

    def _show_model(self, loaded: LoadedModel) -> None:
        self.model = loaded
        card = loaded.card
        self.heatmap_panel.set_classes(card.classes)
        val = card.metrics.get("val", {})
        acc = f", validation ACC {val['acc']:.2f}" if "acc" in val else ""
        told = ", attention trained on lesion masks" if "attention_supervision" in card.training_data else ""
        self.verdict_panel.model_label.setText(f"Model: {loaded.path.name} ({card.arch}, {card.init}{acc}{told})")
        self.device_label.setText(f"{loaded.device} · {card.arch}")
        if self.series is None:
            self.statusBar().showMessage(f"Model {loaded.path.name} ready; open a study with File ▸ Open folder")
        self.analyse()

    def _start_sweeps(self) -> None:
        if self.results is None or self.results.raw is None or self._lesions is None:
            self.analysis_done.emit()
            return
        masks = {i: self._lesions.mask(i) for i in self._lesions.lesion_slices if self.results.known[i]}
        self._tickets["sweeps"] = self.engine.overlap_sweeps(self.results.raw, masks, self.results.shape)

    def _on_series_row(self, row: int) -> None:
        if self.study is not None and 0 <= row < len(self.study.series) and self._settle_unsaved():
            self._show_series(self.study.series[row])

    def _on_slice_changed(self, index: int) -> None:
        """Show slice ``index``'s overlays; hidden ones are not computed at all."""
        layers = self.view.overlays
        show_heat = self.results is not None and layers.heat_visible
        layers.set_heatmap(self.results.heatmap(index) if show_heat and self.results is not None else None)
        show_lesion = self._lesions is not None and layers.lesion_visible
        layers.set_lesion(self._lesions.mask(index) if show_lesion and self._lesions is not None else None)
        self._update_overlap()

    def _on_heat_visible(self, visible: bool) -> None:
        self.view.overlays.set_heat_visible(visible)
        self._on_slice_changed(self.view.index)

    def _on_lesions_visible(self, visible: bool) -> None:
        self.view.overlays.set_lesion_visible(visible)
        self._on_slice_changed(self.view.index)

    def _on_threshold(self, threshold: float) -> None:
        self.view.overlays.set_threshold(threshold)
        self._update_overlap()

    def _update_verdict(self) -> None:
        if self.results is not None:
            self.verdict_panel.show_probabilities(*self.results.known_probabilities(), self.results.complete,
                                                  len(self.results.unreadable))  # fmt: skip

    def _update_overlap(self) -> None:
        t = self.heatmap_panel.threshold_value
        lesions = self._lesions
        if self.results is None or lesions is None:
            self.overlap_panel.show_slice(None, "")
            self.overlap_panel.show_study(None)
            return
        index = self.view.index
        scores = self.results.slice_scores(index, t)
        if scores is None:
            if not lesions.labels[index].any():
                reason = "no lesion on this slice"
            elif index in self.results.unreadable:
                reason = "unreadable, not analysed"
            else:
                reason = "heatmap not computed yet"
            self.overlap_panel.show_slice(None, reason)
        else:
            self.overlap_panel.show_slice(scores, "")
        self.overlap_panel.show_study(self.results.study_summary(t) if self.results.sweeps else None)

    # -- lesion editing -----------------------------------------------------------------------

    def ask_unsaved(self) -> str:
        """Ask what to do with unsaved lesion edits: "save", "discard" or "cancel"."""
        buttons = QtWidgets.QMessageBox.StandardButton
        answer = QtWidgets.QMessageBox.question(
            self, "Unsaved lesions", "The lesion drawing has unsaved changes. Save them?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save,
        )  # fmt: skip
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def _settle_unsaved(self) -> bool:
        """True when it is fine to drop the current edits (none, saved now, or discarded)."""
        if self.editor is None or not self.editor.dirty:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self._on_save_lesions()
        if answer == "discard":
            self.editor.dirty = False
        return answer == "discard"

    def _toggle_mode(self, mode: str) -> None:
        self.edit_panel.set_mode("off" if self.edit_panel.mode == mode else mode)

    def _on_edit_mode(self, mode: str) -> None:
        drawing = mode != "off" and self.series is not None
        if drawing and self.editor is None and self.series is not None:
            self.editor = LesionEditor(self.series.uid, self.series.shape, self._lesions)
            self._set_lesions(self.editor.annotation(), keep_sweeps=True)  # same labels: scores stand
        self.view.viewbox.drawing = drawing
        if drawing:
            self.overlap_panel.visible_box.setChecked(True)

    def _on_brush(self, x: float, y: float, phase: str) -> None:
        if self.editor is None:
            return
        index = self.view.index
        if phase == "start":
            self.editor.begin_stroke(index)
        self.editor.paint(index, y - 0.5, x - 0.5, self.edit_panel.size.value(), self.edit_panel.value)
        if phase == "end" and self.editor.end_stroke():
            self._edited(index)
        else:
            self.view.overlays.set_lesion(self.editor.labels[index] > 0)

    def undo(self) -> None:
        if self.editor is not None and (index := self.editor.undo()) is not None:
            self.view.set_index(index)
            self._edited(index)

    def redo(self) -> None:
        if self.editor is not None and (index := self.editor.redo()) is not None:
            self.view.set_index(index)
            self._edited(index)

    def _edited(self, index: int) -> None:
        """Redraw slice ``index``'s lesions and re-score it against its heatmap."""
        assert self.editor is not None
        mask = self.editor.labels[index] > 0
        if self.results is not None:
            heat = self.results.heatmap(index)
            if heat is not None and mask.any():
                self.results.sweeps[index] = ThresholdSweep(heat, mask)
            else:
                self.results.sweeps.pop(index, None)
        self._set_lesions(self.editor.annotation(), keep_sweeps=True)
        self._update_history()

    def _update_history(self) -> None:
        ed = self.editor
        self.edit_panel.set_history(ed is not None and ed.can_undo, ed is not None and ed.can_redo,
                                    ed is not None and ed.dirty)  # fmt: skip

    def _on_save_lesions(self) -> bool:
        if self.editor is None or self.series is None:
            self.statusBar().showMessage("Nothing to save: draw lesions first (D)")
            return False
        start = str(self.settings.value("last_save_folder", ""))
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Save lesions into (outside the study)", start)
        return bool(folder) and self.save_lesions(Path(folder))

    def save_lesions(self, folder: Path) -> bool:
        """Write the drawn lesions as NIfTI (+ DICOM SEG for DICOM series) into ``folder``."""
        from core.io.annotation_writer import save_lesions

        assert self.editor is not None and self.series is not None
        try:
            written = save_lesions(self.editor.labels, self.editor.classes, self.series, folder, self._sources())
        except (CTLensError, OSError) as exc:
            self.statusBar().showMessage(f"Cannot save lesions: {exc}")
            return False
        self.editor.saved(str(written[-1]))
        self.settings.setValue("last_save_folder", str(folder))
        self._set_lesions(self.editor.annotation(), keep_sweeps=True)
        self._update_history()
        self.statusBar().showMessage(f"Saved {', '.join(p.name for p in written)} in {folder}", 5000)
        return True

    # -- dialogs ------------------------------------------------------------------------------

    def _on_open_folder(self) -> None:
        start = str(self.settings.value("last_folder", ""))
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open study folder", start)
        if folder:
            self.open_path(folder)

    def _on_open_files(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self,
            "Open study files",
            str(self.settings.value("last_folder", "")),
            "Studies (*.dcm *.DCM DICOMDIR *.nii *.nii.gz *.png *.jpg *.jpeg);;All (*)",
        )
        if files:
            self.open_path(files if len(files) > 1 else files[0])

    def _on_open_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open checkpoint", "", "CTLens model (*.safetensors)")
        if path:
            self.load_model(path)

    def _sources(self) -> list[Path]:
        """The paths the current study was opened from (exports and drawings never go there)."""
        return [Path(p) for p in self._study_paths]

    def _on_export_png(self, overlays: bool = True) -> None:
        if self.series is None:
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view", "ctlens-view.png", "PNG (*.png)")
        if path:
            self.export_png(Path(path), overlays=overlays)

    def export_png(self, path: Path, *, overlays: bool = True) -> bool:
        """The slice view with a legend strip: as shown, or (``overlays=False``) the bare slice."""
        from desktop.export import view_png

        verdict = self.verdict_panel.verdict
        caption = f"slice {self.view.index + 1}/{len(self.series or [])}"
        if verdict is not None:
            caption += f" · study: {verdict.describe()}"
        hp = self.heatmap_panel
        layers = self.view.overlays
        shown = [item for item in (layers.heat_item, layers.support_item, layers.lesion_item) if item.isVisible()]
        colormap = hp.colormap_box.currentText() if overlays and layers.heat_item.isVisible() else None
        for item in shown if not overlays else []:
            item.setVisible(False)
        pixmap = self.view.graphics.grab()
        for item in shown if not overlays else []:
            item.setVisible(True)
        return self._export(
            lambda: view_png(path, pixmap, colormap=colormap, threshold=hp.threshold_value, caption=caption,
                             sources=self._sources(), lesions=overlays and layers.lesion_item.isVisible()), path,
        )  # fmt: skip

    def _on_export_csv(self) -> None:
        if self.results is None:
            self.statusBar().showMessage("Nothing to export: the series has not been analysed")
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export results", "ctlens-slices.csv", "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> bool:
        from desktop.export import results_csv

        if self.results is None or self.series is None:
            return False
        series, results, t = self.series, self.results, self.heatmap_panel.threshold_value
        lesions = self._lesions.lesion_slices if self._lesions is not None else ()
        return self._export(lambda: results_csv(path, series, results, t, self._sources(), lesions), path)

    def _export(self, write, path: Path) -> bool:  # noqa: ANN001
        try:
            write()
        except (CTLensError, OSError) as exc:
            self.statusBar().showMessage(f"Cannot export: {exc}")
            return False
        self.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    def load_annotation(self, path: str | Path) -> None:
        """Lesion labels for the current series from a SEG, NIfTI or PNG-mask folder (background job)."""
        if self.series is not None:
            self._tickets["annotation"] = self.engine.load_annotation(Path(path), self.series)

    def _on_load_annotations(self) -> None:
        if self.series is None:
            return
        start = str(self.settings.value("last_folder", ""))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load annotations (DICOM SEG or NIfTI; cancel to pick a PNG mask folder)", start,
            "Annotations (*.dcm *.nii *.nii.gz);;All (*)",
        )  # fmt: skip
        if not path:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "PNG mask folder", start)
        if path:
            self.load_annotation(path)

    def _on_model_card(self) -> None:
        if self.model is None:
            self.statusBar().showMessage("No model loaded")
            return
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle("Model card")
        box.setText(model_summary(self.model))
        box.setDetailedText(self.model.card.to_json())
        box.exec()

    def _on_shortcuts(self) -> None:
        rows = [(a.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText), a.text().replace("&", ""))
                for menu in self.menuBar().findChildren(QtWidgets.QMenu) for a in menu.actions()
                if not a.shortcut().isEmpty()]  # fmt: skip
        rows += list(NAVIGATION_KEYS)
        html = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
        QtWidgets.QMessageBox.information(self, "Keyboard shortcuts", f"<table>{html}</table>")

    def _on_about(self) -> None:
        QtWidgets.QMessageBox.about(self, "About CTLens", about_text(self.model))


def _slices(n: int) -> str:
    return f"{n} slice{'s' * (n != 1)}"


def _patient_labels(study: Study, hide_identity: bool) -> list[str]:
    """Per series, " · patient" when the study holds more than one patient (their IDs, or numbers
    while identifying fields are hidden); else ""."""
    ids = [s.info.fields.get("PatientID", "") for s in study.series]
    order = list(dict.fromkeys(ids))
    if len(order) < 2:
        return [""] * len(ids)
    return [f" · patient {order.index(i) + 1}" if hide_identity or not i else f" · {i}" for i in ids]


def thumbnail(series: Series) -> QtGui.QPixmap:
    """The middle slice, lung window for CT (1st-99th percentile otherwise), THUMBNAIL px wide."""
    pixels = np.asarray(series.slice(len(series) // 2), np.float32)
    if series.info.unit == "HU":
        low, high = LUNG.low, LUNG.high
    else:
        low, high = (float(v) for v in np.percentile(pixels, (1, 99)))
    gray = np.ascontiguousarray((np.clip((pixels - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8))
    image = QtGui.QImage(gray.data, gray.shape[1], gray.shape[0], gray.shape[1], QtGui.QImage.Format.Format_Grayscale8)
    return QtGui.QPixmap.fromImage(image.copy()).scaled(
        THUMBNAIL,
        THUMBNAIL,
        QtCore.Qt.AspectRatioMode.KeepAspectRatio,
        QtCore.Qt.TransformationMode.SmoothTransformation,
    )


def model_summary(model: LoadedModel) -> str:
    card = model.card
    prep = card.preprocessing
    val = card.metrics.get("val", {})
    scores = ", ".join(f"{k} {val[k]:.3f}" for k in ("acc", "sensitivity", "specificity", "f1") if k in val)
    supervision = card.training_data.get("attention_supervision")
    return (
        f"<b>{model.path.name}</b><br>{card.arch}, classes {' / '.join(card.classes)}, initialised {card.init}<br>"
        f"input {prep.input_size}², {prep.channel_handling}, window W{prep.window.width:g} L{prep.window.level:g}<br>"
        f"trained on {card.training_data.get('root', 'unknown data')}<br>"
        f"{f'with {supervision}<br>' if supervision else ''}"
        f"validation: {scores or 'not recorded'}<br>"
        f"created {card.created} · running on {model.device}"
    )


def about_text(model: LoadedModel | None) -> str:
    import pydicom
    import pyqtgraph
    import PySide6
    import torch

    from core import __version__

    device = model.device if model is not None else "no model loaded"
    return (
        f"<b>CTLens {__version__}</b><br>Inspectable deep-learning CT diagnosis after Wan, Zhou &amp; Zhang, "
        f"Entropy 2021.<br><br>torch {torch.__version__} · PySide6 {PySide6.__version__} · "
        f"pyqtgraph {pyqtgraph.__version__} · pydicom {pydicom.__version__}<br>Device: {device}"
    )
