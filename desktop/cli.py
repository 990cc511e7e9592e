"""The ``ctlens`` command: the headless commands plus ``view`` (the desktop viewer)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.cli.main import build_parser, run
from core.cli.progress import ProgressBar


def _add_view(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("view", help="open the viewer (on the demo study when no path is given)")
    p.add_argument("path", nargs="?", help="study folder, DICOM/NIfTI/image file or DICOMDIR")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png", help="render the window to a PNG and exit")
    p.add_argument("--slice", type=int, help="slice index to show (default: the middle one)")
    p.set_defaults(run=view)


def view(args: argparse.Namespace) -> int:
    from desktop.app import application
    from desktop.main_window import MainWindow

    path = args.path
    if path is None:
        from core.demo import ensure_demo_study

        path = str(ensure_demo_study(progress=ProgressBar("preparing demo study")))
    app = application()
    window = MainWindow()
    opened = window.open_path(path)
    if opened and args.slice is not None and window.study is not None:
        window.view.set_series(window.study.series[0], max(0, min(args.slice, len(window.study.series[0]) - 1)))
    if args.screenshot is not None:
        return _screenshot(window, args.screenshot, opened)
    window.show()
    return app.exec()


def _screenshot(window: object, out: Path, opened: bool) -> int:
    from PySide6 import QtWidgets

    assert isinstance(window, QtWidgets.QMainWindow)
    window.show()
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out)):
        print(f"ctlens view: cannot write {out}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    window.close()
    return 0 if opened else 2


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, build_parser(extra=(_add_view,)), default=None)
