"""FiltersPanel (the paper's Fig. 8): the first convolution's filters before and after training.

Two mosaics of colour tiles (the initial filters from the checkpoint's run, and the trained
ones; each zooms with the wheel and pans with the mouse), the per-filter change score
``||W - W0|| / ||W0||`` as text under each trained tile and as a bar plot (optionally sorted;
clicking a bar selects its filter), and a clicked filter's rectified response to the current
image below that image. The two mosaics are not axis-linked: pyqtgraph's linked, aspect-locked
view boxes of different sizes keep widening each other's range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.model.card import ModelCard
from core.research.filters import FilterBank, filter_bank, filter_response
from core.research.models import model_for
from core.research.neurons import ActivationMap
from desktop.engine import Engine
from desktop.research.job_bar import JobBar
from desktop.research.session import CurrentImage, ResearchSession
from desktop.research.tile_grid import PictureView, TileGrid, heat_overlay

SCALES = ("contrast per filter", "one scale for both")
NO_IMAGE = "No current image: open one in the viewer or choose a dataset."


def _load_bank(path: Path, device: str) -> tuple[FilterBank, ModelCard]:
    model, card = model_for(path, device)
    return filter_bank(model, path), card


def _response(path: Path, device: str, image: CurrentImage, index: int) -> ActivationMap:
    model, card = model_for(path, device)
    return filter_response(model, card, image.model_input(card.preprocessing), index)


def score_text(value: float) -> str:
    """A change score short enough to sit under an 11-pixel tile: 0.42, 3e-04."""
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.0e}"


class FiltersPanel(QtWidgets.QWidget):
    filters_shown = QtCore.Signal(int)  # number of filters
    response_shown = QtCore.Signal(int)  # filter index

    def __init__(self, session: ResearchSession, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.engine = session, engine
        self.bank: FilterBank | None = None
        self.card: ModelCard | None = None
        self.response: ActivationMap | None = None
        self.selected: int | None = None
        self.order = np.zeros(0, int)
        self._tickets: dict[str, int] = {}
        self.job_bar = JobBar(engine)
        self.hint = QtWidgets.QLabel("")
        self.hint.setWordWrap(True)
        self.sort_box = QtWidgets.QCheckBox("Sort by change")
        self.scale_combo = QtWidgets.QComboBox()
        self.scale_combo.addItems(SCALES)
        self.initial_grid = TileGrid("initial")
        self.trained_grid = TileGrid("trained")
        self.change_plot = pg.PlotWidget()
        self.change_plot.setMaximumHeight(150)
        self.change_plot.setLabel("left", "change")
        self.change_plot.getAxis("left").enableAutoSIPrefix(False)
        self.change_plot.setToolTip("relative change of each filter's weights, ||W - W0|| / ||W0||")
        self.change_plot.setMouseEnabled(x=True, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(90, 150, 220))
        self.selected_bar = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(255, 210, 0))
        self.change_plot.addItem(self.bars)
        self.change_plot.addItem(self.selected_bar)
        self.image_view = PictureView("Click a filter to see its response to the current image.")
        self.response_view = PictureView("")
        self._layout()
        self._connect()

    def _layout(self) -> None:
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.hint, 1)
        top.addWidget(self.sort_box)
        top.addWidget(QtWidgets.QLabel("Tiles:"))
        top.addWidget(self.scale_combo)
        right = QtWidgets.QWidget()
        side = QtWidgets.QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.image_view, 1)
        side.addWidget(self.response_view, 1)
        split = QtWidgets.QSplitter()
        for widget in (self.initial_grid, self.trained_grid, right):
            split.addWidget(widget)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 2)
        column = QtWidgets.QVBoxLayout(self)
        column.addLayout(top)
        column.addWidget(split, 1)
        column.addWidget(self.change_plot)
        column.addWidget(self.job_bar)

    def _connect(self) -> None:
        self.engine.finished.connect(self._on_engine_finished)
        self.engine.failed.connect(self._on_engine_failed)
        self.sort_box.toggled.connect(lambda _: self._show_bank())
        self.scale_combo.currentIndexChanged.connect(lambda _: self._show_bank())
        self.initial_grid.tile_clicked.connect(self.select_filter)
        self.trained_grid.tile_clicked.connect(self.select_filter)
        self.change_plot.scene().sigMouseClicked.connect(self._on_plot_clicked)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Load the session model's first-layer filters (and the initial ones) and show them."""
        path = self.session.model
        if path is None:
            self.hint.setText("Choose a model to see its first-layer filters.")
            return
        if self.session.image is None:
            self.image_view.clear(NO_IMAGE)
            self.response_view.clear()
        device = self.engine.device
        self._submit("bank", "Reading first-layer filters", lambda job: _load_bank(path, device))

    def select_filter(self, index: int) -> None:
        """Outline filter ``index`` and compute its response to the current image."""
        self.selected = index
        for grid in (self.initial_grid, self.trained_grid):
            grid.select(index)
        self._show_selected_bar()
        image, path = self.session.image, self.session.model
        if image is None or path is None:
            self.image_view.clear(NO_IMAGE)
            return
        device = self.engine.device
        self._submit("response", f"Response of filter {index}", lambda job: _response(path, device, image, index))

    # -- results ------------------------------------------------------------------------------

    def _submit(self, purpose: str, title: str, work) -> None:  # noqa: ANN001 - Callable[[Job], object]
        old = self._tickets.get(purpose)
        if old is not None:
            self.engine.cancel(old)
        self._tickets[purpose] = self.job_bar.track(self.engine.submit(f"filters-{purpose}", title, work))

    def _purpose(self, ticket: int) -> str | None:
        return next((p for p, t in self._tickets.items() if t == ticket), None)

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        purpose = self._purpose(ticket)
        if purpose == "bank" and isinstance(result, tuple):
            self.bank, self.card = result
            self._show_bank()
            if self.bank is not None and (self.selected is None or self.selected >= len(self.bank)):
                # nothing chosen yet: the filter training changed most (the first without initial filters)
                self.selected = 0 if self.bank.change is None else int(np.argmax(self.bank.change))
            if self.selected is not None:
                self.select_filter(self.selected)
        elif purpose == "response" and isinstance(result, ActivationMap):
            self._show_response(result)

    def _on_engine_failed(self, ticket: int, kind: str, message: str) -> None:
        if self._purpose(ticket) == "bank" and message != "cancelled":
            self.hint.setText(f"Cannot read the filters: {message}")

    def _show_bank(self) -> None:
        bank = self.bank
        if bank is None:
            return
        trained, initial = bank.tiles(per_filter=self.scale_combo.currentIndex() == 0)
        self.sort_box.setEnabled(bank.change is not None)
        sorted_by_change = self.sort_box.isChecked() and bank.change is not None
        self.order = np.argsort(-bank.change, kind="stable") if sorted_by_change else np.arange(len(bank))
        ids = [int(i) for i in self.order]
        scores = [score_text(bank.change[i]) for i in ids] if bank.change is not None else [f"#{i}" for i in ids]
        self.trained_grid.set_tiles(trained[self.order], scores, ids)
        self.trained_grid.title.setText(f"trained ({bank.layer}, {len(bank)} filters)")
        self.initial_grid.setVisible(initial is not None)
        if initial is not None:
            init = self.card.init if self.card is not None else "?"
            self.initial_grid.set_tiles(initial[self.order], [f"#{i}" for i in ids], ids)
            self.initial_grid.title.setText(f"initial ({init})")
        self.hint.setText(bank.note if initial is not None else f"Only the trained filters: {bank.note}.")
        self._show_change()
        self.filters_shown.emit(len(bank))

    def _show_change(self) -> None:
        bank = self.bank
        self.change_plot.setVisible(bank is not None and bank.change is not None)
        if bank is None or bank.change is None:
            return
        self.bars.setOpts(x=np.arange(len(bank)), height=bank.change[self.order], width=0.8)
        axis = "filters sorted by change" if self.sort_box.isChecked() else "filter"
        self.change_plot.setLabel("bottom", axis)
        self._show_selected_bar()

    def _show_selected_bar(self) -> None:
        bank, index = self.bank, self.selected
        if bank is None or bank.change is None or index is None or index >= len(bank):
            self.selected_bar.setOpts(x=[], height=[], width=0.8)
            return
        position = int(np.flatnonzero(self.order == index)[0])
        self.selected_bar.setOpts(x=[position], height=[bank.change[index]], width=0.8)

    def _on_plot_clicked(self, event) -> None:  # noqa: ANN001 - pyqtgraph MouseClickEvent
        vb = self.change_plot.getPlotItem().getViewBox()
        if self.bank is None or not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        position = round(vb.mapSceneToView(event.scenePos()).x())
        if 0 <= position < len(self.order):
            self.select_filter(int(self.order[position]))

    def _show_response(self, response: ActivationMap) -> None:
        self.response = response
        name = self.session.image.name if self.session.image is not None else "the image"
        self.image_view.set_picture(response.display, name)
        change = ""
        if self.bank is not None and self.bank.change is not None:
            change = f", change {score_text(self.bank.change[response.channel])}"
        title = f"filter {response.channel}: rectified response, peak {response.peak:.3g}{change}"
        self.response_view.set_picture(heat_overlay(response.display, response.values), title)
        self.response_shown.emit(response.channel)
