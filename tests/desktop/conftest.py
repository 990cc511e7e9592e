"""Desktop fixtures: a small random-init checkpoint (never the demo model), a window factory and a
research-panel factory."""

from __future__ import annotations

import gc
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
from desktop.research.session import ResearchSession


@pytest.fixture(autouse=True)
def collect_widgets_on_the_gui_thread():
    """Collect each test's garbage (widgets held in reference cycles by connected lambdas) here on
    the GUI thread. Left to chance, Python's cyclic GC may run it later on an engine worker thread,
    and destroying a QWidget there crashes the process (seen once in the embeddings tests)."""
    yield
    gc.collect()


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


@pytest.fixture
def open_panel(qtbot):
    """``open_panel(PanelClass, session=None, size=(w, h), batch_size=32)``: a research panel on its
    own CPU engine, shown and exposed; every engine is shut down after the test."""
    engines: list[Engine] = []

    def open_(cls, session: ResearchSession | None = None, size: tuple[int, int] = (1200, 750),
              batch_size: int = 32):  # fmt: skip
        application()
        engines.append(Engine("cpu", batch_size=batch_size))
        widget = cls(session if session is not None else ResearchSession(), engines[-1])
        widget.resize(*size)
        qtbot.addWidget(widget)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    yield open_
    for engine in engines:
        engine.shutdown()
