"""Process-wide Qt and pyqtgraph setup; the only module that sets global options."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pyqtgraph as pg  # noqa: E402
from pyqtgraph.util.garbage_collector import GarbageCollector  # noqa: E402
from PySide6 import QtGui, QtWidgets  # noqa: E402

from core import __version__  # noqa: E402
from core.resource import resource_path  # noqa: E402


def application() -> QtWidgets.QApplication:
    """The QApplication, created once with CTLens' name, icon and pyqtgraph options."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(sys.argv[:1])
    assert isinstance(app, QtWidgets.QApplication)
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    app.setApplicationName("CTLens")
    app.setOrganizationName("CTLens")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(QtGui.QIcon(str(resource_path("ctlens.svg"))))
    return app


@contextmanager
def gui_thread_gc(interval: float = 1.0) -> Iterator[None]:
    """Collect cyclic garbage on the GUI thread only, every ``interval`` seconds, while inside.

    A collection that Python happens to start on an engine worker thread can destroy Qt objects
    there (a crash); pyqtgraph's GarbageCollector disables the automatic collector and collects
    from a timer instead. Automatic collection is restored on the way out.
    """
    collector = GarbageCollector(interval=interval)
    try:
        yield
    finally:
        collector.timer.stop()
        gc.enable()
