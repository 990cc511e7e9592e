"""Viewer fixtures: a small random-init checkpoint (never the demo model) and a window factory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6 import QtCore

from core.model.build import build_classifier
from core.model.card import ModelCard
from core.model.checkpoint import save_checkpoint
from core.preprocess import Preprocessing
from desktop.app import application
from desktop.engine import Engine
from desktop.main_window import MainWindow


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    card = ModelCard("alexnet", ("non-COVID", "COVID"), Preprocessing(input_size=96), metrics={"val": {"acc": 0.5}})
    return save_checkpoint(path, build_classifier().eval(), card)


@pytest.fixture
def make_window(qtbot, tiny_model, tmp_path):
    """``make_window(study_path)``: a window on the tiny model, returned once the study is analysed.

    Preferences go to an INI file under the test's tmp_path, not the user's settings.
    """
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(
        QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path / "settings")
    )

    def make(study: Path | None = None) -> MainWindow:
        application()
        window = MainWindow(Engine("cpu", batch_size=4), model_path=tiny_model)
        window.ask_unsaved = lambda: "discard"  # never a modal question in tests (closing included)
        qtbot.addWidget(window)
        if study is not None:
            with qtbot.waitSignal(window.analysis_done, timeout=60_000):
                window.open_path(study)
        return window

    yield make
