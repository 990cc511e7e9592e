"""Process-wide Qt and pyqtgraph setup; the only module that sets global options."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pyqtgraph as pg  # noqa: E402
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
