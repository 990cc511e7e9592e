"""Embeddings panel (Wan et al. 2021, Figs 6-7): LBP and deep features of the session's dataset
projected by PCA, kernel PCA or t-SNE to 2-D or 3-D, side by side, coloured by label,
prediction, correctness or Grad-CAM consistent degree.

Projections run on the engine (:func:`core.research.embedding.embed_dataset`, cached on disk);
t-SNE snapshots arrive on ``Engine.partial`` and move the points while it converges. Hovering a
point shows the image and its name, clicking opens it in the viewer (``image_requested``), a box
or lasso drag lists the images it encloses. Without OpenGL a 3-D embedding is shown as 2-D.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from desktop.research.embedding_pane import EmbeddingPane
from desktop.research.embedding_views import (
    COLOUR_MODES,
    TOOLS,
    Colouring,
    ColourLegend,
    gray_pixmap,
    point_colours,
)
from desktop.research.job_bar import JobBar
from desktop.research.session import ResearchSession

if TYPE_CHECKING:
    from core.research.embedding import Embedding
    from desktop.engine import Engine, Job

log = logging.getLogger(__name__)

FEATURE_CHOICES = {"Deep | LBP side by side": "deep lbp", "Deep features": "deep", "LBP features": "lbp"}
METHOD_NAMES = {"pca": "PCA", "kpca-linear": "Kernel PCA (linear)", "kpca-rbf": "Kernel PCA (RBF)", "tsne": "t-SNE"}


@dataclass(frozen=True)
class Started:
    """First partial result of an embedding job: what the points are, before where they go."""

    samples: tuple[Any, ...]  # core.datasets.Sample
    labels: np.ndarray  # (N,) int
    p_lesion: np.ndarray  # (N,) float


@dataclass(frozen=True)
class Frame:
    """A t-SNE snapshot: ``coords`` (N, dims) after ``iteration`` steps."""

    iteration: int
    coords: np.ndarray


# -- worker side (engine thread): core is imported here, never at module level -------------------


def _load(data: Path, model: Path, device: str) -> tuple[Any, Any, Any, Path]:
    from core.datasets import open_dataset
    from core.research.models import model_for

    checkpoint = model / "best.safetensors" if model.is_dir() else model
    net, card = model_for(checkpoint, device)
    return open_dataset(data), net, card, checkpoint


def _embedding_job(data: Path, model: Path, device: str, features: str, method: str, dims: int, job: Job) -> Embedding:
    from core.research.embedding import cached_predictions, embed_dataset

    dataset, net, card, checkpoint = _load(data, model, device)
    probs = cached_predictions(net, card, checkpoint, dataset, dataset.samples, progress=job.progress,
                               cancel=job.cancelled)  # fmt: skip
    labels = np.array([s.label for s in dataset.samples], np.int64)
    job.emit(Started(dataset.samples, labels, probs[:, card.positive_index].astype(np.float32)))
    return embed_dataset(dataset, net, card, checkpoint, features=features, method=method, dims=dims,
                         progress=job.progress, cancel=job.cancelled,
                         on_snapshot=lambda it, xyz: job.emit(Frame(it, np.array(xyz, np.float32))))  # fmt: skip


def _consistency_job(data: Path, model: Path, device: str, job: Job) -> np.ndarray:
    from core.research.embedding import consistency_degrees

    dataset, net, card, checkpoint = _load(data, model, device)
    return consistency_degrees(dataset, net, card, checkpoint, dataset.samples, progress=job.progress,
                               cancel=job.cancelled)  # fmt: skip


def _thumbnails_job(data: Path, model: Path, device: str, job: Job) -> np.ndarray:
    from core.research.embedding import dataset_thumbnails

    dataset, _, card, _ = _load(data, model, device)
    return dataset_thumbnails(dataset, dataset.samples, card.preprocessing.window, progress=job.progress,
                              cancel=job.cancelled)  # fmt: skip


# -- the panel -------------------------------------------------------------------------------


class EmbeddingsPanel(QtWidgets.QWidget):
    image_requested = QtCore.Signal(object)  # core.datasets.Sample
    embeddings_shown = QtCore.Signal()  # every requested feature set has its final projection on screen

    def __init__(self, session: ResearchSession, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.engine = session, engine
        self.features_box = _combo(FEATURE_CHOICES)
        self.method_box = _combo({v: k for k, v in METHOD_NAMES.items()})
        self.dims_box = _combo({"2-D": 2, "3-D": 3})
        self.colour_box = _combo({v: k for k, v in COLOUR_MODES.items()})
        self.tool_box = _combo({v: k for k, v in TOOLS.items()})
        self.job_bar = JobBar(engine)
        self.panes: dict[str, EmbeddingPane] = {}
        self.pane_row = QtWidgets.QHBoxLayout()
        self.legend = ColourLegend()
        self.thumbnail = QtWidgets.QLabel("Hover over a point")
        self.thumbnail.setFixedSize(196, 196)
        self.thumbnail.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setStyleSheet("background: #111; color: #bbb")
        self.point_name = QtWidgets.QLabel("")
        self.point_name.setWordWrap(True)
        self.selection_label = QtWidgets.QLabel("Selected: none (drag with Box or Lasso select)")
        self.selection_label.setWordWrap(True)
        self.selection_list = QtWidgets.QListWidget()
        self.samples: tuple[Any, ...] = ()
        self.labels = self.p_lesion = np.zeros(0)
        self.consistency: np.ndarray | None = None
        self.thumbnails: np.ndarray | None = None
        self._tickets: dict[int, str] = {}  # ticket -> "deep" | "lbp" | "consistency" | "thumbnails"
        self._context: tuple[Path, Path] | None = None
        self._frames: dict[str, Frame] = {}
        self._frame_timer = QtCore.QTimer(self, singleShot=True, interval=40)
        self._layout()
        self._connect()

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Compute the chosen embeddings of ``session.data`` under ``session.model`` in the background."""
        data, model = self.session.data, self.session.model
        if data is None or model is None:
            self.job_bar.show_message("Choose a dataset and a model")
            return
        if (data, model) != self._context:
            self._context = (data, model)
            self.consistency = self.thumbnails = None
            self._cancel(("consistency", "thumbnails"))
        self._cancel(("deep", "lbp"))
        kinds = tuple(self.features_box.currentData().split())
        method, dims = self.method_box.currentData(), self.dims_box.currentData()
        self._build_panes(kinds, dims)
        device = self.engine.device
        for kind in kinds:
            work = functools.partial(_embedding_job, data, model, device, kind, method, dims)
            self._submit(kind, f"{self.panes[kind].feature_name}: {METHOD_NAMES[method]} {dims}-D", work)
        if self.thumbnails is None and "thumbnails" not in self._tickets.values():
            self._submit("thumbnails", "Thumbnails", functools.partial(_thumbnails_job, data, model, device))
        self._request_consistency()

    @property
    def ready(self) -> bool:
        """Every requested feature set shows its final projection."""
        return bool(self.panes) and all(p.embedding is not None for p in self.panes.values())

    # -- layout -------------------------------------------------------------------------------

    def _layout(self) -> None:
        controls = QtWidgets.QHBoxLayout()
        for text, box in (("Features", self.features_box), ("Method", self.method_box), ("View", self.dims_box),
                          ("Colour by", self.colour_box), ("Mouse", self.tool_box)):  # fmt: skip
            controls.addWidget(QtWidgets.QLabel(text))
            controls.addWidget(box)
        controls.addWidget(self.job_bar, 1)
        side = QtWidgets.QVBoxLayout()
        for widget in (self.thumbnail, self.point_name, self.selection_label):
            side.addWidget(widget)
        side.addWidget(self.selection_list, 1)
        side_widget = QtWidgets.QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(210)
        body = QtWidgets.QHBoxLayout()
        body.addLayout(self.pane_row, 1)
        body.addWidget(side_widget)
        column = QtWidgets.QVBoxLayout(self)
        column.addLayout(controls)
        column.addLayout(body, 1)
        column.addWidget(self.legend)

    def _connect(self) -> None:
        for box in (self.features_box, self.method_box, self.dims_box):
            box.currentIndexChanged.connect(self._on_choice_changed)
        self.colour_box.currentIndexChanged.connect(self._on_colour_changed)
        self.tool_box.currentIndexChanged.connect(self._on_tool_changed)
        self.selection_list.itemActivated.connect(self._on_selection_activated)
        self.engine.partial.connect(self._on_engine_partial)
        self.engine.finished.connect(self._on_engine_finished)
        self.engine.failed.connect(self._on_engine_failed)
        self._frame_timer.timeout.connect(self._on_frame_timer)

    def _build_panes(self, kinds: tuple[str, ...], dims: int) -> None:
        for pane in self.panes.values():
            self.pane_row.removeWidget(pane)
            pane.hide()  # at once: deleteLater waits for the event loop (and --screenshot only processes events)
            pane.deleteLater()
        self.panes = {kind: EmbeddingPane(kind, dims, self.tool_box.currentData()) for kind in kinds}
        for kind, pane in self.panes.items():
            self.pane_row.addWidget(pane, 1)
            pane.point_hovered.connect(lambda i, k=kind: self._on_pane_hovered(k, i))
            pane.point_clicked.connect(self._on_pane_clicked)
            pane.selection_changed.connect(lambda idx, k=kind: self._on_pane_selected(k, idx))
        self._frames.clear()
        self._show_selection([])

    # -- jobs ---------------------------------------------------------------------------------

    def _submit(self, role: str, title: str, work: Any) -> None:
        ticket = self.engine.submit(f"embedding-{role}", title, work)
        self._tickets[ticket] = role
        self.job_bar.track(ticket)

    def _cancel(self, roles: tuple[str, ...]) -> None:
        for ticket, role in list(self._tickets.items()):
            if role in roles:
                self.engine.cancel(ticket)
                del self._tickets[ticket]

    def _request_consistency(self) -> None:
        wanted = self.colour_box.currentData() == "consistency" and self._context is not None
        if wanted and self.consistency is None and "consistency" not in self._tickets.values():
            data, model = self._context  # type: ignore[misc]
            self._submit("consistency", "Grad-CAM consistency per image",
                         functools.partial(_consistency_job, data, model, self.engine.device))  # fmt: skip

    def _on_engine_partial(self, ticket: int, obj: object) -> None:
        role = self._tickets.get(ticket)
        if role not in self.panes:
            return
        if isinstance(obj, Started):
            self.samples, self.labels, self.p_lesion = obj.samples, obj.labels, obj.p_lesion
            self._recolour()  # the legend, before the first t-SNE frame
        elif isinstance(obj, Frame):
            self._frames[role] = obj  # drawn by the timer: a burst of snapshots costs one redraw
            if not self._frame_timer.isActive():
                self._frame_timer.start()

    def _on_frame_timer(self) -> None:
        colours = self._colouring().rgba if len(self.labels) else None
        for kind, frame in self._frames.items():
            pane = self.panes.get(kind)
            if pane is not None and pane.embedding is None and colours is not None:
                pane.show_frame(frame.coords, frame.iteration, colours)
        self._frames.clear()

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        role = self._tickets.pop(ticket, None)
        if role is None:
            return
        if role == "thumbnails":
            self.thumbnails = np.asarray(result)
        elif role == "consistency":
            self.consistency = np.asarray(result, np.float32)
            self._recolour()
        elif role in self.panes:
            embedding: Embedding = result  # type: ignore[assignment]
            self.samples, self.labels, self.p_lesion = embedding.samples, embedding.labels, embedding.p_lesion
            self._frames.pop(role, None)
            self.panes[role].show_embedding(embedding, METHOD_NAMES[embedding.method], self._colouring().rgba)
            if self.ready:
                self._recolour()
                self.embeddings_shown.emit()

    def _on_engine_failed(self, ticket: int, kind: str, message: str) -> None:
        role = self._tickets.pop(ticket, None)
        if role in self.panes and message != "cancelled":
            self.panes[role].show_failure(f"Could not embed: {message}")
        elif role == "consistency" and message != "cancelled":
            self.legend.scale.setText(f"consistent degree unavailable: {message}")

    # -- colours, hover, click, selection -----------------------------------------------------

    def _colouring(self) -> Colouring:
        mode = self.colour_box.currentData()
        predictions = (np.asarray(self.p_lesion) >= 0.5).astype(np.int64)
        return point_colours(mode, self.labels, predictions, self.consistency)

    def _recolour(self) -> None:
        if not len(self.labels):
            return
        colouring = self._colouring()
        for pane in self.panes.values():
            pane.set_colours(colouring.rgba)
        self.legend.show_colouring(colouring)
        if self.colour_box.currentData() == "consistency" and self.consistency is None:
            self.legend.scale.setText("scoring Grad-CAM consistency… (grey until done)")

    def _on_choice_changed(self) -> None:
        if self._context is not None or (self.session.data is not None and self.session.model is not None):
            self.refresh()

    def _on_colour_changed(self) -> None:
        self._request_consistency()
        self._recolour()

    def _on_tool_changed(self) -> None:
        for pane in self.panes.values():
            pane.set_tool(self.tool_box.currentData())

    def _on_pane_hovered(self, kind: str, index: int) -> None:
        if not 0 <= index < len(self.samples):
            return
        sample = self.samples[index]
        truth = "COVID" if self.labels[index] == 1 else "non-COVID"
        call = "COVID" if self.p_lesion[index] >= 0.5 else "non-COVID"
        text = f"<b>{sample.id}</b><br>label {truth}, predicted {call} (p = {self.p_lesion[index]:.2f})"
        if self.consistency is not None and np.isfinite(self.consistency[index]):
            text += f"<br>consistent degree {self.consistency[index]:.2f}"
        self.point_name.setText(text)
        if self.thumbnails is not None and index < len(self.thumbnails):
            self.thumbnail.setPixmap(gray_pixmap(self.thumbnails[index], scale=2))
        else:
            self.thumbnail.setText("thumbnail loading…")

    def _on_pane_clicked(self, index: int) -> None:
        if 0 <= index < len(self.samples):
            self.image_requested.emit(self.samples[index])

    def _on_pane_selected(self, kind: str, indices: list[int]) -> None:
        for other, pane in self.panes.items():
            if other != kind:
                pane.show_selection(indices)  # the same images, highlighted in the other feature set
        self._show_selection(indices)

    def _show_selection(self, indices: list[int]) -> None:
        self.selection_list.clear()
        for i in indices:
            item = QtWidgets.QListWidgetItem(self.samples[i].id)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, i)
            self.selection_list.addItem(item)
        covid = int(np.sum(self.labels[indices] == 1)) if indices else 0
        self.selection_label.setText(f"Selected: {len(indices)} images ({covid} COVID); double-click opens one"
                                     if indices else "Selected: none (drag with Box or Lasso select)")  # fmt: skip

    def _on_selection_activated(self, item: QtWidgets.QListWidgetItem) -> None:
        self._on_pane_clicked(int(item.data(QtCore.Qt.ItemDataRole.UserRole)))


def _combo(choices: dict[str, Any]) -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    for text, value in choices.items():
        box.addItem(text, value)
    return box
