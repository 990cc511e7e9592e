"""The UI's one door to ``core``: heavy work runs on one worker thread, results come back as signals.

Jobs run one at a time in submission order. Every job gets a ticket; a newer job of the same
kind makes older results stale (the window ignores chunks whose ticket is not current), and
:meth:`Engine.cancel` stops one job (or all) at its next checkpoint, or before it starts. The model lives here, on
the worker side: the UI only ever sees its :class:`~core.model.card.ModelCard`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore
from torch import nn

from core.errors import Cancelled, CTLensError
from core.explain.series import SeriesExplanation, explain_series
from core.io.annotations import load_annotation
from core.io.series import Series
from core.io.study import open_study, viewable
from core.model.card import ModelCard
from core.model.checkpoint import load_checkpoint
from core.model.device import pick_device
from desktop.results import build_sweeps


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    card: ModelCard
    device: str


@dataclass(frozen=True)
class Job:
    """What a submitted job's work gets: report ``progress(done, total)``, poll ``cancelled()``
    (or pass it on as a core function's ``cancel=``), and ``emit`` partial results as they come
    (an epoch record, a t-SNE snapshot), which arrive on :attr:`Engine.partial`."""

    ticket: int
    progress: Callable[[int, int], None]
    cancelled: Callable[[], bool]
    emit: Callable[[object], None]


@dataclass(frozen=True)
class Chunk:
    """Results for slices ``indices`` of an analysis."""

    ticket: int
    indices: np.ndarray  # (n,) slice indices
    probabilities: np.ndarray  # (n, K)
    raw: np.ndarray  # (n, h, w)


class Engine(QtCore.QObject):
    started = QtCore.Signal(int, str)  # ticket, title
    progress = QtCore.Signal(int, int, int)  # ticket, done, total
    chunk = QtCore.Signal(object)  # Chunk
    partial = QtCore.Signal(int, object)  # ticket, a partial result emitted by a submitted job
    finished = QtCore.Signal(int, str, object)  # ticket, kind, result
    failed = QtCore.Signal(int, str, str)  # ticket, kind, one-line message
    idle = QtCore.Signal()

    def __init__(self, device: str = "auto", *, batch_size: int | None = None,
                 parent: QtCore.QObject | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctlens-engine")
        self._tickets = itertools.count(1)
        self._live: set[int] = set()  # queued or running
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self._device = device
        self._batch_size = batch_size  # slices per network pass; default 8 on CPU (prompt updates), 32 on GPU
        self._model: tuple[nn.Module, ModelCard] | None = None

    # -- jobs ---------------------------------------------------------------------------------

    def open_study(self, path: str | Path | list[str]) -> int:
        name = f"{len(path)} files" if isinstance(path, list) else Path(path).name
        return self._submit("study", f"Opening {name}", lambda t: viewable(open_study(path, cancel=self._stop(t))))

    def load_model(self, path: str | Path | None = None) -> int:
        """Load a checkpoint; ``None`` loads the demo model, training it on first use."""
        title = "Loading model" if path is not None else "Preparing the demo model"
        return self._submit("model", title, lambda t: self._load_model(t, path))

    def analyse(self, series: Series, *, method: str = "gradcam", target: int | None = None) -> int:
        """Diagnose and explain every slice of ``series``; chunks stream as they are computed."""
        return self._submit("analysis", f"Analysing {len(series)} slices", lambda t: self._analyse(t, series, method,
                                                                                                  target))  # fmt: skip

    def load_annotation(self, path: Path, series: Series) -> int:
        """Lesion labels for ``series`` from a SEG, NIfTI volume or PNG-mask folder."""
        return self._submit("annotation", f"Loading {path.name}", lambda t: load_annotation(path, series))

    def overlap_sweeps(self, raw: np.ndarray, masks: dict[int, np.ndarray], shape: tuple[int, int]) -> int:
        """Per-slice threshold sweeps of heatmap vs lesion (result: dict slice -> ThresholdSweep)."""
        return self._submit("sweeps", "Scoring overlap with lesions", lambda t: build_sweeps(raw, masks, shape))

    def submit(self, kind: str, title: str, work: Callable[[Job], Any]) -> int:
        """Run ``work(job)`` on this engine's thread (the research panels' jobs); its return value
        arrives on :attr:`finished` with ``kind``, a one-line error on :attr:`failed`."""

        def run(ticket: int) -> Any:
            job = Job(ticket, lambda d, n: self.progress.emit(ticket, d, n), self._stop(ticket),
                      lambda obj: self.partial.emit(ticket, obj))  # fmt: skip
            return work(job)

        return self._submit(kind, title, run)

    def cancel(self, ticket: int | None = None) -> None:
        """Stop job ``ticket`` (default: every queued and running job) at its next checkpoint."""
        with self._lock:
            self._cancelled |= set(self._live) if ticket is None else {ticket} & self._live

    @property
    def device(self) -> str:
        """The device setting this engine was made with (``auto``, ``cpu``, ``cuda``…)."""
        return self._device

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._live)

    def shutdown(self) -> None:
        self.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- worker side --------------------------------------------------------------------------

    def _submit(self, kind: str, title: str, work: Callable[[int], Any]) -> int:
        ticket = next(self._tickets)
        with self._lock:
            self._live.add(ticket)
        future = self._pool.submit(self._run, ticket, kind, title, work)
        future.add_done_callback(lambda _: self._done(ticket))
        return ticket

    def _stop(self, ticket: int) -> Callable[[], bool]:
        """The cancel check that job ``ticket`` polls."""
        return lambda: ticket in self._cancelled

    def _run(self, ticket: int, kind: str, title: str, work: Callable[[int], Any]) -> None:
        if self._stop(ticket)():
            self.failed.emit(ticket, kind, "cancelled")
            return
        self.started.emit(ticket, title)
        try:
            result = work(ticket)
        except Cancelled:
            self.failed.emit(ticket, kind, "cancelled")
        except (CTLensError, OSError, ValueError) as exc:
            self.failed.emit(ticket, kind, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not take the viewer down
            self.failed.emit(ticket, kind, f"{type(exc).__name__}: {exc}")
        else:
            self.finished.emit(ticket, kind, result)

    def _done(self, ticket: int) -> None:
        with self._lock:
            self._live.discard(ticket)
            self._cancelled.discard(ticket)
            now_idle = not self._live
        if now_idle:
            self.idle.emit()

    def _load_model(self, ticket: int, path: str | Path | None) -> LoadedModel:
        if path is None:
            from core.demo import ensure_demo_model

            path = ensure_demo_model(progress=lambda d, n: self.progress.emit(ticket, d, n), cancel=self._stop(ticket))
        device = pick_device(self._device)
        model, card = load_checkpoint(Path(path), device=device)
        self._model = (model, card)
        return LoadedModel(Path(path), card, device.type.upper())

    def _analyse(self, ticket: int, series: Series, method: str, target: int | None) -> SeriesExplanation:
        if self._model is None:
            raise CTLensError("no model loaded")
        model, card = self._model
        on_cpu = next(model.parameters()).device.type == "cpu"
        return explain_series(
            model, card, series, method=method, target=target, batch_size=self._batch_size or (8 if on_cpu else 32),
            progress=lambda d, n: self.progress.emit(ticket, d, n), cancel=self._stop(ticket),
            on_chunk=lambda indices, probs, raw: self.chunk.emit(Chunk(ticket, indices, probs, raw)),
        )  # fmt: skip
