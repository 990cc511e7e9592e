"""One feature set's embedding on screen: a title, the 2-D or 3-D scatter view, and a message
line (why a 3-D embedding is shown in 2-D, or why it failed)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from desktop.research.embedding_views import ScatterView2D, opengl_available

if TYPE_CHECKING:
    from core.research.embedding import Embedding

log = logging.getLogger(__name__)

FEATURE_NAMES = {"deep": "Deep features", "lbp": "LBP features"}
AXIS_NAMES = {"pca": "PC", "kpca-linear": "kernel PC", "kpca-rbf": "kernel PC", "tsne": "t-SNE"}
NO_GL_MESSAGE = ("OpenGL is not available here, so this 3-D embedding is drawn in 2-D "
                 "(its first two dimensions).")  # fmt: skip


class EmbeddingPane(QtWidgets.QWidget):
    point_hovered = QtCore.Signal(int)
    point_clicked = QtCore.Signal(int)
    selection_changed = QtCore.Signal(object)  # list[int]

    def __init__(self, features: str, dims: int, tool: str = "pan", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.features, self.dims, self.tool = features, dims, tool
        self.feature_name = FEATURE_NAMES.get(features, features)
        self.embedding: Embedding | None = None
        self.title = QtWidgets.QLabel(f"<b>{self.feature_name}</b> · computing…")
        self.title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.message = QtWidgets.QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #8a5a00")
        self.message.setVisible(False)
        self._column = QtWidgets.QVBoxLayout(self)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.addWidget(self.title)
        self._column.addWidget(self.message)
        self._coords = np.zeros((0, dims), np.float32)
        self._rgba = np.zeros((0, 4), np.uint8)
        self.view: Any = self._make_view()
        self._column.addWidget(self.view, 1)

    @property
    def is_3d(self) -> bool:
        """Whether the points are drawn in an OpenGL 3-D view (False: 2-D, perhaps as fallback)."""
        return not isinstance(self.view, ScatterView2D)

    # -- what the panel calls -----------------------------------------------------------------

    def show_frame(self, coords: np.ndarray, iteration: int, rgba: np.ndarray) -> None:
        """A t-SNE snapshot: move the points (first frame: create them)."""
        first = len(self._coords) != len(coords)
        self._coords, self._rgba = np.asarray(coords, np.float32), np.asarray(rgba, np.uint8)
        if first:
            self.view.set_points(self._coords, self._rgba)
            self.view.set_axis_names(axis_names("tsne", self.dims))
        else:
            self.view.set_positions(self._coords)
        self.title.setText(f"<b>{self.feature_name}</b> · t-SNE {self.dims}-D · iteration {iteration}…")

    def show_embedding(self, embedding: Embedding, method_name: str, rgba: np.ndarray) -> None:
        self.embedding = embedding
        self._coords, self._rgba = embedding.coords, np.asarray(rgba, np.uint8)
        self.view.set_points(self._coords, self._rgba)
        self.view.set_axis_names(axis_names(embedding.method, embedding.dims))
        self.title.setText(f"<b>{self.feature_name}</b> ({embedding.feature_dims}-D) · {method_name} · "
                           f"{embedding.dims}-D · {len(embedding.samples)} images")  # fmt: skip

    def set_colours(self, rgba: np.ndarray) -> None:
        self._rgba = np.asarray(rgba, np.uint8)
        if len(self._coords) == len(self._rgba):
            self.view.set_colours(self._rgba)

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self.view.set_tool(tool)

    def show_selection(self, indices: list[int]) -> None:
        if isinstance(self.view, ScatterView2D) and len(self._coords):
            self.view.show_selection(indices)

    def show_failure(self, text: str) -> None:
        """Nothing to show: the title says so and the message says why."""
        self.title.setText(f"<b>{self.feature_name}</b> · not computed")
        self.show_message(text)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # -- 3-D with a 2-D fallback --------------------------------------------------------------

    def _make_view(self) -> QtWidgets.QWidget:
        if self.dims == 3 and opengl_available():
            try:
                from desktop.research.embedding_gl import ScatterView3D

                return self._wire(ScatterView3D())
            except Exception:  # noqa: BLE001 - any GL setup failure: draw in 2-D instead of failing
                log.exception("3-D view unavailable; falling back to 2-D")
        if self.dims == 3:
            self.show_message(NO_GL_MESSAGE)
        return self._wire(ScatterView2D())

    def _wire(self, view: Any) -> Any:
        view.set_tool(self.tool)
        view.point_hovered.connect(self.point_hovered)
        view.point_clicked.connect(self.point_clicked)
        view.selection_changed.connect(self.selection_changed)
        return view

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if self.is_3d:
            QtCore.QTimer.singleShot(0, self._check_context)

    def _check_context(self) -> None:
        """A GL widget that got no context once shown (driver refused it) is swapped for 2-D."""
        if not self.is_3d or self.view.context_valid or not self.view.isVisible():
            return
        log.warning("OpenGL context could not be created; showing the 3-D embedding in 2-D")
        old, self.view = self.view, self._wire(ScatterView2D())
        self._column.replaceWidget(old, self.view)
        old.deleteLater()
        self.show_message(NO_GL_MESSAGE)
        if len(self._coords):
            self.view.set_points(self._coords, self._rgba)
        if self.embedding is not None:
            self.view.set_axis_names(axis_names(self.embedding.method, self.embedding.dims))


def axis_names(method: str, dims: int) -> tuple[str, ...]:
    """``("PC 1", "PC 2", ...)``: what a projection's axes are."""
    return tuple(f"{AXIS_NAMES.get(method, method)} {k + 1}" for k in range(dims))
