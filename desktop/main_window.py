"""The CTLens main window: the study view, a series list and the loader's warnings."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from core.errors import CTLensError
from core.io.study import Study, open_study
from desktop.study_view import StudyView


class MainWindow(QtWidgets.QMainWindow):
    study_loaded = QtCore.Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("CTLens")
        self.resize(1100, 820)
        self.study: Study | None = None
        self.view = StudyView()
        self.setCentralWidget(self.view)
        self.series_list = QtWidgets.QListWidget()
        dock = QtWidgets.QDockWidget("Series", self)
        dock.setWidget(self.series_list)
        dock.setMaximumWidth(280)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.series_list.currentRowChanged.connect(self._on_series_list_row_changed)
        menu = self.menuBar().addMenu("&File")
        open_action = QtGui.QAction("Open &folder…", self, shortcut=QtGui.QKeySequence.StandardKey.Open)
        open_action.triggered.connect(self._on_open_triggered)
        menu.addAction(open_action)
        quit_action = QtGui.QAction("&Quit", self, shortcut=QtGui.QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)
        self.statusBar().showMessage("Open a study with File ▸ Open folder")

    def open_path(self, path: str | Path) -> bool:
        """Open a study; on failure show the one-line reason and keep the current one."""
        try:
            study = open_study(path)
        except CTLensError as exc:
            self.statusBar().showMessage(f"Cannot open: {exc}")
            return False
        self.study = study
        with QtCore.QSignalBlocker(self.series_list):
            self.series_list.clear()
            for s in study.series:
                self.series_list.addItem(f"{s.info.description} ({len(s)} slices)")
        self.series_list.setCurrentRow(0)
        self.view.set_series(study.series[0])
        fields = study.series[0].info.fields
        who = " · ".join(v for v in (fields.get("PatientID"), fields.get("StudyDescription")) if v)
        note = f"  ⚠ {len(study.warnings)} warning(s): {study.warnings[0]}" if study.warnings else ""
        self.statusBar().showMessage(f"{who or Path(path).name}{note}")
        self.setWindowTitle(f"CTLens — {Path(path).name}")
        self.study_loaded.emit(study)
        return True

    def _on_series_list_row_changed(self, row: int) -> None:
        if self.study is not None and 0 <= row < len(self.study.series):
            self.view.set_series(self.study.series[row])

    def _on_open_triggered(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open study folder")
        if folder:
            self.open_path(folder)
