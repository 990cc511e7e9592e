"""The ``ctlens`` command: the headless commands plus ``view`` (the desktop viewer)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.main import build_parser, run
from core.cli.progress import ProgressBar
from desktop.research import PANELS

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

SCREENSHOT_TIMEOUT_MS = 15 * 60 * 1000  # the demo model may be training on first use
FAILED = {"study": "cannot open", "model": "cannot load model", "analysis": "analysis failed"}


def _add_view(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("view", help="open the viewer (on the demo study when no path is given)")
    p.add_argument("path", nargs="?", help="study folder, DICOM/NIfTI/image file or DICOMDIR")
    p.add_argument("--model", type=Path, help="checkpoint (.safetensors); default: the demo model")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png", help="render the window to a PNG and exit")
    p.add_argument("--slice", type=int, help="slice index to show (default: the middle one)")
    p.add_argument("--overlay", choices=("on", "off"), default="on", help="heatmap overlay (default on)")
    p.add_argument("--threshold", type=float, help="support-region threshold in [0, 1] (default 0.70)")
    p.add_argument("--panel", choices=PANELS, help="open the research workspace on this panel")
    p.add_argument("--data", type=Path, help="research workspace: dataset folder (default: the demo dataset)")
    p.add_argument("--run", type=Path, action="append", dest="runs",
                   help="research workspace: run folder(s) for the curves")  # fmt: skip
    p.set_defaults(run=view)


def view(args: argparse.Namespace) -> int:
    from desktop.app import application, gui_thread_gc
    from desktop.engine import Engine
    from desktop.main_window import MainWindow

    if args.threshold is not None and not 0 <= args.threshold <= 1:
        print("ctlens view: --threshold must lie in [0, 1]", file=sys.stderr)
        return 2
    path = args.path
    if path is None and args.panel is None:
        from core.demo import ensure_demo_study

        path = str(ensure_demo_study(progress=ProgressBar("preparing demo study")))
    app = application()
    with gui_thread_gc():
        engine = Engine(args.device)
        failures: list[str] = []  # the viewer's failed jobs, for --screenshot's exit status
        engine.failed.connect(lambda _t, kind, message: failures.append(f"{FAILED.get(kind, kind)}: {message}")
                              if message != "cancelled" else None)  # fmt: skip
        window = MainWindow(engine, model_path=args.model)
        if args.overlay == "off":
            window.heatmap_panel.visible_box.setChecked(False)
        if args.threshold is not None:
            window.heatmap_panel.threshold.setValue(round(args.threshold * 100))
        if args.slice is not None:
            window.study_loaded.connect(lambda _: window.view.set_index(args.slice))
        if path is not None:
            window.open_path(path)
        if args.panel is not None:
            window.show_workspace(args.panel, data=args.data, model=args.model, runs=args.runs)
            if args.screenshot is not None:
                return _screenshot(window, args.screenshot, failures, panel=True)
        elif args.screenshot is not None:
            return _screenshot(window, args.screenshot, failures)
        window.show()
        return app.exec()


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, build_parser(extra=(_add_view,)), default=None)


def _screenshot(window: MainWindow, out: Path, failures: list[str], *, panel: bool = False) -> int:
    """Show the window (the research workspace when ``panel``), wait until its jobs have settled,
    grab it to ``out``. Exit status 2, with the errors on stderr, when a job failed (the viewer's
    ``failures``, the workspace's panels' errors) or no study opened in the viewer."""
    from PySide6 import QtCore, QtWidgets

    from desktop.research.job_bar import JobBar

    workspace = window.workspace
    window.show()
    timer = QtCore.QElapsedTimer()
    timer.start()
    quiet_since = None
    while timer.elapsed() < SCREENSHOT_TIMEOUT_MS:  # until every lane has been idle for a moment
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)  # no exec() loop here
        QtCore.QThread.msleep(20)
        idle = not window.engine.busy and (workspace is None or workspace.ready)
        quiet_since = (quiet_since or timer.elapsed()) if idle else None
        if quiet_since is not None and timer.elapsed() - quiet_since > 1500:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    if panel and workspace is not None:
        failures = [bar.error for bar in workspace.findChildren(JobBar) if bar.error]
    elif window.study is None and not failures:
        failures.append("no study opened")
    window.close()
    if not ok:
        print(f"ctlens view: cannot write {out}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    if failures:
        print(f"ctlens view: {'; '.join(dict.fromkeys(failures))}", file=sys.stderr)
        return 2
    return 0
