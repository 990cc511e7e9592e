"""NeuronsPanel (the paper's Figs 9-10): hidden neurons seen through guided backpropagation.

Pick a layer (conv1 .. conv5, with its ``named_modules()`` name) and N neurons (random with a
seed, or listed channels) to see their reconstructions on the current image, or one neuron per
layer across a few dataset images. Clicking a neuron shows its activation map on the current
image and the dataset images that activate it most; "Maximise" draws its feature visualisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.datasets import Sample, open_dataset
from core.demo import cache_dir
from core.research import neurons
from core.research.models import model_for
from desktop.engine import Engine, Job
from desktop.research.job_bar import JobBar
from desktop.research.session import CurrentImage, ResearchSession
from desktop.research.tile_grid import PictureView, TileGrid, heat_overlay

MODES = ("N neurons of one layer", "one neuron per layer across images")
SWEEP_IMAGES = 3  # dataset images beside the current one in the across-images mode
NO_IMAGE = "No current image: open one in the viewer or choose a dataset."


@dataclass(frozen=True)
class Request:
    """What to reconstruct, read from the controls (on the GUI thread)."""

    sweep: bool
    layer: str | None  # None: the last convolution
    random: bool
    count: int
    seed: int
    channels: str  # "3, 17, 42" when not random


@dataclass(frozen=True)
class Grid:
    layers: tuple[neurons.ConvLayer, ...]
    layer: str  # the layer shown (one-layer mode)
    tiles: np.ndarray  # (N, S, S, 3)
    captions: tuple[str, ...]
    picks: tuple[tuple[str, int], ...]  # tile id -> (layer, channel)
    columns: int
    title: str


def _channels(request: Request, total: int, offset: int = 0) -> tuple[int, ...]:
    if request.random:
        return neurons.pick_channels(total, request.count, request.seed + offset)
    return neurons.parse_channels(request.channels, total)


def _grid(path: Path, device: str, data: Path | None, image: CurrentImage, request: Request, job: Job) -> Grid:
    model, card = model_for(path, device)
    layers = neurons.layer_names(model)
    if request.sweep:
        return _sweep(model, card, layers, data, image, request, job)
    layer = next((x for x in layers if x.name == request.layer), layers[-1])
    chosen = _channels(request, layer.channels)
    rec = neurons.neuron_reconstructions(model, card, image.model_input(card.preprocessing), layer.name, chosen,
                                         progress=job.progress, cancel=job.cancelled)  # fmt: skip
    title = f"{layer.label} ({layer.name}): guided backpropagation of {len(chosen)} neurons on {image.name}"
    captions = tuple(f"ch {c}" + (" · silent" if p <= 0 else "") for c, p in zip(chosen, rec.peaks, strict=True))
    return Grid(layers, layer.name, rec.images, captions, tuple((layer.name, c) for c in chosen),
                min(len(chosen), 4), title)  # fmt: skip


def _sweep(model, card, layers: tuple[neurons.ConvLayer, ...], data: Path | None, image: CurrentImage,  # noqa: ANN001
           request: Request, job: Job) -> Grid:  # fmt: skip
    """One neuron per layer (rows) on the current image and a few dataset images (columns)."""
    images, names = [image.model_input(card.preprocessing)], [image.name]
    if data is not None:
        dataset = open_dataset(data)
        others = [s for s in dataset.samples if s.id != image.name]
        for i in np.unique(np.linspace(0, len(others) - 1, min(SWEEP_IMAGES, len(others))).round().astype(int)):
            images.append(dataset.load_input(others[i], card.preprocessing))
            names.append(others[i].id)
    listed = None if request.random else neurons.parse_channels(request.channels, 1 << 30)
    picks = [(x.name, listed[i % len(listed)] if listed else _channels(request, x.channels, i)[0])
             for i, x in enumerate(layers)]  # fmt: skip
    sweep = neurons.layer_reconstructions(model, card, images, picks, progress=job.progress, cancel=job.cancelled)
    label = {layer.name: layer.label for layer in layers}
    captions = tuple(f"{label[n]} ch {c}" + (" · silent" if sweep.peaks[row, col] <= 0 else "")
                     for row, (n, c) in enumerate(picks) for col in range(len(images)))  # fmt: skip
    title = "one neuron per layer (rows) across images (columns): " + ", ".join(names)
    tiles = sweep.images.reshape(-1, *sweep.images.shape[2:])
    return Grid(layers, picks[-1][0], tiles, captions, tuple(p for p in picks for _ in images), len(images), title)


def _activation(path: Path, device: str, image: CurrentImage, layer: str, channel: int,
                job: Job) -> neurons.ActivationMap:  # fmt: skip
    model, card = model_for(path, device)
    return neurons.activation_map(model, card, image.model_input(card.preprocessing), layer, channel)


def _top(path: Path, device: str, data: Path, layer: str, channel: int, k: int, reduce: str,
         job: Job) -> neurons.TopImages:  # fmt: skip
    model, card = model_for(path, device)
    return neurons.top_images(model, card, open_dataset(data), layer, channel, k, reduce=reduce,
                              progress=job.progress, cancel=job.cancelled,
                              cache_folder=cache_dir() / "features")  # fmt: skip


def _maximise(path: Path, device: str, layer: str, channel: int, steps: int, job: Job) -> neurons.FeatureVisualisation:
    model, card = model_for(path, device)
    return neurons.maximise(model, card, layer, channel, steps=steps, progress=job.progress, cancel=job.cancelled)


class NeuronsPanel(QtWidgets.QWidget):
    image_requested = QtCore.Signal(object)  # Sample: open it in the viewer (double click on a top image)
    reconstructions_shown = QtCore.Signal(int)  # number of tiles
    activation_shown = QtCore.Signal(str, int)  # layer, channel
    top_images_shown = QtCore.Signal(int)  # k
    feature_shown = QtCore.Signal(str, int)  # layer, channel

    def __init__(self, session: ResearchSession, engine: Engine, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.engine = session, engine
        self.grid_result: Grid | None = None
        self.neuron: tuple[str, int] | None = None
        self.top: neurons.TopImages | None = None
        self._tickets: dict[str, int] = {}
        self.job_bar = JobBar(engine)
        self.hint = QtWidgets.QLabel("")
        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItems(MODES)
        self.mode_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo = QtWidgets.QComboBox()
        self.layer_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.random_button = QtWidgets.QRadioButton("random")
        self.random_button.setChecked(True)
        self.count_spin = _spin(1, 64, 8, "how many neurons")
        self.seed_spin = _spin(0, 99_999, 0, "random seed")
        self.list_button = QtWidgets.QRadioButton("channels:")
        self.channels_edit = QtWidgets.QLineEdit()
        self.channels_edit.setPlaceholderText("3, 17, 42")
        self.channels_edit.setToolTip("channel numbers or ranges (40-47); across images: one per layer, repeated")
        self.show_button = QtWidgets.QPushButton("Show")
        self.grid = TileGrid("")
        self.neuron_title = QtWidgets.QLabel("Click a neuron.")
        self.activation_view = PictureView("activation on the current image")
        self.feature_view = PictureView("activation maximisation")
        self.maximise_button = QtWidgets.QPushButton("Maximise")
        self.steps_spin = _spin(4, 1024, 128, "gradient-ascent steps")
        self.k_spin = _spin(1, 32, 8, "how many dataset images")
        self.reduce_combo = QtWidgets.QComboBox()
        self.reduce_combo.addItems(neurons.REDUCTIONS)
        self.top_grid = TileGrid("dataset images that activate it most")
        self._layout()
        self._connect()

    def _layout(self) -> None:
        controls = QtWidgets.QHBoxLayout()
        for widget in (self.mode_combo, QtWidgets.QLabel("Layer:"), self.layer_combo, self.random_button,
                       self.count_spin, QtWidgets.QLabel("seed"), self.seed_spin, self.list_button):  # fmt: skip
            controls.addWidget(widget)
        controls.addWidget(self.channels_edit, 1)
        controls.addWidget(self.show_button)
        details = QtWidgets.QWidget()
        side = QtWidgets.QGridLayout(details)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.neuron_title, 0, 0, 1, 2)
        side.addWidget(self.activation_view, 1, 0)
        side.addWidget(self.feature_view, 1, 1)
        maximise = QtWidgets.QHBoxLayout()
        for widget in (QtWidgets.QLabel("steps"), self.steps_spin, self.maximise_button):
            maximise.addWidget(widget)
        side.addLayout(maximise, 2, 1)
        top = QtWidgets.QHBoxLayout()
        for widget in (QtWidgets.QLabel("Top"), self.k_spin, QtWidgets.QLabel("by"), self.reduce_combo):
            top.addWidget(widget)
        top.addStretch(1)
        side.addLayout(top, 2, 0)
        side.addWidget(self.top_grid, 3, 0, 1, 2)
        side.setRowStretch(1, 3)
        side.setRowStretch(3, 2)
        split = QtWidgets.QSplitter()
        split.addWidget(self.grid)
        split.addWidget(details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        column = QtWidgets.QVBoxLayout(self)
        column.addLayout(controls)
        column.addWidget(self.hint)
        column.addWidget(split, 1)
        column.addWidget(self.job_bar)

    def _connect(self) -> None:
        self.engine.finished.connect(self._on_engine_finished)
        self.engine.failed.connect(self._on_engine_failed)
        self.mode_combo.currentIndexChanged.connect(lambda _: self.refresh())
        self.layer_combo.currentIndexChanged.connect(lambda _: self.refresh())
        self.show_button.clicked.connect(self.refresh)
        self.channels_edit.returnPressed.connect(self._on_channels_entered)
        self.grid.tile_clicked.connect(self._on_grid_clicked)
        self.maximise_button.clicked.connect(self.maximise)
        self.k_spin.editingFinished.connect(self._request_top)
        self.reduce_combo.currentIndexChanged.connect(lambda _: self._request_top())
        self.top_grid.tile_activated.connect(self._on_top_activated)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reconstructions of the chosen layer's neurons on the session's current image."""
        path, image = self.session.model, self.session.image
        if path is None or image is None:
            self.hint.setText("Choose a model." if path is None else NO_IMAGE)
            self.grid.clear()
            return
        self.hint.setText("")
        request = Request(self.mode_combo.currentIndex() == 1, self.layer_combo.currentData(),
                          self.random_button.isChecked(), self.count_spin.value(), self.seed_spin.value(),
                          self.channels_edit.text())  # fmt: skip
        self.layer_combo.setEnabled(not request.sweep)
        device, data = self.engine.device, self.session.data
        self._submit("grid", "Guided backpropagation", lambda job: _grid(path, device, data, image, request, job))

    def select_neuron(self, layer: str, channel: int) -> None:
        """Show neuron ``(layer, channel)``: its activation map and its top dataset images."""
        self.neuron = (layer, channel)
        layers = self.grid_result.layers if self.grid_result is not None else ()
        label = next((x.label for x in layers if x.name == layer), layer)
        self.neuron_title.setText(f"{label} ({layer}) channel {channel}")
        self.feature_view.clear("activation maximisation: press Maximise")
        if (ticket := self._tickets.pop("feature", None)) is not None:
            self.engine.cancel(ticket)
        path, image, device = self.session.model, self.session.image, self.engine.device
        if path is None or image is None:
            self.activation_view.clear(NO_IMAGE)
            return
        self._submit("activation", f"Activation of {label} channel {channel}",
                     lambda job: _activation(path, device, image, layer, channel, job))  # fmt: skip
        self._request_top()

    def maximise(self) -> None:
        """Activation maximisation of the selected neuron, in the background (cancellable)."""
        if self.neuron is None or self.session.model is None:
            return
        (layer, channel), path, steps = self.neuron, self.session.model, self.steps_spin.value()
        device = self.engine.device
        self.feature_view.clear(f"maximising channel {channel} ({steps} steps)…")
        self._submit("feature", f"Maximising {layer} channel {channel}",
                     lambda job: _maximise(path, device, layer, channel, steps, job))  # fmt: skip

    # -- jobs and results ---------------------------------------------------------------------

    def _request_top(self) -> None:
        if self.neuron is None or self.session.model is None:
            return
        data = self.session.data
        if data is None:
            self.top_grid.clear()
            self.top_grid.title.setText("Choose a dataset to see the images that activate this neuron most.")
            return
        (layer, channel), path, device = self.neuron, self.session.model, self.engine.device
        k, reduce = self.k_spin.value(), self.reduce_combo.currentText()
        self._submit("top", f"Scoring {data.name} for channel {channel}",
                     lambda job: _top(path, device, data, layer, channel, k, reduce, job))  # fmt: skip

    def _submit(self, purpose: str, title: str, work) -> None:  # noqa: ANN001 - Callable[[Job], object]
        old = self._tickets.get(purpose)
        if old is not None:
            self.engine.cancel(old)
        self._tickets[purpose] = self.job_bar.track(self.engine.submit(f"neurons-{purpose}", title, work))

    def _on_engine_finished(self, ticket: int, kind: str, result: object) -> None:
        purpose = next((p for p, t in self._tickets.items() if t == ticket), None)
        if purpose == "grid" and isinstance(result, Grid):
            self._show_grid(result)
        elif purpose == "activation" and isinstance(result, neurons.ActivationMap):
            self.activation_view.set_picture(heat_overlay(result.display, result.values),
                                             f"activation on the current image (peak {result.peak:.3g})")  # fmt: skip
            self.activation_shown.emit(result.layer, result.channel)
        elif purpose == "top" and isinstance(result, neurons.TopImages):
            self._show_top(result)
        elif purpose == "feature" and isinstance(result, neurons.FeatureVisualisation):
            title = f"activation maximisation (mean activation {result.activation:.3g})"
            self.feature_view.set_picture(result.image, title)
            self.feature_shown.emit(result.layer, result.channel)

    def _on_engine_failed(self, ticket: int, kind: str, message: str) -> None:
        if ticket == self._tickets.get("grid") and message != "cancelled":
            self.hint.setText(message)

    def _show_grid(self, grid: Grid) -> None:
        self.grid_result = grid
        with QtCore.QSignalBlocker(self.layer_combo):
            self.layer_combo.clear()
            for layer in grid.layers:
                self.layer_combo.addItem(f"{layer.label} · {layer.name} · {layer.channels} ch", layer.name)
            self.layer_combo.setCurrentIndex(self.layer_combo.findData(grid.layer))
        self.grid.set_tiles(grid.tiles, grid.captions, columns=grid.columns)
        self.grid.title.setText(grid.title)
        self.reconstructions_shown.emit(self.grid.count)
        keep = self.neuron in grid.picks
        tile = grid.picks.index(self.neuron) if keep and self.neuron is not None else 0
        self.grid.select(tile)
        if grid.picks:
            self.select_neuron(*grid.picks[tile])

    def _show_top(self, top: neurons.TopImages) -> None:
        self.top = top
        tiles = heat_overlay(top.thumbnails, top.maps, 0.4)
        captions = [f"{s.id} {v:.2f}" for s, v in zip(top.samples, top.scores, strict=True)]
        self.top_grid.set_tiles(tiles, captions, columns=4)
        self.top_grid.title.setText(f"{len(top.samples)} dataset images with the highest {top.reduce} activation "
                                    "(double-click opens one in the viewer)")  # fmt: skip
        self.top_images_shown.emit(len(top.samples))

    def _on_grid_clicked(self, tile: int) -> None:
        if self.grid_result is not None:
            self.grid.select(tile)
            self.select_neuron(*self.grid_result.picks[tile])

    def _on_channels_entered(self) -> None:
        self.list_button.setChecked(True)
        self.refresh()

    def _on_top_activated(self, index: int) -> None:
        if self.top is not None:
            sample: Sample = self.top.samples[index]
            self.image_requested.emit(sample)


def _spin(low: int, high: int, value: int, tip: str) -> QtWidgets.QSpinBox:
    spin = QtWidgets.QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin
